"""The one factory for ClickHouse clients: embedded chDB (``chdb://PATH``) or a server (``http(s)://``).

An embedded chDB path can be opened by one process only, and one process can open only one
chDB path; callers therefore create one client per process and pass it down.
"""

from __future__ import annotations

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from mayak.errors import MayakError


def make_client(dsn: str, database: str, create_database: bool = True) -> Client:
    """Return a client whose default database is ``database`` (created if asked and missing)."""
    try:
        if create_database:
            bootstrap = clickhouse_connect.get_client(dsn=dsn)
            bootstrap.command(f"CREATE DATABASE IF NOT EXISTS `{_identifier(database)}`")
        return clickhouse_connect.get_client(dsn=dsn, database=database)
    except Exception as exc:  # driver errors vary by backend; give one actionable message
        hint = ("another Mayak process (a worker or `mayak up`) already holds this chDB path; "
                "stop it, or query through the dashboards API"
                if dsn.startswith("chdb://") else "check MAYAK_CLICKHOUSE_DSN and that the server is up")
        raise MayakError(f"cannot open ClickHouse at {dsn}: {exc}\n-> {hint}") from exc


def client_from_settings(settings) -> Client:
    return make_client(settings.clickhouse_dsn, settings.clickhouse_database)


def _identifier(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise MayakError(f"invalid ClickHouse database name {name!r}: use letters, digits, _")
    return name
