"""BigQueryWarehouse against the local-bigquery emulator, through the real google-cloud-bigquery
client (AnonymousCredentials + ClientOptions(api_endpoint)). Each test gets its own dataset."""

from __future__ import annotations

import datetime as dt
import io
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from tests.servers.procs import free_port

from crashed.adapters.bigquery_warehouse import BigQueryWarehouse, query_parameter
from crashed.adapters.local_lake import LocalLake
from crashed.errors import ConfigError, InputError, NotFoundError, ServiceError
from crashed.ports import Warehouse

PROJECT = "crashed-test"
LOCATION = "australia-southeast1"


@pytest.fixture
def lake(bigquery_lake_root: Path) -> LocalLake:
    return LocalLake(bigquery_lake_root)


@pytest.fixture
def warehouse(bigquery_emulator: str, lake: LocalLake) -> Iterator[BigQueryWarehouse]:
    dataset = f"test_{uuid.uuid4().hex[:12]}"
    warehouse = BigQueryWarehouse(PROJECT, dataset, LOCATION, lake, api_endpoint=bigquery_emulator)
    yield warehouse
    warehouse.client.delete_dataset(warehouse.dataset_ref, delete_contents=True, not_found_ok=True)
    warehouse.close()


def crashes_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [1, 2, 3],
            "accident_date": [dt.date(2018, 1, 1), dt.date(2018, 6, 30), None],
            "fatal": pd.array([True, False, None], dtype="boolean"),
            "speed_zone": pd.array([60, None, 100], dtype="Int64"),
            "road": ["Smith St", "O'Brien Rd", None],
            "severity_score": [1.5, None, 2.25],
        }
    )


def table_ids(warehouse: BigQueryWarehouse) -> list[str]:
    return sorted(t.table_id for t in warehouse.client.list_tables(warehouse.dataset_ref))


def test_implements_the_warehouse_port(warehouse: BigQueryWarehouse) -> None:
    assert isinstance(warehouse, Warehouse)


def test_load_frame_round_trip_keeps_types(warehouse: BigQueryWarehouse) -> None:
    assert warehouse.load_frame("crashes", crashes_frame()) == 3

    assert warehouse.columns("crashes") == {
        "id": "INT64",
        "accident_date": "DATE",
        "fatal": "BOOLEAN",
        "speed_zone": "INT64",
        "road": "STRING",
        "severity_score": "FLOAT64",
    }
    back = warehouse.query("SELECT * FROM crashes ORDER BY id")
    assert str(back["accident_date"].dtype) == "datetime64[us]"  # as the DuckDB adapter returns
    assert back["accident_date"].tolist()[:2] == [
        pd.Timestamp("2018-01-01"),
        pd.Timestamp("2018-06-30"),
    ]
    assert pd.isna(back["accident_date"].iloc[2])
    assert back["fatal"].dtype == "boolean"
    assert back["fatal"].tolist() == [True, False, pd.NA]
    assert back["speed_zone"].dtype == "Int64"
    assert back["speed_zone"].tolist() == [60, pd.NA, 100]
    assert back["road"].tolist()[:2] == ["Smith St", "O'Brien Rd"] and pd.isna(back["road"].iloc[2])
    assert back["severity_score"].dtype == "float64"
    assert back["severity_score"].tolist()[::2] == [1.5, 2.25] and pd.isna(
        back["severity_score"].iloc[1]
    )


def test_load_frame_timestamps_and_categoricals(warehouse: BigQueryWarehouse) -> None:
    frame = pd.DataFrame(
        {
            "aware": pd.to_datetime(["2018-01-01 10:30", None], utc=True),
            "naive": pd.to_datetime(["2018-01-01 10:30", None]),
            "kind": pd.Categorical(["a", "b"]),
            "empty": [None, None],
        }
    )
    warehouse.load_frame("moments", frame)
    assert warehouse.columns("moments") == {
        "aware": "TIMESTAMP",
        "naive": "DATETIME",
        "kind": "STRING",
        "empty": "STRING",
    }
    row = warehouse.query("SELECT * FROM moments WHERE kind = 'a'").iloc[0]
    assert row["aware"] == pd.Timestamp("2018-01-01 10:30", tz="UTC")
    assert row["naive"] == pd.Timestamp("2018-01-01 10:30")


