"""Test tiers: an unmarked test is a unit test, and a unit test opens neither Kafka nor chDB.

A test marked with one of ``INTEGRATION`` may use the real broker, chDB or Chromium; every
other test is marked ``unit`` at collection (so ``pytest -m unit``, i.e. ``scripts/fast``,
selects exactly the fast tier) and fails with a message naming the marker to add if it asks
for the broker or chDB fixtures, or opens a Kafka connection (kafka-python or aiokafka, even
to a dead address) or a chDB engine. Child processes are not watched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import aiokafka.conn
import chdb
import kafka.net.inet
import pytest

from mayak.kafka_local import LocalBroker
from tests.lanes import check_lanes

INTEGRATION = ("kafka", "clickhouse", "browser", "faults", "long_outage")
# fixtures that bring up the real broker or chDB, and the marker each needs
_FIXTURES = {
    "kafka_broker": "kafka",
    "kafka_bootstrap": "kafka",
    "stack": "kafka",
    "ch": "clickhouse",
    "wh": "clickhouse",
}


class UnitTierError(AssertionError):
    """An unmarked (unit) test reached for Kafka or chDB."""


def _integration(item: pytest.Item) -> bool:
    return any(item.get_closest_marker(name) for name in INTEGRATION)


def _message(nodeid: str, what: str, marker: str) -> str:
    return (
        f"{nodeid} is a unit test (no {'/'.join(INTEGRATION)} marker) but {what}: "
        f"mark it @pytest.mark.{marker} (an integration test) or give it a fake"
    )


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test without an integration marker ``unit`` (before ``-m`` selects)."""
    for item in items:
        if not _integration(item):
            item.add_marker(pytest.mark.unit)
    check_lanes(items)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Fail a unit test that asks for the broker or chDB before the fixture starts them."""
    if _integration(item):
        return
    for fixture in getattr(item, "fixturenames", ()):
        if fixture in _FIXTURES:
            raise UnitTierError(
                _message(item.nodeid, f"uses the fixture `{fixture}`", _FIXTURES[fixture])
            )


@pytest.fixture(autouse=True)
def unit_tier_guard(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """In a unit test, opening Kafka or chDB raises, and fails the test even if swallowed."""
    if _integration(request.node):
        yield
        return
    seen: list[str] = []

    def refuse(what: str, marker: str) -> Callable[..., Any]:
        def guard(*args: Any, **kwargs: Any) -> Any:
            seen.append(_message(request.node.nodeid, what, marker))
            raise UnitTierError(seen[-1])

        return guard

    def refuse_async(what: str, marker: str) -> Callable[..., Any]:
        sync = refuse(what, marker)

        async def guard(*args: Any, **kwargs: Any) -> Any:
            return sync()

        return guard

    monkeypatch.setattr(chdb, "connect", refuse("opens chDB", "clickhouse"))
    monkeypatch.setattr(chdb, "query", refuse("opens chDB", "clickhouse"))
    monkeypatch.setattr(LocalBroker, "start", refuse("starts a Kafka broker", "kafka"))
    monkeypatch.setattr(
        kafka.net.inet.KafkaNetSocket, "connect", refuse_async("opens a Kafka connection", "kafka")
    )
    monkeypatch.setattr(
        aiokafka.conn.AIOKafkaConnection,
        "connect",
        refuse_async("opens a Kafka connection", "kafka"),
    )
    yield
    if seen:  # a client library may have caught the error and retried quietly
        pytest.fail(seen[0], pytrace=False)
