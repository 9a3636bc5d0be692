"""The outbox's view of Kafka's health, with fake producers (no broker): a stall is noticed
after ``stall_s`` and answered 503 at once (the waiting requests too), a trial request goes
through every ``PROBE_EVERY_S``, the first ack ends the outage, and a producer that reported
an error (or stayed silent past its delivery timeout) is replaced (issue 16)."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from producers.collector import outbox as outbox_module
from producers.collector.outbox import PROBE_EVERY_S, PROBE_TIMEOUT_S, Outbox, Unavailable
from tests.clock import FakeClock
from tests.producers.test_collector_fast import FakeProducer


async def _timed(coro) -> tuple[float, BaseException | None]:
    t0 = time.monotonic()
    try:
        await coro
        return time.monotonic() - t0, None
    except Exception as exc:
        return time.monotonic() - t0, exc


async def test_a_stall_is_answered_503_at_once_then_trials_until_the_first_ack() -> None:
    hold = threading.Event()  # the broker: acks nothing until set
    box = Outbox(
        "-",
        "t",
        max_pending=1000,
        ack_timeout=30,
        stall_s=0.5,
        producer_factory=lambda: FakeProducer(hold=hold),
    )
    try:
        assert box.status() == (True, "ok")
        waiting = asyncio.ensure_future(_timed(box.produce([(b"k", b'"1"')])))
        took, exc = await waiting  # not 30 s: the stall ends it
        assert isinstance(exc, Unavailable) and 0.5 <= took < 1.5
        ready, reason = box.status()
        assert not ready and "no acknowledgement from Kafka" in reason
        await asyncio.sleep(PROBE_EVERY_S)
        outcomes = await asyncio.gather(
            *(_timed(box.produce([(b"k", b'"%d"' % i)])) for i in range(20))
        )
        slow = [t for t, exc in outcomes if t > 0.1]
        assert all(isinstance(exc, Unavailable) for _, exc in outcomes)
        assert len(slow) == 1 and slow[0] < PROBE_TIMEOUT_S + 0.7  # the one trial
        hold.set()  # the broker is back: the next trial is acknowledged
        await asyncio.sleep(PROBE_EVERY_S)
        assert (await _timed(box.produce([(b"k", b'"ok"')])))[1] is None
        assert box.status() == (True, "ok")
        assert (await _timed(box.produce([(b"k", b'"ok2"')])))[1] is None
    finally:
        hold.set()
        box.close()


async def test_a_producer_that_failed_a_send_is_replaced() -> None:
    made: list[FakeProducer] = []

    def factory() -> FakeProducer:
        made.append(FakeProducer(fail_on=b"bad" if not made else None))
        return made[-1]

    box = Outbox("-", "t", max_pending=1000, ack_timeout=5, stall_s=5, producer_factory=factory)
    try:
        with pytest.raises(Unavailable):
            await box.produce([(b"k", b'"bad"')])
        assert not box.status()[0]  # an error and no ack since: unavailable
        await asyncio.sleep(PROBE_EVERY_S)
        await box.produce([(b"k", b'"bad again, on a new producer"')])
        assert len(made) == 2 and made[1].sent and box.status() == (True, "ok")
    finally:
        box.close()


async def test_a_producer_silent_past_its_delivery_timeout_is_replaced(monkeypatch) -> None:
    monkeypatch.setattr(outbox_module, "PROBE_EVERY_S", 0.05)
    hold = threading.Event()
    made: list[FakeProducer] = []

    def factory() -> FakeProducer:  # the first one never acks; the next ones do
        made.append(FakeProducer(hold=hold if not made else None))
        return made[-1]

    box = Outbox("-", "t", max_pending=1000, ack_timeout=0.2, stall_s=0.1, producer_factory=factory)
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                await box.produce([(b"k", b'"x"')])
                break
            except Unavailable:
                await asyncio.sleep(0.05)
        assert len(made) == 2 and box.status() == (True, "ok")
    finally:
        hold.set()
        box.close()


async def test_stall_detection_reads_the_injected_clock() -> None:
    """A minute of silence on the outbox's clock is a stall, however little real time passed."""
    hold = threading.Event()
    clock = FakeClock()
    box = Outbox(
        "-",
        "t",
        max_pending=1000,
        ack_timeout=300,
        stall_s=60,
        producer_factory=lambda: FakeProducer(hold=hold),
        clock=clock,
    )
    try:
        waiting = asyncio.ensure_future(_timed(box.produce([(b"k", b'"1"')])))
        await asyncio.sleep(0.05)
        clock.advance(61)
        took, exc = await asyncio.wait_for(waiting, 5)  # real seconds, not the 60 s stall
        assert isinstance(exc, Unavailable) and took < 2
        assert box.status() == (False, "no acknowledgement from Kafka for 61.0 s")
        assert box.seconds_since_ack() is None  # nothing was ever acknowledged
    finally:
        hold.set()
        box.close()
