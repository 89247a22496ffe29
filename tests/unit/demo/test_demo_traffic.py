"""The demo's monitor-step traffic: the latest crashes as queries, each with its client id."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from crashed.demo.traffic import recent_crashes
from crashed.synthetic import generate_crashes, write_csv


def test_recent_crashes_are_the_latest_with_their_accident_no(tmp_path: Path) -> None:
    frame = generate_crashes(300, seed=4, start=date(2018, 1, 1), end=date(2018, 12, 31))
    write_csv(frame, tmp_path / "crashes.csv")
    queries = recent_crashes(tmp_path / "crashes.csv", 50)
    assert len(queries) == 50
    latest = frame.assign(day=frame["accident_date"].astype(str)).sort_values("day", kind="stable")
    assert [q["id"] for q in queries] == latest["accident_no"].tail(50).astype(str).tolist()
    first = queries[0]
    row = latest.iloc[-50]
    assert first["day_of_week"] == row["day_of_week"].strip()
    assert first["males"] == str(int(row["males"]))
