"""The one factory for ClickHouse clients: embedded chDB (``chdb://PATH``) or a server (``http(s)://``).

An embedded chDB path can be opened by one process only, and one process can open only one
chDB path; callers therefore create one client per process and pass it down.
"""

from __future__ import annotations

import re
import threading
from collections import deque
from typing import TYPE_CHECKING, Any

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError

from mayak.errors import MayakError

if TYPE_CHECKING:
    from clickhouse_connect.driver.query import QueryResult

    from mayak.settings import Settings


def make_client(
    dsn: str, database: str, create_database: bool = True, engine_mb: int | None = None
) -> Client:
    """Return a client whose default database is ``database`` (created if asked and missing).
    ``engine_mb``: for embedded chDB, the engine's memory bound (``embedded_options``)."""
    extra: dict[str, Any] = {}
    if engine_mb is not None and dsn.startswith("chdb://"):
        extra["chdb_options"] = embedded_options(engine_mb)
    try:
        if create_database:
            bootstrap = clickhouse_connect.get_client(dsn=dsn, **extra)
            bootstrap.command(f"CREATE DATABASE IF NOT EXISTS `{_identifier(database)}`")
        return clickhouse_connect.get_client(dsn=dsn, database=database, **extra)
    except Exception as exc:  # driver errors vary by backend; give one actionable message
        hint = (
            "another Mayak process (a worker or `mayak up`) already holds this chDB path; "
            "stop it, or query through the dashboards API"
            if dsn.startswith("chdb://")
            else "check MAYAK_CLICKHOUSE_DSN and that the server is up"
        )
        raise MayakError(f"cannot open ClickHouse at {dsn}: {exc}\n-> {hint}") from exc


def client_from_settings(settings: Settings) -> Client:
    return make_client(
        settings.clickhouse_dsn,
        settings.clickhouse_database,
        engine_mb=settings.clickhouse_embedded_memory_mb,
    )


def embedded_options(engine_mb: int) -> dict[str, int]:
    """Start-up settings of the embedded engine, which otherwise sizes itself for a whole
    server: 90% of the machine's memory as its bound and 5 GB for each of the mark, primary
    index and skip-index mark caches. Here the bound is ``engine_mb`` and each cache 1/16 of
    it (the marks of 10M events take a few MB). Queries above the bound fail with a memory
    error instead of growing the worker without limit."""
    cache = engine_mb * 2**20 // 16
    return {
        "max_server_memory_usage": engine_mb * 2**20,
        "mark_cache_size": cache,
        "primary_index_cache_size": cache,
        "index_mark_cache_size": cache,
    }


def _identifier(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise MayakError(f"invalid ClickHouse database name {name!r}: use letters, digits, _")
    return name


# ClickHouse error codes of a query stopped by a limit of ``read_limits``
_LIMIT_CODES = {158: "rows", 159: "time", 160: "time", 241: "memory", 396: "rows"}
TOO_HEAVY = "query too heavy ({what} limit): narrow the date range or drop a dimension"


def read_limits(settings: Settings) -> dict:
    """ClickHouse settings bounding one dashboard/research query's time, memory and groups."""
    return {
        "max_execution_time": settings.query_max_seconds,
        "timeout_overflow_mode": "throw",
        "max_memory_usage": settings.query_max_memory_mb * 1024 * 1024,
        "max_rows_to_group_by": settings.query_max_groups,
        "group_by_overflow_mode": "throw",
    }


class LimitedClient:
    """A client whose every ``query`` carries the given ClickHouse settings (read limits).

    Inserts and commands pass through unchanged: the limits are for the questions callers ask,
    not for the audit rows or erasures written beside them.
    """

    def __init__(self, client: Client, limits: dict) -> None:
        self._client = client
        self.limits = limits

    def query(
        self, query: str, parameters: Any = None, settings: dict | None = None, **kw: Any
    ) -> QueryResult:
        return self._client.query(
            query, parameters=parameters, settings={**self.limits, **(settings or {})}, **kw
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


class WarehouseBusy(Exception):
    """The one query slot stayed taken longer than a caller should wait."""


class SerialClient:
    """A client shared by threads that runs one call at a time (embedded chDB is not safe to
    call concurrently), waiting at most ``wait_seconds`` for the slot, then ``WarehouseBusy``.

    The slot is held per query, insert or command, not per API call: a call running many
    queries (a whole-view export) interleaves with the short calls of others instead of
    keeping them waiting until it ends.
    """

    def __init__(self, client: Client, wait_seconds: float) -> None:
        self._client = client
        self._slot = threading.Condition()
        self._queue: deque[object] = deque()  # waiting turns, first come first served
        self._busy = False
        self.wait_seconds = wait_seconds

    def _acquire(self) -> None:
        # FIFO, not a plain Lock: a thread running many queries back to back would otherwise
        # often take the slot again before a woken waiter does
        turn = object()
        with self._slot:
            self._queue.append(turn)
            if not self._slot.wait_for(
                lambda: not self._busy and self._queue[0] is turn, self.wait_seconds
            ):
                self._queue.remove(turn)
                self._slot.notify_all()
                raise WarehouseBusy()
            self._queue.popleft()
            self._busy = True

    def _release(self) -> None:
        with self._slot:
            self._busy = False
            self._slot.notify_all()

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._client, name)
        if not callable(found):
            return found

        def serial(*args: Any, **kw: Any) -> Any:
            self._acquire()
            try:
                return found(*args, **kw)
            finally:
                self._release()

        return serial


def limit_hit(exc: BaseException) -> str | None:
    """Which limit (time, memory, rows) stopped the query, or None for any other error."""
    if not isinstance(exc, DatabaseError):
        return None
    code = re.search(r"Code: (\d+)", str(exc))
    return _LIMIT_CODES.get(int(code.group(1))) if code else None
