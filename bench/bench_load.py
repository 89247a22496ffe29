"""`crashed data load` at 100k and 1M rows: streaming vs the whole-file path, side by side.

Each measurement is its own child process (peak RSS and CPU from ``os.wait4`` of that child):

- ``streaming``: ``crashed data load --csv FILE`` exactly as a user runs it (chunks of 50k rows
  through the one value parser, staged as Parquet, one ``CREATE OR REPLACE … AS SELECT``);
- ``whole-file``: the naive path the command used before: ``pandas.read_csv`` of the whole file
  as text, :func:`crashed.core.crash_schema.normalise` of the whole frame, ``load_frame``.

Synthetic CSVs (``crashed data synth``: ``generate_crashes`` + ``write_csv``, seed 7, 2018) are
cached in ``--cache`` because a million rows take about a minute to generate. This process
stays small (no pandas here), so the children's peak RSS is their own.
Targets (issue 10): ≤ 30 s and ≤ 3× the file size in peak memory for 1M rows.

    python bench/bench_load.py [--sizes 100000 1000000] [--cache DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "load.json"

NAIVE = """
import sys, time
from pathlib import Path
import pandas as pd
from crashed.adapters.duckdb_warehouse import DuckDBWarehouse
from crashed.adapters.local_lake import LocalLake
from crashed.core.crash_schema import normalise
csv, home = Path(sys.argv[1]), Path(sys.argv[2])
frame = pd.read_csv(csv, dtype=str, keep_default_na=False, na_values=[""], index_col=False)
table = normalise(frame, str(csv))
warehouse = DuckDBWarehouse(home / "warehouse.duckdb", LocalLake(home / "lake"))
warehouse.load_frame("crashes_raw", table)
print(len(table))
"""


def make_csv(rows: int, cache: Path) -> Path:
    """The cached CSV, made by ``crashed data synth`` in a child process: generating in this
    process would inflate every later child's peak RSS (``ru_maxrss`` survives fork + exec)."""
    path = cache / f"crashes-{rows}.csv"
    if not path.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".tmp")
        synth = ["data", "synth", "--rows", str(rows), "--seed", "7", "--out", str(partial)]
        subprocess.run(
            [sys.executable, "-m", "crashed", *synth],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        partial.rename(path)
    return path


def measure(command: list[str], env: dict[str, str]) -> dict[str, float]:
    """Wall seconds, peak RSS (MiB) and CPU seconds of one child process."""
    started = time.perf_counter()
    child = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=False
    )
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    stderr = child.stderr.read().decode(errors="replace") if child.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{stderr}")
    return {
        "seconds": round(seconds, 2),
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
    }


def run(rows: int, cache: Path) -> list[dict[str, object]]:
    csv = make_csv(rows, cache)
    size = csv.stat().st_size
    results = []
    for path in ("streaming", "whole-file"):
        with tempfile.TemporaryDirectory() as home:
            env = {**os.environ, "CRASHED_HOME": home, "CRASHED_PLATFORM": "local"}
            if path == "streaming":
                command = [sys.executable, "-m", "crashed", "data", "load", "--csv", str(csv)]
            else:
                command = [sys.executable, "-c", NAIVE, str(csv), home]
            numbers = measure(command, env)
        peak = numbers["peak_rss_mib"] * 2**20
        results.append(
            {
                "rows": rows,
                "file_mib": round(size / 2**20, 1),
                "path": path,
                **numbers,
                "peak_rss_over_file_size": round(peak / size, 2),
                "rows_per_second": round(rows / numbers["seconds"]),
            }
        )
        print(json.dumps(results[-1]), flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--cache", type=Path, default=ROOT / ".crashed" / "bench" / "load")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    results = [r for rows in args.sizes for r in run(rows, args.cache)]
    load = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "machine": platform.platform(),
                "cpus": os.cpu_count(),
                "load_average_at_end": [round(x, 1) for x in load],
                "results": results,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
