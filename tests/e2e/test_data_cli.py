"""`crashed data …` end to end: the real CLI as a subprocess against a temporary CRASHED_HOME.

Real-data tests read ``../shared/data/victoria-crashes`` (relative to the repository root) and
skip when it is absent; everything else uses invented rows.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from crashed.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]
DATA = REPO_ROOT / ".." / "shared" / "data" / "victoria-crashes"
VIC_2018 = DATA / "vic_crashes_2018.csv"
SAMPLE_2015 = DATA / "thanhtungdao_vic_crash_2015-07_fullschema_sample.csv"

BASELINE = (
    "accident_no,accident_date,accident_time,day_of_week,speed_zone,males,alcohol_related\n"
    "T1,2018-03-09,08.45.00,Friday,60 km/hr,1,No\n"
    "T2,2018-03-10,23.10.00,Saturday,100 km/hr,2,Yes\n"
    "T3,2018-03-11,14.00.00,Sunday,Not known,0,No\n"
)


def _clean_env(home: Path, **extra: str) -> dict[str, str]:
    """The caller's environment without any crashed setting, plus CRASHED_HOME."""
    names = {name.lower() for name in Settings.model_fields}
    env = {k: v for k, v in os.environ.items() if k.lower() not in names}
    env["CRASHED_HOME"] = str(home)
    env.update(extra)
    return env


