"""The behaviour every :class:`crashed.ports.Warehouse` adapter shares.

Each test runs against :class:`DuckDBWarehouse` (a file under ``tmp_path``) and against
:class:`BigQueryWarehouse` on the local-bigquery emulator (a fresh dataset per test, exporting
into ``LocalLake(bigquery_lake_root)``), using the SQL the pipeline actually sends
(``extract.WINDOW_SQL``/``COUNT_SQL`` and ``data_ops.describe_table``). A few tests also load the
same data into both and compare the results directly.

Both adapters load through ``crashed.adapters.tabular`` (same Arrow types, same parameter
validation, same result dtypes); frames are still compared after :func:`comparable` so a
harmless dtype difference never hides a value difference.
"""

from __future__ import annotations

import datetime as dt
import io
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from crashed.adapters.bigquery_warehouse import BigQueryWarehouse
from crashed.adapters.duckdb_warehouse import DuckDBWarehouse
from crashed.adapters.local_lake import LocalLake
from crashed.core.crash_schema import normalise, read_crash_csv
from crashed.core.features import DATE, LABEL
from crashed.core.windows import resolve_windows
from crashed.data_ops import TableDescription, describe_table, load_csv
from crashed.errors import InputError, NotFoundError
from crashed.pipeline.ops.extract import COUNT_SQL, SOURCE_TABLE, WINDOW_SQL
from crashed.ports import Lake, Warehouse
from crashed.synthetic import generate_crashes, write_csv

PROJECT = "crashed-test"
LOCATION = "australia-southeast1"
TYPE_NAMES = {"DATE", "BOOLEAN", "INT64", "STRING", "FLOAT64"}
ARROW_TYPES = {
    "DATE": "date32[day]",
    "BOOLEAN": "bool",
    "INT64": "int64",
    "STRING": "string",
    "FLOAT64": "double",
}
APOSTROPHE_LGA = "O'BRIEN PARK"
INJECTION = "x' OR '1'='1"


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def duckdb_warehouse(tmp_path: Path) -> DuckDBWarehouse:
    """A DuckDB file warehouse exporting into a folder lake, both under ``tmp_path``."""
    return DuckDBWarehouse(tmp_path / "warehouse.duckdb", LocalLake(tmp_path / "lake"))


@pytest.fixture
def bigquery_warehouse(
    bigquery_emulator: str, bigquery_lake_root: Path
) -> Iterator[BigQueryWarehouse]:
    """A BigQuery warehouse on a fresh (not yet created) dataset of the emulator."""
    lake = LocalLake(bigquery_lake_root)
    dataset = f"contract_{uuid.uuid4().hex[:12]}"
    warehouse = BigQueryWarehouse(PROJECT, dataset, LOCATION, lake, api_endpoint=bigquery_emulator)
    yield warehouse
    warehouse.client.delete_dataset(warehouse.dataset_ref, delete_contents=True, not_found_ok=True)
    warehouse.close()


@pytest.fixture(params=["duckdb", "bigquery"])
def warehouse(request: pytest.FixtureRequest) -> Warehouse:
    """The adapter under test."""
    adapter: Warehouse = request.getfixturevalue(f"{request.param}_warehouse")
    return adapter


@pytest.fixture
def lake(warehouse: Warehouse) -> Lake:
    """The lake ``warehouse.export`` writes into."""
    assert isinstance(warehouse, DuckDBWarehouse | BigQueryWarehouse)
    return warehouse.lake


