"""Test-only faults: ClickHouse inserts that fail for a while (``MAYAK_TEST_SINK_OUTAGE``), and
a SIGKILL right after an insert into ``events`` (``MAYAK_TEST_KILL_AFTER_INSERTS``).

``MAYAK_TEST_SINK_OUTAGE="A:B"`` makes every insert of the worker's ClickHouse client raise
from A seconds after start-up for B seconds, as a warehouse that is down would; reads still
work. Used by the fault tests (tests/stream_jobs/test_sj_faults.py) to show that the sink
keeps its offsets uncommitted and lands everything afterwards. Not a setting: unset, the
client is returned untouched.

``MAYAK_TEST_KILL_AFTER_INSERTS=N`` makes the worker SIGKILL itself as soon as its N-th insert
into ``events`` has returned: rows landed, their offsets not committed yet (the commit waits for
the flush that is still running). A kill from outside hits that window only by luck, and less
often the faster commits follow landings; the exactly-once test needs it every time to show the
restarted sink skipping what it had landed.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mayak.clock import SYSTEM_CLOCK, Clock

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client


class SinkOutage(ConnectionError):
    """Raised by inserts during an injected outage."""


class _FailingInserts:
    def __init__(self, client: Client, start: float, seconds: float, clock: Clock) -> None:
        self._client, self._start, self._end = client, start, start + seconds
        self._clock = clock

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def raw_insert(self, *args: Any, **kwargs: Any) -> Any:
        if self._start <= self._clock.monotonic() < self._end:
            raise SinkOutage("injected ClickHouse outage (MAYAK_TEST_SINK_OUTAGE)")
        return self._client.raw_insert(*args, **kwargs)


def outage_from_env(
    client: Client, env: Mapping[str, str] = os.environ, clock: Clock = SYSTEM_CLOCK
) -> Any:
    """``client``, or a wrapper whose inserts fail during the window the variable names."""
    spec = env.get("MAYAK_TEST_SINK_OUTAGE", "")
    if not spec:
        return client
    after, _, seconds = spec.partition(":")
    return _FailingInserts(client, clock.monotonic() + float(after), float(seconds), clock)


class _KillAfterInserts:
    def __init__(self, client: Client, inserts: int) -> None:
        self._client, self._left = client, inserts

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def raw_insert(self, table: str, *args: Any, **kwargs: Any) -> Any:
        result = self._client.raw_insert(table, *args, **kwargs)
        if table == "events":
            self._left -= 1
            if self._left <= 0:
                os.kill(os.getpid(), signal.SIGKILL)
        return result


def faults_from_env(
    client: Client, env: Mapping[str, str] = os.environ, clock: Clock = SYSTEM_CLOCK
) -> Any:
    """``client`` with the faults the test variables name (none: ``client`` itself)."""
    client = outage_from_env(client, env, clock)
    inserts = env.get("MAYAK_TEST_KILL_AFTER_INSERTS", "")
    return _KillAfterInserts(client, int(inserts)) if inserts else client
