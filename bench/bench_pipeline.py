"""Local pipeline end to end (extract → publish) on synthetic crashes at several sizes.

Each size gets a fresh CRASHED_HOME and a scratch git repository, runs
``crashed data synth`` + ``data load`` + ``pipelines crashed_pipeline run-local`` and records
every step's seconds from the run summary. Target: 100k rows under a minute; cost linear.

    python bench/bench_pipeline.py [--sizes 25000 50000 100000 200000]
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

from crashed.adapters.local_lake import LocalLake

ROOT = Path(__file__).resolve().parents[1]


def crashed(args: list[str], env: dict[str, str], cwd: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "crashed", *args],
        env=env,
        cwd=cwd,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def run_size(rows: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        git = ["git", "-C", tmp, "-c", "user.name=bench", "-c", "user.email=bench@x"]
        (work / "model-reference.json").write_text((ROOT / "model-reference.json").read_text())
        subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
        subprocess.run([*git, "add", "."], check=True)
        subprocess.run([*git, "commit", "-qm", "init"], check=True)
        env = {
            **os.environ,
            "CRASHED_HOME": str(work / ".crashed"),
            "CRASHED_REPO": tmp,
            "CRASHED_PLATFORM": "local",
        }
        csv = work / "crashes.csv"
        crashed(
            [
                "data",
                "synth",
                "--rows",
                str(rows),
                "--seed",
                "7",
                "--start",
                "2025-08-01",
                "--end",
                "2026-10-31",
                "--out",
                str(csv),
            ],
            env,
            work,
        )
        crashed(["data", "load", "--csv", str(csv)], env, work)
        started = time.perf_counter()
        crashed(
            [
                "pipelines",
                "crashed_pipeline",
                "run-local",
                "--run-date",
                "2026-11-01",
                "--summary",
                str(work / "summary.json"),
            ],
            env,
            work,
        )
        total = time.perf_counter() - started
        summary = json.loads((work / "summary.json").read_text())
        steps = {name: step["seconds"] for name, step in summary["steps"].items()}
        lake = LocalLake(work / ".crashed" / "lake")
        trained = json.loads(lake.get_bytes(summary["outputs"]["train"]["manifest"]))
        return {
            "rows": rows,
            "total": round(total, 2),
            **steps,
            "rounds": trained["best_rounds"],
            "fit_seconds": trained["seconds"],
            "roc_auc": summary["metrics"]["roc_auc"],
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[25_000, 50_000, 100_000, 200_000])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "pipeline.json")
    args = parser.parse_args()
    results = []
    for rows in args.sizes:
        result = run_size(rows)
        results.append(result)
        steps = "  ".join(
            f"{k} {result[k]:.1f}s"
            for k in ("extract", "validate", "analyse", "train", "evaluate", "publish")
        )
        per = 1e6 * result["fit_seconds"] / (rows * result["rounds"])
        print(
            f"{rows:>8} rows: total {result['total']:.1f}s  ({steps})  "
            f"{result['rounds']} rounds, {per:.2f} µs per row-round  "
            f"ROC-AUC {result['roc_auc']:.4f}",
            flush=True,
        )
    base = results[0]
    for result in results[1:]:
        train_ratio = result["train"] / base["train"]
        total_ratio = result["total"] / base["total"]
        print(
            f"  {result['rows'] / base['rows']:.0f}× rows → train {train_ratio:.2f}×, "
            f"total {total_ratio:.2f}×"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {"machine": platform.platform(), "cpus": os.cpu_count(), "results": results}, indent=2
        )
    )


if __name__ == "__main__":
    main()
