"""`crashed inference` commands."""

from __future__ import annotations

import click


@click.group()
def inference() -> None:
    """inference commands."""
