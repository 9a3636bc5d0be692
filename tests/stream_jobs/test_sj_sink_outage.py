"""The injected sink outage (``MAYAK_TEST_SINK_OUTAGE``) opens and closes on the worker's clock."""

from __future__ import annotations

import pytest

from stream_jobs.faults import SinkOutage, outage_from_env
from tests.clock import FakeClock


class _Client:
    database = "d"

    def __init__(self) -> None:
        self.inserts = 0

    def raw_insert(self, *args, **kwargs) -> None:
        self.inserts += 1


def test_inserts_fail_only_inside_the_window_of_the_clock() -> None:
    client, clock = _Client(), FakeClock()
    assert outage_from_env(client, {}, clock) is client  # unset: untouched
    failing = outage_from_env(client, {"MAYAK_TEST_SINK_OUTAGE": "10:60"}, clock)
    assert failing.database == "d"  # everything but inserts passes through
    failing.raw_insert("events")
    clock.advance(10)
    with pytest.raises(SinkOutage):
        failing.raw_insert("events")
    clock.advance(59.9)
    with pytest.raises(SinkOutage):
        failing.raw_insert("events")
    clock.advance(0.1)
    failing.raw_insert("events")
    assert client.inserts == 2
