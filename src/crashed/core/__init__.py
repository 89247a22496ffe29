"""Pure domain code: no cloud imports, no I/O beyond what callers hand in."""
