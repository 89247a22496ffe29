"""`crashed data` commands."""

from __future__ import annotations

import click


@click.group()
def data() -> None:
    """Warehouse data: load VicRoads CSVs, describe tables, synthesize crashes."""
