"""DuckDBWarehouse on a real DuckDB file: typed round trips, atomic replace, bound parameters,
select-into, Parquet export into the local lake, errors."""

from __future__ import annotations

import datetime as dt
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crashed.adapters.duckdb_warehouse import DuckDBWarehouse, table_name, to_duckdb_sql
from crashed.adapters.local_lake import LocalLake
from crashed.errors import InputError, NotFoundError, ServiceError


@pytest.fixture
def lake(tmp_path: Path) -> LocalLake:
    return LocalLake(tmp_path / "lake")


@pytest.fixture
def warehouse(tmp_path: Path, lake: LocalLake) -> DuckDBWarehouse:
    return DuckDBWarehouse(tmp_path / "nested" / "warehouse.duckdb", lake=lake)


def crashes() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "accident_date": [dt.date(2018, 1, 2), dt.date(2018, 6, 1), dt.date(2018, 12, 31)],
            "alcohol_related": [True, False, True],
            "males": pd.array([1, None, 3], dtype="Int64"),
            "lga_name": pd.array(["O'BRIEN PARK", None, "GEELONG"], dtype="string"),
            "latitude": [-37.81, np.nan, -38.15],
        }
    )


def test_load_frame_round_trip_keeps_types(warehouse: DuckDBWarehouse) -> None:
    assert warehouse.load_frame("crashes_raw", crashes()) == 3
    assert warehouse.path.is_file()

    assert warehouse.columns("crashes_raw") == {
        "accident_date": "DATE",
        "alcohol_related": "BOOLEAN",
        "males": "INT64",
        "lga_name": "STRING",
        "latitude": "FLOAT64",
    }
    back = warehouse.query("SELECT * FROM crashes_raw ORDER BY accident_date")
    assert list(back.columns) == list(crashes().columns)
    assert [d.date() for d in pd.to_datetime(back["accident_date"])] == list(
        crashes()["accident_date"]
    )
    assert back["alcohol_related"].tolist() == [True, False, True]
    assert str(back["males"].dtype) == "Int64"
    assert back["males"].iloc[0] == 1 and pd.isna(back["males"].iloc[1])
    assert back["lga_name"].iloc[0] == "O'BRIEN PARK" and pd.isna(back["lga_name"].iloc[1])
    np.testing.assert_array_equal(back["latitude"].to_numpy(), [-37.81, np.nan, -38.15])


def test_nulls_are_sql_nulls(warehouse: DuckDBWarehouse) -> None:
    warehouse.load_frame("t", crashes())
    counts = warehouse.query(
        "SELECT count(*) - count(males) AS m, count(*) - count(lga_name) AS l, "
        "count(*) - count(latitude) AS f FROM t"
    )
    assert counts.iloc[0].tolist() == [1, 1, 1]


def test_load_frame_replaces_the_table(warehouse: DuckDBWarehouse) -> None:
    warehouse.load_frame("t", crashes())
    replacement = pd.DataFrame({"other": ["a", "b"]})
    assert warehouse.load_frame("t", replacement) == 2
    assert warehouse.columns("t") == {"other": "STRING"}
    assert warehouse.query("SELECT other FROM t ORDER BY other")["other"].tolist() == ["a", "b"]


def test_failed_load_leaves_the_old_table_intact(warehouse: DuckDBWarehouse) -> None:
    warehouse.load_frame("t", crashes())
    unloadable = pd.DataFrame({"mixed": [True, dt.date(2018, 1, 1)]})  # BOOLEAN vs DATE

    with pytest.raises(InputError, match="cannot load table t"):
        warehouse.load_frame("t", unloadable)

    assert warehouse.columns("t") == {
        "accident_date": "DATE",
        "alcohol_related": "BOOLEAN",
        "males": "INT64",
        "lga_name": "STRING",
        "latitude": "FLOAT64",
    }
    assert int(warehouse.query("SELECT count(*) AS n FROM t")["n"].iloc[0]) == 3
    # and the warehouse is still usable afterwards
    assert warehouse.load_frame("t2", crashes()) == 3


def test_failed_first_load_creates_nothing(warehouse: DuckDBWarehouse) -> None:
    with pytest.raises(InputError):
        warehouse.load_frame("fresh", pd.DataFrame({"mixed": [True, dt.date(2018, 1, 1)]}))
    assert not warehouse.table_exists("fresh")


def test_unregistrable_frame_is_an_input_error(warehouse: DuckDBWarehouse) -> None:
    with pytest.raises(InputError):
        warehouse.load_frame("t", pd.DataFrame({"z": [1 + 2j]}))


