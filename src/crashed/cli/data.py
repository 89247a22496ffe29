"""`crashed data`: load VicRoads CSVs, describe tables, synthesize crashes."""

from __future__ import annotations

import json
import time
from datetime import date
from pathlib import Path

import click

from crashed.cli.context import AppContext

pass_app = click.make_pass_decorator(AppContext)


@click.group()
def data() -> None:
    """Warehouse data: load VicRoads CSVs, describe tables, synthesize crashes."""


@data.command()
@click.option(
    "--csv",
    "csv_path",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="VicRoads crash CSV (upper-case ArcGIS export or lower-case extract).",
)
@click.option("--table", default="crashes_raw", show_default=True, help="Warehouse table.")
@pass_app
def load(app: AppContext, csv_path: Path, table: str) -> None:
    """Load a crash CSV into TABLE, replacing it only if the whole file is valid.

    The file is streamed in chunks (memory stays bounded); progress goes to stderr.

    Columns become snake_case, ACCIDENT_DATE a date, ACCIDENT_TIME HH:MM:SS, ALCOHOL_RELATED
    a boolean; model features missing from the file are stored as null.
    """
    from crashed.data_ops import load_csv

    started = time.perf_counter()
    summary = load_csv(app.adapters.warehouse, csv_path, table, progress=_Progress())
    click.echo(
        f"loaded {summary.rows} rows into {table} "
        f"({summary.date_min} .. {summary.date_max}, positive rate {summary.positive_rate:.4f}) "
        f"in {time.perf_counter() - started:.2f}s"
    )


class _Progress:
    """``… 300,000 rows (151,000 rows/s)`` on stderr, at most about once a second."""

    def __init__(self, every: float = 1.0) -> None:
        self.every = every
        self.last = 0.0

    def __call__(self, rows: int, elapsed: float) -> None:
        if elapsed - self.last >= self.every:
            self.last = elapsed
            rate = rows / elapsed if elapsed > 0 else 0.0
            click.echo(f"… {rows:,} rows read and checked ({rate:,.0f} rows/s)", err=True)


@data.command()
@click.option("--table", default="crashes_raw", show_default=True, help="Warehouse table.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@pass_app
def describe(app: AppContext, table: str, as_json: bool) -> None:
    """Rows, date range, positive rate and null counts per column of TABLE."""
    from crashed.data_ops import describe_table

    info = describe_table(app.adapters.warehouse, table)
    if as_json:
        click.echo(json.dumps(info.as_dict(), indent=2))
        return
    rate = "n/a" if info.positive_rate is None else f"{info.positive_rate:.4f}"
    click.echo(f"table          {info.table}")
    click.echo(f"rows           {info.rows}")
    click.echo(f"dates          {info.date_min} .. {info.date_max}")
    click.echo(f"positive rate  {rate} ({info.positives} alcohol-related)")
    click.echo("nulls per column:")
    width = max((len(c) for c in info.nulls), default=0)
    for column, count in info.nulls.items():
        share = count / info.rows if info.rows else 0.0
        click.echo(f"  {column:<{width}}  {count:>8}  {share:6.1%}")


@data.command()
@click.option("--rows", required=True, type=click.IntRange(1, 10_000_000), help="Rows to make.")
@click.option("--seed", default=0, show_default=True, type=int, help="Random seed.")
@click.option(
    "--start",
    default="2018-01-01",
    show_default=True,
    type=click.DateTime(["%Y-%m-%d"]),
    help="First accident date.",
)
@click.option(
    "--end",
    default="2018-12-31",
    show_default=True,
    type=click.DateTime(["%Y-%m-%d"]),
    help="Last accident date.",
)
@click.option("--out", required=True, type=click.Path(path_type=Path, dir_okay=False))
def synth(rows: int, seed: int, start, end, out: Path) -> None:  # type: ignore[no-untyped-def]
    """Write ROWS realistic synthetic crashes (VicRoads lower-case CSV shape) to OUT."""
    from crashed.errors import InputError
    from crashed.synthetic import generate_crashes, write_csv

    first, last = date.fromisoformat(str(start.date())), date.fromisoformat(str(end.date()))
    if last < first:
        raise InputError(f"--end {last} is before --start {first}")
    started = time.perf_counter()
    frame = generate_crashes(rows, seed=seed, start=first, end=last)
    write_csv(frame, out)
    positives = (frame["alcohol_related"] == "Yes").mean()
    click.echo(
        f"wrote {len(frame)} synthetic crashes to {out} ({first} .. {last}, "
        f"positive rate {positives:.4f}) in {time.perf_counter() - started:.2f}s"
    )