def test_load_frame_replaces_an_existing_table(warehouse: BigQueryWarehouse) -> None:
    warehouse.load_frame("crashes", crashes_frame())
    replacement = pd.DataFrame({"speed_zone": [40, 50], "note": ["x", "y"]})

    assert warehouse.load_frame("crashes", replacement) == 2

    assert warehouse.columns("crashes") == {"speed_zone": "INT64", "note": "STRING"}
    assert warehouse.query("SELECT count(*) AS n FROM crashes")["n"].iloc[0] == 2
    assert table_ids(warehouse) == ["crashes"]  # staging table dropped


def test_unconvertible_frame_fails_before_touching_the_old_table(
    warehouse: BigQueryWarehouse,
) -> None:
    warehouse.load_frame("crashes", crashes_frame())
    mixed = pd.DataFrame({"speed_zone": [60, "fast", dt.date(2018, 1, 1)]}, dtype=object)

    with pytest.raises(InputError, match="cannot load table crashes"):
        warehouse.load_frame("crashes", mixed)

    assert warehouse.query("SELECT count(*) AS n FROM crashes")["n"].iloc[0] == 3
    assert "accident_date" in warehouse.columns("crashes")
    assert table_ids(warehouse) == ["crashes"]


def test_load_rejected_by_bigquery_leaves_the_old_table_and_no_staging(
    warehouse: BigQueryWarehouse,
) -> None:
    warehouse.load_frame("crashes", crashes_frame())
    # _PARTITIONTIME is a reserved pseudo-column: BigQuery rejects it; the emulator accepts the
    # staging load but fails the replace step. Either way the target must stay as it was.
    reserved = pd.DataFrame({"_PARTITIONTIME": [1, 2]})

    with pytest.raises(InputError, match=r"cannot load table crashed-test\.test_\w+\.crashes"):
        warehouse.load_frame("crashes", reserved)

    assert warehouse.query("SELECT count(*) AS n FROM crashes")["n"].iloc[0] == 3
    assert "accident_date" in warehouse.columns("crashes")
    assert table_ids(warehouse) == ["crashes"]


