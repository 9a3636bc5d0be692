"""The one factory for ClickHouse clients: embedded chDB (``chdb://PATH``) or a server (``http(s)://``).

An embedded chDB path can be opened by one process only, and one process can open only one
chDB path; callers therefore create one client per process and pass it down.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError

from mayak.errors import MayakError

if TYPE_CHECKING:
    from clickhouse_connect.driver.query import QueryResult

    from mayak.settings import Settings


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


def client_from_settings(settings: Settings) -> Client:
    return make_client(settings.clickhouse_dsn, settings.clickhouse_database)


def _identifier(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise MayakError(f"invalid ClickHouse database name {name!r}: use letters, digits, _")
    return name


# ClickHouse error codes of a query stopped by a limit of ``read_limits``
_LIMIT_CODES = {158: "rows", 159: "time", 160: "time", 241: "memory", 396: "rows"}
TOO_HEAVY = "query too heavy ({what} limit): narrow the date range or drop a dimension"


def read_limits(settings: Settings) -> dict:
    """ClickHouse settings bounding one dashboard/research query's time, memory and groups."""
    return {"max_execution_time": settings.query_max_seconds,
            "timeout_overflow_mode": "throw",
            "max_memory_usage": settings.query_max_memory_mb * 1024 * 1024,
            "max_rows_to_group_by": settings.query_max_groups,
            "group_by_overflow_mode": "throw"}


class LimitedClient:
    """A client whose every ``query`` carries the given ClickHouse settings (read limits).

    Inserts and commands pass through unchanged: the limits are for the questions callers ask,
    not for the audit rows or erasures written beside them.
    """

    def __init__(self, client: Client, limits: dict) -> None:
        self._client = client
        self.limits = limits

    def query(self, query: str, parameters: Any = None, settings: dict | None = None,
              **kw: Any) -> QueryResult:
        return self._client.query(query, parameters=parameters,
                                  settings={**self.limits, **(settings or {})}, **kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def limit_hit(exc: BaseException) -> str | None:
    """Which limit (time, memory, rows) stopped the query, or None for any other error."""
    if not isinstance(exc, DatabaseError):
        return None
    code = re.search(r"Code: (\d+)", str(exc))
    return _LIMIT_CODES.get(int(code.group(1))) if code else None
