"""crashed: a Git-reviewed model lifecycle for the VicRoads alcohol-related crash classifier."""

import os

# XGBoost's OpenMP threads spin while waiting by default. On a small shared machine (2 cores,
# gunicorn workers, test servers) spinning threads starve each other: 5-fold CV took 144 s
# instead of 11.5 s under load. Passive waiting costs nothing measurable when the machine is
# idle. Must be set before xgboost (libgomp) is loaded; an explicit setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
