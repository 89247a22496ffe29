"""crashed: a Git-reviewed model lifecycle for the VicRoads alcohol-related crash classifier."""

__version__ = "0.1.0"
