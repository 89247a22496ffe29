"""The GCP warehouse: one BigQuery dataset, through the official ``google-cloud-bigquery`` client.

- Table names are bare identifiers qualified with ``project.dataset``; SQL runs with the dataset as
  ``QueryJobConfig.default_dataset``. ``@name`` parameters become typed ``ScalarQueryParameter``\\ s
  (bool → BOOL, int → INT64, float → FLOAT64, str → STRING, date → DATE, aware datetime →
  TIMESTAMP, naive datetime → DATETIME); values are never formatted into SQL text.
- ``load_chunks`` (and ``load_frame``, one chunk) writes the chunks to one local Parquet file as
  they come (so an unconvertible chunk fails before BigQuery is touched, and memory holds one
  chunk), loads it into a staging table ``_staging_<table>_<hex>`` with an explicit schema in
  one load job, then replaces the target with ``CREATE OR REPLACE TABLE … AS SELECT … FROM
  staging`` (one atomic statement, casting the columns ``retype`` names). A failure at any step
  leaves the old table as it was; the staging table is dropped in every case.
- ``export`` runs a BigQuery extract job (PARQUET) to the ``gs://`` URI — the same code path on
  GCP and against the local-bigquery emulator, which writes ``gs://`` objects into a folder
  (``GCS_LOCAL_ROOT``) laid out like :class:`crashed.adapters.local_lake.LocalLake` or into a
  Cloud Storage emulator. There is no query-and-upload fallback: instead the lake is asked
  afterwards whether the object exists, so a warehouse writing to storage the lake cannot see is
  reported (``ServiceError``) rather than silently "exported". On GCP a single-file extract
  is limited to 1 GB of table data.
- ``query`` fetches results as Arrow over the REST API (no BigQuery Storage client; the
  client's ``to_dataframe`` is deprecated in favour of pandas-gbq) and converts them itself:
  BOOL → ``boolean``, INT64 → ``Int64`` (nullable), DATE → ``datetime64[us]`` as the DuckDB
  adapter returns it (not the client's ``dbdate``), TIMESTAMP → ``datetime64[us, UTC]``.
- Google API errors become :mod:`crashed.errors`: missing table or dataset → ``NotFoundError``,
  unreachable endpoint, 5xx or retry deadline → ``ServiceError``, bad load data → ``InputError``,
  missing or expired credentials → ``ConfigError``.
"""

from __future__ import annotations

import datetime as dt
import re
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path

import google.auth.exceptions
import pandas as pd
import pyarrow as pa
import requests
from google.api_core import exceptions as api_exceptions
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery
from google.cloud.bigquery.retry import DEFAULT_RETRY

from crashed.adapters.tabular import arrow_to_frame, param_value, write_parquet
from crashed.errors import ConfigError, CrashedError, InputError, NotFoundError, ServiceError
from crashed.ports import Lake, QueryParams

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_TYPES = {
    "BOOL": "BOOLEAN",
    "BOOLEAN": "BOOLEAN",
    "INTEGER": "INT64",
    "INT64": "INT64",
    "FLOAT": "FLOAT64",
    "FLOAT64": "FLOAT64",
    "NUMERIC": "NUMERIC",
    "BIGNUMERIC": "BIGNUMERIC",
    "STRING": "STRING",
    "BYTES": "BYTES",
    "DATE": "DATE",
    "DATETIME": "DATETIME",
    "TIME": "TIME",
    "TIMESTAMP": "TIMESTAMP",
    "RECORD": "STRUCT",
    "STRUCT": "STRUCT",
}
PUBLIC_ENDPOINT = "https://bigquery.googleapis.com"


def _table_name(table: str) -> str:
    if not _IDENT.match(table):
        raise InputError(f"invalid table name {table!r} (letters, digits and _ only)")
    return table