def test_failed_replace_step_keeps_the_old_table(
    warehouse: BigQueryWarehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    warehouse.load_frame("crashes", crashes_frame())
    real_query = warehouse.client.query

    def failing_replace(sql: str, *args: object, **kwargs: object) -> object:
        if sql.startswith("CREATE OR REPLACE TABLE"):
            from google.api_core.exceptions import InternalServerError

            raise InternalServerError("backend error")
        return real_query(sql, *args, **kwargs)

    monkeypatch.setattr(warehouse.client, "query", failing_replace)
    with pytest.raises(ServiceError, match="backend error"):
        warehouse.load_frame("crashes", pd.DataFrame({"x": [1]}))
    monkeypatch.undo()

    assert warehouse.query("SELECT count(*) AS n FROM crashes")["n"].iloc[0] == 3
    assert table_ids(warehouse) == ["crashes"]


def test_query_binds_typed_parameters(warehouse: BigQueryWarehouse) -> None:
    warehouse.load_frame("crashes", crashes_frame())

    result = warehouse.query(
        "SELECT road, speed_zone FROM crashes "
        "WHERE accident_date >= @start AND speed_zone >= @zone AND road != @other "
        "AND fatal = @fatal AND severity_score > @score",
        {
            "start": dt.date(2018, 1, 1),
            "zone": 50,
            "other": "Nowhere",
            "fatal": True,
            "score": 1.0,
        },
    )
    assert result.to_dict("records") == [{"road": "Smith St", "speed_zone": 60}]

    none = warehouse.query("SELECT road FROM crashes WHERE fatal = @fatal", {"fatal": False})
    assert none["road"].tolist() == ["O'Brien Rd"]


def test_parameter_values_are_never_formatted_into_sql(warehouse: BigQueryWarehouse) -> None:
    warehouse.load_frame("crashes", crashes_frame())
    injection = "x' OR '1'='1"

    assert warehouse.query("SELECT road FROM crashes WHERE road = @road", {"road": injection}).empty
    match = warehouse.query("SELECT road FROM crashes WHERE road = @r", {"r": "O'Brien Rd"})
    assert match["road"].tolist() == ["O'Brien Rd"]
    echoed = warehouse.query("SELECT @text AS text", {"text": "quote ' double \" back \\ ;--"})
    assert echoed["text"].iloc[0] == "quote ' double \" back \\ ;--"


def test_parameter_types_are_chosen_from_python_types() -> None:
    kinds = {
        name: query_parameter(name, value).type_
        for name, value in {
            "flag": True,
            "count": 3,
            "ratio": 0.5,
            "text": "x",
            "day": dt.date(2018, 1, 1),
            "aware": dt.datetime(2018, 1, 1, tzinfo=dt.UTC),
            "naive": dt.datetime(2018, 1, 1),
        }.items()
    }
    assert kinds == {
        "flag": "BOOL",
        "count": "INT64",
        "ratio": "FLOAT64",
        "text": "STRING",
        "day": "DATE",
        "aware": "TIMESTAMP",
        "naive": "DATETIME",
    }
    with pytest.raises(InputError, match="@items"):
        query_parameter("items", [1, 2])


def test_select_into_creates_and_replaces_with_row_count(warehouse: BigQueryWarehouse) -> None:
    warehouse.load_frame("crashes", crashes_frame())
    sql = "SELECT * FROM crashes WHERE accident_date >= @start"

    assert warehouse.select_into("recent", sql, {"start": dt.date(2018, 1, 1)}) == 2
    assert warehouse.columns("recent") == warehouse.columns("crashes")
    assert warehouse.select_into("recent", sql, {"start": dt.date(2018, 6, 1)}) == 1
    assert warehouse.query("SELECT count(*) AS n FROM recent")["n"].iloc[0] == 1


def test_export_writes_a_readable_parquet_file_into_the_lake(
    warehouse: BigQueryWarehouse, lake: LocalLake
) -> None:
    warehouse.load_frame("crashes", crashes_frame())
    uri = f"gs://crashed-lake/exports/{warehouse.dataset}/crashes.parquet"

    assert warehouse.export("crashes", uri) == uri

    table = pq.read_table(io.BytesIO(lake.get_bytes(uri)))
    assert table.num_rows == 3
    assert table.column_names == list(crashes_frame().columns)
    assert str(table.schema.field("accident_date").type) == "date32[day]"
    assert sorted(table.column("speed_zone").drop_null().to_pylist()) == [60, 100]


def test_export_of_a_missing_table_is_not_found(warehouse: BigQueryWarehouse) -> None:
    with pytest.raises(NotFoundError, match="nope"):
        warehouse.export("nope", "gs://crashed-lake/exports/nope.parquet")


def test_table_exists_and_columns(warehouse: BigQueryWarehouse) -> None:
    assert not warehouse.table_exists("crashes")  # dataset not even created yet
    warehouse.load_frame("crashes", crashes_frame())
    assert warehouse.table_exists("crashes")
    assert not warehouse.table_exists("other")
    dataset = warehouse.client.get_dataset(warehouse.dataset_ref)
    assert dataset.location == LOCATION


def test_missing_table_raises_not_found_naming_it(warehouse: BigQueryWarehouse) -> None:
    warehouse.load_frame("crashes", crashes_frame())
    with pytest.raises(NotFoundError, match="missing_table"):
        warehouse.columns("missing_table")
    with pytest.raises(NotFoundError, match="missing_table"):
        warehouse.query("SELECT * FROM missing_table")
    with pytest.raises(NotFoundError, match="missing_table"):
        warehouse.select_into("copy", "SELECT * FROM missing_table")


def test_bad_sql_and_bad_names_are_clear_errors(warehouse: BigQueryWarehouse) -> None:
    with pytest.raises(ServiceError, match="warehouse query failed"):
        warehouse.query("SELEC 1")
    with pytest.raises(InputError, match="invalid table name"):
        warehouse.load_frame("crashes; DROP TABLE x", crashes_frame())
    with pytest.raises(InputError, match="unsupported value"):
        warehouse.query("SELECT @x AS x", {"x": object()})


def test_unreachable_endpoint_is_a_service_error(lake: LocalLake) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    warehouse = BigQueryWarehouse(
        PROJECT, "crashed", LOCATION, lake, api_endpoint=endpoint, retry_deadline=1.0
    )
    with pytest.raises(ServiceError, match=f"BigQuery at {endpoint} unreachable") as caught:
        warehouse.table_exists("crashes")
    assert "\n" not in caught.value.message
    with pytest.raises(ServiceError, match=endpoint):
        warehouse.load_frame("crashes", crashes_frame())


def test_missing_google_credentials_is_a_config_error(
    lake: LocalLake, monkeypatch: pytest.MonkeyPatch
) -> None:
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    def no_credentials(*args: object, **kwargs: object) -> object:
        raise DefaultCredentialsError("Your default credentials were not found.")

    monkeypatch.setattr(google.auth, "default", no_credentials)  # never probes the network
    with pytest.raises(ConfigError, match="no Google credentials for BigQuery"):
        BigQueryWarehouse(PROJECT, "crashed", LOCATION, lake)
