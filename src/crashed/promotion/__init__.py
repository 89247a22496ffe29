"""Promotion history and rollback over a Git host handed in (CLI and monitor alike)."""