def test_parameters_are_bound_not_formatted(warehouse: DuckDBWarehouse) -> None:
    warehouse.load_frame("t", crashes())

    found = warehouse.query("SELECT males FROM t WHERE lga_name = @name", {"name": "O'BRIEN PARK"})
    assert found["males"].tolist() == [1]

    injection = "x' OR '1'='1"
    assert warehouse.query("SELECT * FROM t WHERE lga_name = @name", {"name": injection}).empty
    echoed = warehouse.query("SELECT @text AS text", {"text": injection})
    assert echoed["text"].tolist() == [injection]

    dated = warehouse.query(
        "SELECT count(*) AS n FROM t WHERE accident_date BETWEEN @start AND @end "
        "AND alcohol_related = @flag",
        {"start": dt.date(2018, 1, 1), "end": dt.date(2018, 6, 30), "flag": True},
    )
    assert int(dated["n"].iloc[0]) == 1


def test_same_parameter_twice_and_at_signs_in_literals(warehouse: DuckDBWarehouse) -> None:
    result = warehouse.query("SELECT @x + @x AS twice, 'crash@example.org' AS mail", {"x": 21})
    assert result.iloc[0].tolist() == [42, "crash@example.org"]


def test_to_duckdb_sql() -> None:
    assert to_duckdb_sql("WHERE d >= @start AND d < @end_")[0] == "WHERE d >= $start AND d < $end_"
    assert to_duckdb_sql("SELECT 'a@b.c'")[0] == "SELECT 'a@b.c'"
    assert to_duckdb_sql("SELECT @@x")[0] == "SELECT @@x"
    assert to_duckdb_sql("WHERE n = @n", {"n": 2**40}) == (
        "WHERE n = CAST($n AS BIGINT)",
        {"n": 2**40},
    )


def test_missing_parameter_is_a_service_error(warehouse: DuckDBWarehouse) -> None:
    with pytest.raises(ServiceError, match="missing"):
        warehouse.query("SELECT @missing AS m")


def test_select_into_returns_count(warehouse: DuckDBWarehouse) -> None:
    warehouse.load_frame("crashes_raw", crashes())

    n = warehouse.select_into(
        "train",
        "SELECT * FROM crashes_raw WHERE accident_date < @cut",
        {"cut": dt.date(2018, 7, 1)},
    )
    assert n == 2
    assert warehouse.columns("train") == warehouse.columns("crashes_raw")
    # replaces on a second run
    assert warehouse.select_into("train", "SELECT * FROM crashes_raw WHERE alcohol_related") == 2
    assert warehouse.select_into("train", "SELECT * FROM crashes_raw WHERE false") == 0
    assert warehouse.table_exists("train")


def test_select_into_errors(warehouse: DuckDBWarehouse) -> None:
    with pytest.raises(NotFoundError):
        warehouse.select_into("out", "SELECT * FROM nowhere")
    with pytest.raises(ServiceError):
        warehouse.select_into("out", "SELEC 1")
    with pytest.raises(InputError, match="invalid table name"):
        warehouse.select_into("out; DROP TABLE x", "SELECT 1")


def test_export_writes_parquet_into_the_lake(warehouse: DuckDBWarehouse, lake: LocalLake) -> None:
    warehouse.load_frame("crashes_raw", crashes())
    uri = "gs://crashed-lake/runs/r1/train.parquet"

    assert warehouse.export("crashes_raw", uri) == uri
    assert lake.exists(uri)
    info = lake.checksum(uri)
    assert info.bytes > 0
    frame = pd.read_parquet(io.BytesIO(lake.get_bytes(uri)))
    assert len(frame) == 3
    assert list(frame.columns) == list(crashes().columns)
    assert sorted(frame["lga_name"].dropna().tolist()) == ["GEELONG", "O'BRIEN PARK"]
    assert frame["alcohol_related"].sum() == 2
    # the lake holds only the object (no temp files left behind)
    assert lake.list("gs://crashed-lake/runs/") == [uri]


def test_export_missing_table(warehouse: DuckDBWarehouse, lake: LocalLake) -> None:
    with pytest.raises(NotFoundError, match="nope"):
        warehouse.export("nope", "gs://crashed-lake/x.parquet")
    assert not lake.exists("gs://crashed-lake/x.parquet")


def test_table_exists(warehouse: DuckDBWarehouse) -> None:
    assert not warehouse.table_exists("crashes_raw")
    warehouse.load_frame("crashes_raw", crashes())
    assert warehouse.table_exists("crashes_raw")
    assert not warehouse.table_exists("crashes")


def test_missing_table_is_not_found(warehouse: DuckDBWarehouse) -> None:
    with pytest.raises(NotFoundError, match="does not exist"):
        warehouse.columns("absent")
    with pytest.raises(NotFoundError):
        warehouse.query("SELECT * FROM absent")


def test_bad_sql_is_a_service_error(warehouse: DuckDBWarehouse) -> None:
    warehouse.load_frame("t", crashes())
    with pytest.raises(ServiceError, match="warehouse query failed"):
        warehouse.query("SELECT no_such_column FROM t")


@pytest.mark.parametrize(
    "name", ["", "1abc", "a.b", "t; DROP TABLE t", 'x"y', "a b", "ta-ble", "x" * 129]
)
def test_invalid_table_name_is_an_input_error(warehouse: DuckDBWarehouse, name: str) -> None:
    with pytest.raises(InputError, match="invalid table name"):
        table_name(name)
    for call in (
        lambda: warehouse.load_frame(name, crashes()),
        lambda: warehouse.table_exists(name),
        lambda: warehouse.columns(name),
        lambda: warehouse.export(name, "gs://crashed-lake/x.parquet"),
    ):
        with pytest.raises(InputError, match="invalid table name"):
            call()