def _first_line(error: BaseException) -> str:
    message = getattr(error, "message", None) or str(error)
    lines = [line.strip() for line in str(message).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def _network_reason(error: BaseException) -> str:
    """``[Errno 111] Connection refused`` rather than urllib3's nested repr, when present."""
    found = re.search(r"\[Errno -?\d+\] [^\"')]+", str(error))
    return found.group(0).strip() if found else _first_line(error)


def query_parameter(name: str, value: object) -> bigquery.ScalarQueryParameter:
    """A typed BigQuery parameter for ``@name`` from a Python value (bool is checked before int)."""
    value = param_value(name, value)
    if isinstance(value, bool):
        return bigquery.ScalarQueryParameter(name, "BOOL", value)
    if isinstance(value, int):
        return bigquery.ScalarQueryParameter(name, "INT64", value)
    if isinstance(value, float):
        return bigquery.ScalarQueryParameter(name, "FLOAT64", value)
    if isinstance(value, str):
        return bigquery.ScalarQueryParameter(name, "STRING", value)
    if isinstance(value, dt.datetime):  # before date: datetime is a date subclass
        kind = "TIMESTAMP" if value.tzinfo is not None else "DATETIME"
        return bigquery.ScalarQueryParameter(name, kind, value)
    return bigquery.ScalarQueryParameter(name, "DATE", value)


def _bigquery_type(field: pa.Field) -> str:
    kind = field.type
    if pa.types.is_boolean(kind):
        return "BOOL"
    if pa.types.is_integer(kind):
        return "INT64"
    if pa.types.is_floating(kind):
        return "FLOAT64"
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_null(kind):
        return "STRING"
    if pa.types.is_date(kind):
        return "DATE"
    if pa.types.is_timestamp(kind):
        return "TIMESTAMP" if kind.tz is not None else "DATETIME"
    raise InputError(f"column {field.name!r} has type {kind}, which cannot be loaded into BigQuery")


def _cast(column: str, kind: str | None) -> str:
    if kind is None:
        return f"`{column}`"
    if kind not in ("INT64", "FLOAT64"):
        raise InputError(f"cannot retype column {column!r} to {kind!r} (INT64 or FLOAT64)")
    return f"CAST(`{column}` AS {kind}) AS `{column}`"


class BigQueryWarehouse:
    """:class:`crashed.ports.Warehouse` on one BigQuery dataset."""

    def __init__(
        self,
        project: str,
        dataset: str,
        location: str,
        lake: Lake,
        api_endpoint: str | None = None,
        client: bigquery.Client | None = None,
        *,
        retry_deadline: float = 120.0,
    ) -> None:
        self.project = project
        self.dataset = dataset
        self.location = location
        self.lake = lake
        self.endpoint = (api_endpoint or PUBLIC_ENDPOINT).rstrip("/")
        self.client = client or _make_client(project, location, api_endpoint)
        self.retry = DEFAULT_RETRY.with_timeout(retry_deadline)
        self.dataset_ref = bigquery.DatasetReference(project, dataset)
        self._dataset_ready = False

    # -- Warehouse -----------------------------------------------------------------------------

    def load_frame(self, table: str, frame: pd.DataFrame) -> int:
        return self.load_chunks(table, [frame])

    def load_chunks(
        self,
        table: str,
        chunks: Iterable[pd.DataFrame],
        retype: Callable[[], Mapping[str, str]] | None = None,
    ) -> int:
        name = _table_name(table)
        with tempfile.TemporaryDirectory(prefix="crashed-load-") as tmp:
            path = Path(tmp) / "chunks.parquet"
            rows, arrow_schema = write_parquet(chunks, name, path)
            for column in arrow_schema:
                _bigquery_type(column)  # unloadable types fail before BigQuery is touched
            casts = dict(retype() if retype else {})
            schema = [bigquery.SchemaField(f.name, _bigquery_type(f)) for f in arrow_schema]
            select = (
                ", ".join(_cast(f.name, casts.get(f.name)) for f in arrow_schema) if casts else "*"
            )
            self._ensure_dataset()
            staging = self._ref(f"_staging_{name}_{uuid.uuid4().hex[:12]}")
            config = bigquery.LoadJobConfig(
                source_format=bigquery.SourceFormat.PARQUET,
                schema=schema,
                write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
            )
            try:
                with self._errors(f"cannot load table {self._qualified(name)}", load=True):
                    with path.open("rb") as data:
                        job = self.client.load_table_from_file(
                            data, staging, location=self.location, job_config=config
                        )
                    job.result(retry=self.retry)
                    self._run(
                        f"CREATE OR REPLACE TABLE `{name}` AS SELECT {select} "
                        f"FROM `{staging.table_id}`"
                    )
            finally:
                self._drop(staging)
        return rows

    def query(self, sql: str, params: QueryParams | None = None) -> pd.DataFrame:
        with self._errors("warehouse query failed"):
            rows = self._run(sql, params).result(retry=self.retry)
            arrow = rows.to_arrow(create_bqstorage_client=False)
        return arrow_to_frame(arrow)

    def select_into(self, table: str, sql: str, params: QueryParams | None = None) -> int:
        name = _table_name(table)
        self._ensure_dataset()
        destination = self._ref(name)
        with self._errors(f"cannot create {self._qualified(name)}"):
            self._run(
                sql,
                params,
                destination=destination,
                write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
                create_disposition=bigquery.CreateDisposition.CREATE_IF_NEEDED,
            )
            rows = self.client.get_table(destination, retry=self.retry).num_rows
        return int(rows or 0)

    def export(self, table: str, uri: str) -> str:
        name = self._existing(table)
        config = bigquery.ExtractJobConfig(destination_format=bigquery.DestinationFormat.PARQUET)
        with self._errors(f"cannot export {self._qualified(name)} to {uri}"):
            job = self.client.extract_table(
                self._ref(name), uri, job_config=config, location=self.location, retry=self.retry
            )
            job.result(retry=self.retry)
        if not self.lake.exists(uri):
            raise ServiceError(
                f"BigQuery exported {self._qualified(name)} to {uri}, but the lake has no object "
                "there: the warehouse and the lake do not share storage"
            )
        return uri

    def table_exists(self, table: str) -> bool:
        name = _table_name(table)
        try:
            with self._errors(f"cannot look up {self._qualified(name)}"):
                self.client.get_table(self._ref(name), retry=self.retry)
        except NotFoundError:
            return False
        return True

    def columns(self, table: str) -> dict[str, str]:
        name = _table_name(table)
        with self._errors(f"cannot read the schema of {self._qualified(name)}"):
            schema = self.client.get_table(self._ref(name), retry=self.retry).schema
        return {f.name: _TYPES.get(f.field_type.upper(), f.field_type.upper()) for f in schema}

    # -- helpers -------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the client's HTTP session."""
        self.client.close()

    def _ref(self, table: str) -> bigquery.TableReference:
        return self.dataset_ref.table(table)

    def _qualified(self, table: str) -> str:
        return f"{self.project}.{self.dataset}.{table}"

    def _existing(self, table: str) -> str:
        name = _table_name(table)
        if not self.table_exists(name):
            raise NotFoundError(f"table {self._qualified(name)} does not exist in BigQuery")
        return name

    def _ensure_dataset(self) -> None:
        if self._dataset_ready:
            return
        dataset = bigquery.Dataset(self.dataset_ref)
        dataset.location = self.location
        with self._errors(f"cannot create dataset {self.project}.{self.dataset}"):
            self.client.create_dataset(dataset, exists_ok=True, retry=self.retry)
        self._dataset_ready = True

    def _run(
        self, sql: str, params: QueryParams | None = None, **config: object
    ) -> bigquery.QueryJob:
        job_config = bigquery.QueryJobConfig(
            default_dataset=self.dataset_ref,
            query_parameters=[query_parameter(k, v) for k, v in (params or {}).items()],
            **config,
        )
        job = self.client.query(
            sql, job_config=job_config, location=self.location, retry=self.retry
        )
        job.result(retry=self.retry)
        return job

    def _drop(self, table: bigquery.TableReference) -> None:
        # best effort: the original error (if any) matters more
        with suppress(api_exceptions.GoogleAPIError, requests.RequestException):
            self.client.delete_table(table, not_found_ok=True, retry=self.retry)

    @contextmanager
    def _errors(self, action: str, *, load: bool = False) -> Iterator[None]:
        """Translate Google client errors into one-line :mod:`crashed.errors`."""
        try:
            yield
        except CrashedError:
            raise
        except api_exceptions.NotFound as error:
            raise NotFoundError(f"{action}: {_first_line(error)}") from None
        except (api_exceptions.Unauthorized, api_exceptions.Forbidden) as error:
            raise ServiceError(
                f"{action}: permission denied at {self.endpoint}: {_first_line(error)}"
            ) from None
        except api_exceptions.BadRequest as error:
            kind = InputError if load else ServiceError
            raise kind(f"{action}: {_first_line(error)}") from None
        except api_exceptions.RetryError as error:
            cause = error.cause if error.cause is not None else error
            raise ServiceError(
                f"{action}: BigQuery at {self.endpoint} unreachable ({_network_reason(cause)})"
            ) from None
        except google.auth.exceptions.RefreshError as error:
            raise ConfigError(
                f"{action}: Google credentials rejected: {_first_line(error)}"
            ) from None
        except (
            requests.RequestException,
            google.auth.exceptions.TransportError,
            ConnectionError,
            TimeoutError,
        ) as error:
            raise ServiceError(
                f"{action}: BigQuery at {self.endpoint} unreachable ({_network_reason(error)})"
            ) from None
        except api_exceptions.GoogleAPIError as error:
            raise ServiceError(
                f"{action}: BigQuery at {self.endpoint} failed: {_first_line(error)}"
            ) from None


def _make_client(project: str, location: str, api_endpoint: str | None) -> bigquery.Client:
    if api_endpoint:
        return bigquery.Client(
            project=project,
            location=location,
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
            client_options=ClientOptions(api_endpoint=api_endpoint),
        )
    try:
        return bigquery.Client(project=project, location=location)
    except google.auth.exceptions.DefaultCredentialsError as error:
        raise ConfigError(
            "no Google credentials for BigQuery: set GOOGLE_APPLICATION_CREDENTIALS or run "
            f"`gcloud auth application-default login` ({_first_line(error)})"
        ) from None
