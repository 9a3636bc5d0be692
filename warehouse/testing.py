"""Test helpers for code that opens chDB: one chDB path per process, one database per test.

A process can open only one chDB path, so every fixture in a pytest process must share it;
the path is a process-wide singleton here (whatever conftest asks for it) and each test
isolates itself in a fresh database.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import uuid

from clickhouse_connect.driver.client import Client

from warehouse.client import make_client

_dsn: str | None = None


def process_chdb_dsn() -> str:
    """The one ``chdb://`` DSN of this process (created on first use, removed at exit)."""
    global _dsn
    if _dsn is None:
        path = tempfile.mkdtemp(prefix="mayak-chdb-")
        atexit.register(shutil.rmtree, path, True)
        _dsn = f"chdb://{path}"
    return _dsn


def fresh_database(dsn: str | None = None) -> Client:
    """A client on a new, empty database of the process chDB (or ``dsn``)."""
    return make_client(dsn or process_chdb_dsn(), f"t_{uuid.uuid4().hex[:16]}")


def drop(client: Client) -> None:
    client.command(f"DROP DATABASE IF EXISTS `{client.database}`")