def crashed(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m crashed ARGS`` with CRASHED_HOME=home from inside home (no stray .env)."""
    home.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [sys.executable, "-m", "crashed", *args],
        cwd=home,
        env=_clean_env(home, **env),
        capture_output=True,
        text=True,
        timeout=180,
    )


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def fails(done: subprocess.CompletedProcess[str], code: int = 2) -> str:
    """Assert a clean user error: the exit code, one message, no traceback."""
    assert done.returncode == code, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr
    assert "Traceback" not in done.stdout
    assert done.stderr.startswith("error: "), done.stderr
    return done.stderr


def describe(home: Path, table: str = "crashes_raw") -> dict:
    return json.loads(ok(crashed(home, "data", "describe", "--table", table, "--json")))


def stored_rows(home: Path, table: str = "crashes_raw") -> int:
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        row = con.execute(f'SELECT count(*) FROM "{table}"').fetchone()
    finally:
        con.close()
    return int(row[0])


def need(path: Path) -> None:
    if not path.is_file():
        pytest.skip(f"real data file {path} is absent (../shared/data is not checked out)")


# ---- the command itself --------------------------------------------------------------------


def test_help_lists_the_groups(tmp_path: Path) -> None:
    # --help must work even with an invalid configuration: it never reads it
    out = ok(crashed(tmp_path, "--help", CRASHED_PLATFORM="azure"))
    commands = out.split("Commands:")[1]
    listed = {line.split()[0] for line in commands.splitlines() if line.strip()}
    assert {"data", "pipelines", "models", "inference", "demo"} <= listed


def test_bad_environment_value_is_a_clean_config_error(tmp_path: Path) -> None:
    message = fails(crashed(tmp_path, "data", "describe", CRASHED_PLATFORM="azure"))
    assert "CRASHED_PLATFORM" in message
    assert "'azure'" in message


def test_describe_before_any_load_says_how_to_load(tmp_path: Path) -> None:
    message = fails(crashed(tmp_path, "data", "describe"), code=4)
    assert "crashes_raw" in message
    assert "crashed data load --csv" in message


# ---- real data -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    need(VIC_2018)
    home = tmp_path_factory.mktemp("real")
    out = ok(crashed(home, "data", "load", "--csv", str(VIC_2018)))
    assert out.startswith(
        "loaded 11163 rows into crashes_raw (2018-01-02 .. 2018-12-31, positive rate 0.0320)"
    )
    return home


@pytest.mark.real_data
def test_load_real_2018_and_describe(real_home: Path) -> None:
    info = describe(real_home)

    assert info["table"] == "crashes_raw"
    assert info["rows"] == 11163
    assert info["positives"] == 357
    assert info["positive_rate"] == pytest.approx(0.032, abs=0.001)
    assert info["date_min"] == "2018-01-02"
    assert info["date_max"] == "2018-12-31"
    nulls = info["nulls"]
    assert nulls["accident_date"] == 0
    assert nulls["alcohol_related"] == 0
    assert nulls["dca_code"] == 11163  # absent from this extract: stored as null
    assert nulls["unlicencsed"] == 11163
    assert nulls["light_condition"] == 747  # the rows the join could not match


@pytest.mark.real_data
def test_csv_without_label_fails_and_keeps_the_previous_table(
    real_home: Path, tmp_path: Path
) -> None:
    no_label = tmp_path / "no_label.csv"
    no_label.write_text(
        "accident_no,accident_date,accident_time,males\nT1,2018-03-09,08.45.00,1\n",
        encoding="utf-8",
    )

    message = fails(crashed(real_home, "data", "load", "--csv", str(no_label)))

    assert "alcohol_related" in message
    assert "missing required column" in message
    info = describe(real_home)
    assert info["rows"] == 11163
    assert info["date_min"] == "2018-01-02"


@pytest.mark.real_data
def test_upper_case_full_schema_sample_loads(tmp_path: Path) -> None:
    need(SAMPLE_2015)
    out = ok(crashed(tmp_path, "data", "load", "--csv", str(SAMPLE_2015), "--table", "sample"))
    assert out.startswith("loaded 554 rows into sample (2015-07-01 .. 2015-07-14")

    info = describe(tmp_path, "sample")
    assert info["rows"] == 554
    assert info["positives"] == 14
    assert info["date_min"] == "2015-07-01"
    assert info["date_max"] == "2015-07-14"
    assert info["nulls"]["dca_code"] == 0  # the full schema has every model feature
    assert info["nulls"]["unlicencsed"] == 0
    assert info["nulls"]["accident_time"] == 0


# ---- bad files leave the loaded table alone ------------------------------------------------


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("invented")
    csv = home / "baseline.csv"
    csv.write_text(BASELINE, encoding="utf-8")
    out = ok(crashed(home, "data", "load", "--csv", str(csv)))
    assert out.startswith(
        "loaded 3 rows into crashes_raw (2018-03-09 .. 2018-03-11, positive rate 0.3333)"
    )
    return home


BAD_FILES: dict[str, tuple[bytes, tuple[str, ...]]] = {
    "empty": (b"", ("empty",)),
    "binary": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), ("binary",)),
    "unparseable-date": (
        b"accident_date,alcohol_related\n2018-01-01,No\n2018-02-30,Yes\n",
        ("accident_date", "line 3", "2018-02-30"),
    ),
}


@pytest.mark.parametrize("kind", list(BAD_FILES))
def test_bad_file_fails_cleanly_and_keeps_the_table(home: Path, tmp_path: Path, kind: str) -> None:
    content, expected = BAD_FILES[kind]
    path = tmp_path / f"{kind}.csv"
    path.write_bytes(content)

    message = fails(crashed(home, "data", "load", "--csv", str(path)))

    assert str(path) in message
    for fragment in expected:
        assert fragment in message
    assert stored_rows(home) == 3


def test_describe_after_failed_loads_shows_the_baseline(home: Path) -> None:
    out = ok(crashed(home, "data", "describe"))  # the human-readable form
    assert "table          crashes_raw" in out
    assert "rows           3" in out
    assert "dates          2018-03-09 .. 2018-03-11" in out
    assert "positive rate  0.3333 (1 alcohol-related)" in out
    lines = {
        line.split()[0]: line.split()[1:]
        for line in out.split("nulls per column:")[1].splitlines()
        if line.strip()
    }
    assert lines["males"] == ["0", "0.0%"]
    assert lines["dca_code"] == ["3", "100.0%"]


# ---- synthetic data ------------------------------------------------------------------------


def test_synth_then_load(tmp_path: Path) -> None:
    out_csv = tmp_path / "f.csv"
    out = ok(
        crashed(tmp_path, "data", "synth", "--rows", "2000", "--seed", "1", "--out", str(out_csv))
    )
    assert out.startswith(f"wrote 2000 synthetic crashes to {out_csv}")
    assert out_csv.is_file()
    assert len(out_csv.read_text(encoding="utf-8").splitlines()) == 2001

    loaded = ok(crashed(tmp_path, "data", "load", "--csv", str(out_csv), "--table", "synth"))
    assert loaded.startswith("loaded 2000 rows into synth (2018-")
    assert stored_rows(tmp_path, "synth") == 2000


# ---- issue 10: headers, encodings, swapped dates, the lock, progress --------------------------

MORE_BAD_FILES: dict[str, tuple[bytes, tuple[str, ...]]] = {
    "label-twice": (
        b"accident_date,alcohol_related,males,alcohol_related\n2018-01-01,Yes,1,No\n",
        ("column 'alcohol_related' appears twice in the header (columns 2 and 4)",),
    ),
    "utf-16": (BASELINE.encode("utf-16"), ("UTF-16", "re-save it as UTF-8")),
    "swapped-dates": (
        (
            "accident_date,day_of_week,alcohol_related\n"
            + "".join(
                f"2018-{d:02d}-01,{dt.date(2018, 1, d).strftime('%A')},No\n" for d in range(2, 12)
            )
        ).encode(),
        ("looks month/day swapped", "YYYY-MM-DD or D/MM/YYYY"),
    ),
    "arabic-indic-count": (
        "accident_date,alcohol_related,males\n2018-01-01,No,\u0661\n".encode(),
        ("column males", "line 2"),
    ),
}


@pytest.mark.parametrize("kind", list(MORE_BAD_FILES))
def test_more_bad_files_fail_cleanly_and_keep_the_table(
    home: Path, tmp_path: Path, kind: str
) -> None:
    content, expected = MORE_BAD_FILES[kind]
    path = tmp_path / f"{kind}.csv"
    path.write_bytes(content)

    message = fails(crashed(home, "data", "load", "--csv", str(path)))

    assert str(path) in message
    for fragment in expected:
        assert fragment in message
    assert stored_rows(home) == 3


def test_missing_csv_is_not_found(tmp_path: Path) -> None:
    message = fails(crashed(tmp_path, "data", "load", "--csv", str(tmp_path / "no.csv")), code=4)
    assert "no such file" in message


@pytest.mark.slow
def test_a_command_waits_for_a_briefly_held_warehouse(tmp_path: Path) -> None:
    home = tmp_path / "home"
    csv = tmp_path / "baseline.csv"
    csv.write_text(BASELINE, encoding="utf-8")
    ok(crashed(home, "data", "load", "--csv", str(csv)))
    hold = (
        "import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); print('holding', "
        "flush=True); time.sleep(1.5); con.close()"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", hold, str(home / "warehouse.duckdb")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        info = json.loads(ok(crashed(home, "data", "describe", "--json")))  # waits, then reads
    finally:
        holder.kill()
        holder.wait(timeout=60)
    assert info["rows"] == 3


def test_progress_line_at_most_once_a_second() -> None:
    import click
    from click.testing import CliRunner

    from crashed.cli.data import _Progress

    @click.command()
    def report() -> None:
        progress = _Progress()
        for rows, elapsed in [(50_000, 0.4), (100_000, 1.0), (150_000, 1.5), (400_000, 2.0)]:
            progress(rows, elapsed)

    result = CliRunner().invoke(report)
    assert result.exit_code == 0
    assert result.stderr.splitlines() == [
        "… 100,000 rows read and checked (100,000 rows/s)",
        "… 400,000 rows read and checked (200,000 rows/s)",
    ]
