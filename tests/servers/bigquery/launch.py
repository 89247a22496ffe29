"""Start the local-bigquery emulator offline. Run with ``.venv-bigquery/bin/python``.

local-bigquery's DuckDB needs the ``icu`` (TimeZone), ``ducklake`` (storage) and ``spatial``
(GEOGRAPHY macros, run at start-up) extensions, and ``httpfs`` when it talks to a Cloud Storage
emulator. DuckDB would download them on first use, which fails offline. Here they are installed
from the ``duckdb-extension-*`` pip wheels into a folder inside the venv (not ``~/.duckdb``), and
every DuckDB connection the emulator opens is pointed at that folder with auto-install off.
``--install-extensions`` alone only installs them (setup.sh does, under its lock).

Usage (arguments are local-bigquery's own; ``--host`` defaults to 127.0.0.1 here)::

    .venv-bigquery/bin/python tests/servers/bigquery/launch.py \\
        --port 9050 --grpc-port 0 --project local --data-dir /tmp/bq

Extract jobs to ``gs://bucket/path`` write to ``$GCS_LOCAL_ROOT/bucket/path`` when
``GCS_LOCAL_ROOT`` is set (else ``<data-dir>/gcs``), or upload to a Cloud Storage emulator when
``STORAGE_EMULATOR_HOST`` is set instead.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import duckdb

EXTENSIONS = ("icu", "ducklake", "httpfs", "spatial")
EXTENSION_DIR = Path(sys.prefix) / "duckdb-extensions"


def install_extensions() -> None:
    """Install the wheel-shipped extensions into :data:`EXTENSION_DIR` (a no-op when present)."""
    EXTENSION_DIR.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(config={"extension_directory": str(EXTENSION_DIR)}) as con:
        version = con.sql("PRAGMA version").fetchone()[0]  # e.g. v1.5.5
        for name in EXTENSIONS:
            module = importlib.import_module(f"duckdb_extension_{name}")
            path = (
                Path(module.__file__).parent / "extensions" / version / f"{name}.duckdb_extension"
            )
            if not path.is_file():
                raise SystemExit(
                    f"launch.py: {path} missing; rerun tests/servers/bigquery/setup.sh"
                )
            con.execute(f"INSTALL '{path}'")


def offline_connect() -> None:
    """Make every ``duckdb.connect`` use :data:`EXTENSION_DIR` and never download."""
    original = duckdb.connect

    def connect(
        database: Any = ":memory:", read_only: bool = False, config: dict | None = None
    ) -> duckdb.DuckDBPyConnection:
        merged = {
            "extension_directory": str(EXTENSION_DIR),
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": True,
            **(config or {}),
        }
        return original(database, read_only, merged)

    duckdb.connect = connect


def main(argv: list[str]) -> None:
    install_extensions()
    if argv == ["--install-extensions"]:  # setup.sh: install once, under its lock
        return
    offline_connect()
    from local_bigquery import cli

    if not any(arg == "--host" or arg.startswith("--host=") for arg in argv):
        argv = ["--host", "127.0.0.1", *argv]
    cli.main(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