def test_valid_table_names() -> None:
    for name in ("crashes_raw", "_x", "T2018", "a" * 128):
        assert table_name(name) == name


def test_each_call_releases_the_file(warehouse: DuckDBWarehouse) -> None:
    warehouse.load_frame("t", crashes())
    # another process (a later pipeline step) can open the file read-write between calls
    script = (
        "import duckdb, sys; con = duckdb.connect(sys.argv[1]); "
        "con.execute('INSERT INTO t (males) VALUES (9)'); con.close()"
    )
    subprocess.run([sys.executable, "-c", script, str(warehouse.path)], check=True, timeout=60)
    assert int(warehouse.query("SELECT count(*) AS n FROM t")["n"].iloc[0]) == 4


# ---- streaming loads ------------------------------------------------------------------------


def text_chunks(*values: list[str]) -> list[pd.DataFrame]:
    return [
        pd.DataFrame({"n": pd.array(v, dtype="string"), "label": ["x"] * len(v)}) for v in values
    ]


def test_load_chunks_concatenates_and_retypes(warehouse: DuckDBWarehouse) -> None:
    chunks = text_chunks(["1", "2"], ["3", None], ["40"])
    assert warehouse.load_chunks("t", iter(chunks), lambda: {"n": "INT64"}) == 5
    assert warehouse.columns("t") == {"n": "INT64", "label": "STRING"}
    values = warehouse.query("SELECT n FROM t ORDER BY n NULLS LAST")["n"].tolist()
    assert values[:4] == [1, 2, 3, 40] and pd.isna(values[4])
    assert not list(warehouse.path.parent.glob(".staging-*"))  # the staged Parquet is gone


def test_failing_chunk_iterator_keeps_the_old_table(warehouse: DuckDBWarehouse) -> None:
    warehouse.load_frame("t", crashes())

    def chunks():  # type: ignore[no-untyped-def]
        yield from text_chunks(["1"], ["2"])
        raise InputError("bad row on line 9")

    with pytest.raises(InputError, match="bad row on line 9"):
        warehouse.load_chunks("t", chunks())
    assert warehouse.query("SELECT count(*) AS n FROM t")["n"].iloc[0] == 3
    assert "accident_date" in warehouse.columns("t")
    assert not list(warehouse.path.parent.glob(".staging-*"))


def test_cast_failure_keeps_the_old_table(warehouse: DuckDBWarehouse) -> None:
    warehouse.load_frame("t", crashes())
    with pytest.raises(InputError, match="cannot load table t"):
        warehouse.load_chunks("t", iter(text_chunks(["1", "x"])), lambda: {"n": "INT64"})
    assert warehouse.query("SELECT count(*) AS n FROM t")["n"].iloc[0] == 3


def test_no_chunks_is_an_input_error(warehouse: DuckDBWarehouse) -> None:
    with pytest.raises(InputError, match="no rows"):
        warehouse.load_chunks("t", iter([]))
    assert not warehouse.table_exists("t")


# ---- the file lock: another process holds the warehouse --------------------------------------

HOLD = (
    "import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); print('holding', flush=True); "
    "time.sleep(float(sys.argv[2])); con.close()"
)


def hold_lock(path: Path, seconds: float) -> subprocess.Popen[str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "holding"
    return holder


@pytest.mark.slow
def test_locked_file_fails_after_the_timeout_naming_the_holder(
    tmp_path: Path, lake: LocalLake
) -> None:
    warehouse = DuckDBWarehouse(tmp_path / "w.duckdb", lake, lock_timeout=1.0)
    holder = hold_lock(warehouse.path, 120)
    try:
        with pytest.raises(ServiceError) as caught:
            warehouse.table_exists("t")
    finally:
        holder.kill()
        holder.wait(timeout=60)
    assert caught.value.exit_code == 3
    message = caught.value.message
    assert message.startswith(f"warehouse {warehouse.path} is locked by another process ")
    assert f"(PID {holder.pid}: " in message
    assert "stayed locked for 1 s" in message
    assert "WAREHOUSE_LOCK_TIMEOUT" in message
    assert warehouse.table_exists("t") is False  # usable again once the holder is gone


@pytest.mark.slow
def test_a_briefly_held_file_is_waited_for(tmp_path: Path, lake: LocalLake) -> None:
    warehouse = DuckDBWarehouse(tmp_path / "w.duckdb", lake, lock_timeout=120.0)
    holder = hold_lock(warehouse.path, 1.0)
    try:
        assert warehouse.load_frame("t", crashes()) == 3  # waits, then succeeds
    finally:
        holder.kill()
        holder.wait(timeout=60)
    assert warehouse.query("SELECT count(*) AS n FROM t")["n"].iloc[0] == 3