@pytest.fixture(scope="session")
def synthetic_crashes(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """300 synthetic crashes through the real CSV path, with a few nulls and an apostrophe."""
    path = write_csv(
        generate_crashes(300, seed=1), tmp_path_factory.mktemp("contract") / "crashes.csv"
    )
    frame = normalise(read_crash_csv(path), source=str(path))
    frame.loc[0:4, "males"] = pd.NA  # Int64
    frame.loc[10:12, "latitude"] = pd.NA  # Float64
    frame.loc[20:21, "lga_name"] = pd.NA  # string
    frame.loc[30, "accident_time"] = pd.NA
    frame.loc[40, "lga_name"] = APOSTROPHE_LGA
    return frame


@pytest.fixture
def crashes(synthetic_crashes: pd.DataFrame) -> pd.DataFrame:
    """A private copy of the normalised crash frame."""
    return synthetic_crashes.copy()


# -- helpers ----------------------------------------------------------------------------------


def expected_type(column: pd.Series) -> str:
    """The warehouse type name a normalised crash column must get."""
    if column.name == DATE:
        return "DATE"
    if pd.api.types.is_bool_dtype(column.dtype):
        return "BOOLEAN"
    if pd.api.types.is_integer_dtype(column.dtype):
        return "INT64"
    if pd.api.types.is_float_dtype(column.dtype):
        return "FLOAT64"
    assert pd.api.types.is_string_dtype(column.dtype), (column.name, column.dtype)
    return "STRING"


def comparable(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with dtypes normalised: boolean, Float64, datetime64[us] and string columns."""
    columns: dict[str, pd.Series] = {}
    for name, column in frame.items():
        column = column.reset_index(drop=True)
        if pd.api.types.is_bool_dtype(column.dtype):
            columns[str(name)] = column.astype("boolean")
        elif pd.api.types.is_numeric_dtype(column.dtype):
            columns[str(name)] = column.astype("Float64")
        elif (
            pd.api.types.is_datetime64_any_dtype(column.dtype)
            or column.map(lambda value: isinstance(value, dt.date)).any()
        ):
            columns[str(name)] = pd.to_datetime(column).astype("datetime64[us]")
        else:
            columns[str(name)] = column.astype("string")
    return pd.DataFrame(columns)


def assert_same_frame(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Equal values and column order, whatever the dtypes each side chose."""
    pd.testing.assert_frame_equal(comparable(actual), comparable(expected))


def in_window(frame: pd.DataFrame, start: dt.date, end: dt.date) -> pd.DataFrame:
    """The pandas reading of ``WINDOW_SQL``: both bounds inclusive."""
    dates = pd.to_datetime(frame[DATE]).dt.date
    return frame[(dates >= start) & (dates <= end)]


def row_count(warehouse: Warehouse, table: str) -> int:
    """``COUNT(*)`` of ``table`` through ``query``."""
    return int(warehouse.query(f"SELECT COUNT(*) AS n FROM {table}")["n"].iloc[0])


def expected_description(frame: pd.DataFrame, table: str) -> TableDescription:
    """What ``describe_table`` must report for ``frame``, computed with pandas."""
    dates = pd.to_datetime(frame[DATE])
    positives = int(frame[LABEL].sum())
    return TableDescription(
        table=table,
        rows=len(frame),
        date_min=str(dates.min().date()),
        date_max=str(dates.max().date()),
        positive_rate=positives / len(frame),
        positives=positives,
        nulls={str(c): int(n) for c, n in frame.isna().sum().items()},
    )


def export_uri(name: str) -> str:
    """A lake URI no other test (or session run) uses."""
    return f"gs://crashed-lake/contract/{uuid.uuid4().hex}/{name}.parquet"


def read_export(lake: Lake, uri: str) -> pd.DataFrame:
    return pq.read_table(io.BytesIO(lake.get_bytes(uri))).to_pandas()


PARAMS_SQL = (
    "SELECT objectid, accident_date, alcohol_related, males, latitude, lga_name "
    f"FROM {SOURCE_TABLE} "
    "WHERE lga_name != @lga AND males >= @males AND latitude < @latitude "
    "AND alcohol_related = @alcohol AND accident_date >= @since ORDER BY objectid"
)
PARAMS = {
    "lga": "MELBOURNE",
    "males": 1,
    "latitude": -37.7,
    "alcohol": False,
    "since": dt.date(2018, 7, 1),
}
ECHO = {"s": "it's", "i": 42, "f": 0.25, "b": True, "d": dt.date(2018, 2, 28)}


def expected_params_result(frame: pd.DataFrame, params: dict[str, object]) -> pd.DataFrame:
    """The pandas reading of :data:`PARAMS_SQL` (SQL NULLs never match a comparison)."""
    dates = pd.to_datetime(frame[DATE]).dt.date
    keep = (
        (frame["lga_name"] != params["lga"]).fillna(False)
        & (frame["males"] >= params["males"]).fillna(False)
        & (frame["latitude"] < params["latitude"]).fillna(False)
        & (frame[LABEL] == params["alcohol"])
        & (dates >= params["since"])
    )
    columns = ["objectid", DATE, LABEL, "males", "latitude", "lga_name"]
    return frame.loc[keep.astype(bool), columns].sort_values("objectid")


# -- the port ---------------------------------------------------------------------------------


def test_implements_the_warehouse_port(warehouse: Warehouse) -> None:
    assert isinstance(warehouse, Warehouse)


# -- load_frame, columns, table_exists --------------------------------------------------------


def test_load_frame_gives_the_same_type_names_for_every_column(
    warehouse: Warehouse, crashes: pd.DataFrame
) -> None:
    assert warehouse.load_frame(SOURCE_TABLE, crashes) == 300

    columns = warehouse.columns(SOURCE_TABLE)

    assert list(columns) == list(crashes.columns)
    assert columns == {str(name): expected_type(crashes[name]) for name in crashes.columns}
    assert set(columns.values()) == TYPE_NAMES
    assert {c: columns[c] for c in (DATE, LABEL, "males", "accident_time", "latitude")} == {
        DATE: "DATE",
        LABEL: "BOOLEAN",
        "males": "INT64",
        "accident_time": "STRING",
        "latitude": "FLOAT64",
    }


def test_table_exists(warehouse: Warehouse, crashes: pd.DataFrame) -> None:
    assert not warehouse.table_exists(SOURCE_TABLE)  # BigQuery: dataset not even created yet

    warehouse.load_frame(SOURCE_TABLE, crashes)

    assert warehouse.table_exists(SOURCE_TABLE)
    assert not warehouse.table_exists("train_window")
    warehouse.select_into("train_window", "SELECT * FROM crashes_raw")
    assert warehouse.table_exists("train_window")


def test_load_frame_replaces_the_table(warehouse: Warehouse, crashes: pd.DataFrame) -> None:
    warehouse.load_frame(SOURCE_TABLE, crashes)
    replacement = pd.DataFrame(
        {"speed": pd.array([40, None], dtype="Int64"), "note": pd.array(["a'b", "c"], "string")}
    )

    assert warehouse.load_frame(SOURCE_TABLE, replacement) == 2

    assert warehouse.columns(SOURCE_TABLE) == {"speed": "INT64", "note": "STRING"}
    assert_same_frame(warehouse.query("SELECT * FROM crashes_raw ORDER BY note"), replacement)
    # and back again, over a table select_into made
    warehouse.select_into("copy", "SELECT * FROM crashes_raw")
    assert warehouse.load_frame("copy", crashes) == 300
    assert len(warehouse.columns("copy")) == crashes.shape[1]
    assert row_count(warehouse, "copy") == 300


REJECTED_BY_BOTH = {
    "bool-and-date": pd.DataFrame({"mixed": [True, dt.date(2018, 1, 1)]}),
    "complex": pd.DataFrame({"z": [1 + 2j, 3j]}),
    "bytes-and-int": pd.DataFrame({"blob": [b"ab", 1]}, dtype=object),
}


@pytest.mark.parametrize("bad", list(REJECTED_BY_BOTH), ids=str)
def test_failed_load_leaves_the_old_table_intact(
    warehouse: Warehouse, crashes: pd.DataFrame, bad: str
) -> None:
    warehouse.load_frame(SOURCE_TABLE, crashes)
    before = warehouse.columns(SOURCE_TABLE)

    with pytest.raises(InputError, match=f"cannot load table .*{SOURCE_TABLE}"):
        warehouse.load_frame(SOURCE_TABLE, REJECTED_BY_BOTH[bad])
    with pytest.raises(InputError):
        warehouse.load_frame("fresh", REJECTED_BY_BOTH[bad])

    assert warehouse.columns(SOURCE_TABLE) == before
    assert describe_table(warehouse) == expected_description(crashes, SOURCE_TABLE)
    assert not warehouse.table_exists("fresh")
    assert warehouse.load_frame("fresh", crashes.head(3)) == 3  # still usable


MIXED_OBJECT_COLUMNS = {
    "dicts-and-ints": pd.DataFrame({"mixed": [{"a": 1}, 2]}, dtype=object),
    "int-str-date": pd.DataFrame({"mixed": [60, "fast", dt.date(2018, 1, 1)]}, dtype=object),
    "bare-objects": pd.DataFrame({"mixed": [object(), object()]}),
}


@pytest.mark.parametrize("bad", list(MIXED_OBJECT_COLUMNS), ids=str)
def test_mixed_type_object_column_is_rejected(
    warehouse: Warehouse, crashes: pd.DataFrame, bad: str
) -> None:
    warehouse.load_frame(SOURCE_TABLE, crashes)

    with pytest.raises(InputError, match="cannot load table"):
        warehouse.load_frame(SOURCE_TABLE, MIXED_OBJECT_COLUMNS[bad])

    assert row_count(warehouse, SOURCE_TABLE) == 300


# -- the pipeline's SQL -----------------------------------------------------------------------


def pipeline_windows() -> dict[str, tuple[dt.date, dt.date]]:
    """Windows to select: the pipeline's own for a December 2018 run, plus edge cases."""
    windows = resolve_windows(dt.date(2018, 12, 1))
    return {
        "train": (windows.train_start, windows.train_end),
        "validation": (windows.validation_start, windows.validation_end),
        "year": (dt.date(2018, 1, 1), dt.date(2018, 12, 31)),
        "first_day": (dt.date(2018, 1, 3), dt.date(2018, 1, 3)),  # both bounds inclusive
        "after_data": (dt.date(2019, 1, 1), dt.date(2019, 3, 31)),
        "inverted": (dt.date(2018, 6, 30), dt.date(2018, 6, 1)),
    }


def test_window_sql_selects_what_pandas_selects(
    warehouse: Warehouse, crashes: pd.DataFrame
) -> None:
    warehouse.load_frame(SOURCE_TABLE, crashes)
    source_columns = warehouse.columns(SOURCE_TABLE)
    counts: dict[str, int] = {}

    for part, (start, end) in pipeline_windows().items():
        table = f"{part}_window"
        expected = in_window(crashes, start, end)

        rows = warehouse.select_into(table, WINDOW_SQL, {"start": start, "end": end})

        counts[part] = rows
        assert rows == len(expected), part
        assert warehouse.columns(table) == source_columns, part
        ids = warehouse.query(f"SELECT objectid FROM {table}")["objectid"]
        assert sorted(int(i) for i in ids) == sorted(expected["objectid"].tolist()), part
        summary = warehouse.query(COUNT_SQL.format(table=table)).iloc[0]
        assert int(summary["n_rows"]) == rows, part
        if rows:  # extract.py reads positives only then, exactly like this
            assert int(summary["positives"] or 0) == int(expected[LABEL].sum()), part
        else:  # SUM over no rows is NULL (NaN on DuckDB, <NA> on BigQuery)
            assert pd.isna(summary["positives"]), part

    assert counts["train"] > 0 and counts["validation"] > 0
    assert counts["year"] == 300 and counts["first_day"] > 1
    assert counts["after_data"] == counts["inverted"] == 0


def test_count_sql_positives(warehouse: Warehouse, crashes: pd.DataFrame) -> None:
    warehouse.load_frame(SOURCE_TABLE, crashes)

    summary = warehouse.query(COUNT_SQL.format(table=SOURCE_TABLE)).iloc[0]

    assert (int(summary["n_rows"]), int(summary["positives"])) == (300, int(crashes[LABEL].sum()))
    assert int(crashes[LABEL].sum()) > 0


def test_describe_table(warehouse: Warehouse, crashes: pd.DataFrame) -> None:
    warehouse.load_frame(SOURCE_TABLE, crashes)

    described = describe_table(warehouse)

    assert described == expected_description(crashes, SOURCE_TABLE)
    assert described.nulls["males"] == 5 and described.nulls["lga_name"] == 2


# -- query parameters -------------------------------------------------------------------------


@pytest.mark.parametrize("alcohol", [False, True])
def test_query_binds_str_int_float_bool_and_date_parameters(
    warehouse: Warehouse, crashes: pd.DataFrame, alcohol: bool
) -> None:
    warehouse.load_frame(SOURCE_TABLE, crashes)
    params = {**PARAMS, "alcohol": alcohol}

    result = warehouse.query(PARAMS_SQL, params)

    expected = expected_params_result(crashes, params)
    assert len(expected) > 0
    assert_same_frame(result, expected)


def test_parameters_echo_back_with_their_values(warehouse: Warehouse) -> None:
    result = warehouse.query("SELECT @s AS s, @i AS i, @f AS f, @b AS b, @d AS d", ECHO)

    assert_same_frame(result, pd.DataFrame({k: [v] for k, v in ECHO.items()}))


def test_a_quote_in_a_string_parameter_is_data(warehouse: Warehouse, crashes: pd.DataFrame) -> None:
    warehouse.load_frame(SOURCE_TABLE, crashes)
    by_lga = "SELECT objectid FROM crashes_raw WHERE lga_name = @lga"

    assert warehouse.query(by_lga, {"lga": INJECTION}).empty
    matched = warehouse.query(by_lga, {"lga": APOSTROPHE_LGA})["objectid"].tolist()
    assert matched == [int(crashes.loc[40, "objectid"])]
    nasty = "'; DROP TABLE crashes_raw; -- \" \\ @lga $1"
    assert warehouse.query("SELECT @text AS text", {"text": nasty})["text"].tolist() == [nasty]
    assert warehouse.select_into("none", by_lga, {"lga": nasty}) == 0
    assert row_count(warehouse, SOURCE_TABLE) == 300


def test_at_sign_inside_a_string_literal_is_not_a_parameter(warehouse: Warehouse) -> None:

    result = warehouse.query("SELECT 'mail me @home' AS s, 'a@b.c' AS t")

    assert result.iloc[0].tolist() == ["mail me @home", "a@b.c"]


def test_int_parameters_are_64_bit(warehouse: Warehouse) -> None:

    result = warehouse.query("SELECT @i + 1 AS i", {"i": 2**31 - 1})

    assert int(result["i"].iloc[0]) == 2**31


def test_numpy_scalar_parameters_bind(warehouse: Warehouse) -> None:

    result = warehouse.query("SELECT @i AS i, @b AS b", {"i": np.int64(5), "b": np.bool_(True)})

    assert result.iloc[0].tolist() == [5, True]


@pytest.mark.parametrize("value", [object(), None, [1, 2]], ids=["object", "none", "list"])
def test_unsupported_parameter_values_are_input_errors(warehouse: Warehouse, value: object) -> None:

    with pytest.raises(InputError, match="@x"):
        warehouse.query("SELECT @x AS x", {"x": value})


# -- export -----------------------------------------------------------------------------------


def test_export_writes_parquet_whose_rows_equal_the_table(
    warehouse: Warehouse, lake: Lake, crashes: pd.DataFrame
) -> None:
    warehouse.load_frame(SOURCE_TABLE, crashes)
    start, end = dt.date(2018, 3, 1), dt.date(2018, 8, 31)
    rows = warehouse.select_into("train_window", WINDOW_SQL, {"start": start, "end": end})
    uri = export_uri("train")

    assert warehouse.export("train_window", uri) == uri

    exported = read_export(lake, uri)
    assert len(exported) == rows
    in_table = warehouse.query("SELECT * FROM train_window ORDER BY objectid")
    assert_same_frame(exported.sort_values("objectid"), in_table)
    assert_same_frame(
        exported.sort_values("objectid"), in_window(crashes, start, end).sort_values("objectid")
    )
    schema = pq.read_schema(io.BytesIO(lake.get_bytes(uri)))
    types = warehouse.columns("train_window")
    assert {f.name: str(f.type) for f in schema} == {c: ARROW_TYPES[t] for c, t in types.items()}


def test_export_of_an_empty_window_and_overwrite(
    warehouse: Warehouse, lake: Lake, crashes: pd.DataFrame
) -> None:
    warehouse.load_frame(SOURCE_TABLE, crashes)
    uri = export_uri("validation")
    # extract.py exports before it rejects an empty window
    empty = {"start": dt.date(2019, 1, 1), "end": dt.date(2019, 1, 31)}
    assert warehouse.select_into("validation_window", WINDOW_SQL, empty) == 0

    warehouse.export("validation_window", uri)
    exported = read_export(lake, uri)
    assert exported.empty and list(exported.columns) == list(crashes.columns)

    day = {"start": dt.date(2018, 1, 3), "end": dt.date(2018, 1, 3)}
    rows = warehouse.select_into("validation_window", WINDOW_SQL, day)
    warehouse.export("validation_window", uri)
    assert len(read_export(lake, uri)) == rows > 0


# -- missing tables ---------------------------------------------------------------------------


@pytest.mark.parametrize("loaded", [False, True], ids=["empty-warehouse", "other-table-loaded"])
def test_missing_table_is_not_found(
    warehouse: Warehouse, lake: Lake, crashes: pd.DataFrame, loaded: bool
) -> None:
    if loaded:
        warehouse.load_frame(SOURCE_TABLE, crashes)
    uri = export_uri("missing")
    # SQL on a BigQuery dataset that does not exist yet names the dataset, not the table
    named_in_sql = "missing_table" if loaded else "missing_table|(?i:dataset)"

    assert not warehouse.table_exists("missing_table")
    with pytest.raises(NotFoundError, match="missing_table"):
        warehouse.columns("missing_table")
    with pytest.raises(NotFoundError, match="missing_table"):
        warehouse.export("missing_table", uri)
    with pytest.raises(NotFoundError, match=named_in_sql):
        warehouse.query("SELECT * FROM missing_table WHERE males > @m", {"m": 1})
    with pytest.raises(NotFoundError, match=named_in_sql):
        warehouse.select_into("copy", "SELECT * FROM missing_table")
    assert not lake.exists(uri)
    assert not warehouse.table_exists("copy")


# -- both adapters side by side ---------------------------------------------------------------


def test_both_adapters_return_identical_results(
    duckdb_warehouse: DuckDBWarehouse,
    bigquery_warehouse: BigQueryWarehouse,
    crashes: pd.DataFrame,
) -> None:
    adapters: list[Warehouse] = [duckdb_warehouse, bigquery_warehouse]
    queries: list[tuple[str, dict[str, object] | None]] = [
        (PARAMS_SQL, PARAMS),
        ("SELECT * FROM crashes_raw ORDER BY objectid", None),
        ("SELECT @s AS s, @i AS i, @f AS f, @b AS b, @d AS d", ECHO),
        (COUNT_SQL.format(table=SOURCE_TABLE), None),
        (
            "SELECT lga_name, COUNT(*) AS n, AVG(latitude) AS lat, SUM(males) AS males, "
            "MIN(accident_date) AS first FROM crashes_raw GROUP BY lga_name "
            "ORDER BY n DESC, lga_name LIMIT 10",
            None,
        ),
    ]
    for adapter in adapters:
        adapter.load_frame(SOURCE_TABLE, crashes)

    results = [[adapter.query(sql, params) for sql, params in queries] for adapter in adapters]

    for (sql, _), left, right in zip(queries, *results, strict=True):
        assert len(left) > 0, sql
        pd.testing.assert_frame_equal(comparable(left), comparable(right), obj=sql)
    assert duckdb_warehouse.columns(SOURCE_TABLE) == bigquery_warehouse.columns(SOURCE_TABLE)
    assert describe_table(duckdb_warehouse) == describe_table(bigquery_warehouse)


def test_real_data_loads_identically(
    duckdb_warehouse: DuckDBWarehouse,
    bigquery_warehouse: BigQueryWarehouse,
    real_crashes_csv: Path,
) -> None:
    summaries = [load_csv(w, real_crashes_csv) for w in (duckdb_warehouse, bigquery_warehouse)]

    assert summaries[0] == summaries[1]
    columns = duckdb_warehouse.columns(SOURCE_TABLE)
    assert columns == bigquery_warehouse.columns(SOURCE_TABLE)
    assert set(columns.values()) <= TYPE_NAMES
    assert describe_table(duckdb_warehouse) == describe_table(bigquery_warehouse)


# -- streaming loads (load_chunks, and load_csv on top of it) ---------------------------------


def test_streamed_csv_load_equals_load_frame_of_the_whole_file(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    path = write_csv(generate_crashes(300, seed=2), tmp_path / "crashes.csv")

    summary = load_csv(warehouse, path, "streamed", chunk_rows=64)  # five chunks
    warehouse.load_frame("whole", normalise(read_crash_csv(path), source=str(path)))

    assert summary.rows == 300
    assert warehouse.columns("streamed") == warehouse.columns("whole")
    assert warehouse.columns("streamed")["objectid"] == "INT64"  # typed over the whole file
    streamed, whole = (
        warehouse.query(f"SELECT * FROM {t} ORDER BY objectid") for t in ("streamed", "whole")
    )
    pd.testing.assert_frame_equal(comparable(streamed), comparable(whole))


def test_failed_chunked_load_leaves_the_old_table_intact(
    warehouse: Warehouse, crashes: pd.DataFrame
) -> None:
    warehouse.load_frame(SOURCE_TABLE, crashes)

    def failing() -> Iterator[pd.DataFrame]:
        yield crashes.head(10)
        raise InputError("crashes.csv: column males … line 12")

    with pytest.raises(InputError, match="line 12"):
        warehouse.load_chunks(SOURCE_TABLE, failing())
    text = pd.DataFrame({"n": pd.array(["1", "x"], dtype="string")})
    with pytest.raises(InputError, match="cannot load table"):
        warehouse.load_chunks(SOURCE_TABLE, iter([text]), lambda: {"n": "INT64"})
    assert row_count(warehouse, SOURCE_TABLE) == 300
    assert set(crashes.columns) == set(warehouse.columns(SOURCE_TABLE))
