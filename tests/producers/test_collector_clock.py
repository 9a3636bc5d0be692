"""The collector's notion of time is the injected clock: receive times, the rate limit's refill."""

from __future__ import annotations

from mayak.ratelimit import RateLimiter
from mayak.settings import Settings
from producers.collector.events import EventFactory
from tests.clock import FakeClock
from tests.producers.test_collector_fast import KEY


def test_the_receive_time_is_the_clock_in_epoch_ms(tmp_path) -> None:
    clock = FakeClock()
    factory = EventFactory(Settings(data_dir=tmp_path, ip_key=KEY), clock)
    assert factory.context({}, "203.0.113.9", False, False).received == int(
        clock.now().timestamp() * 1000
    )
    clock.advance(0.5)
    assert factory.context({}, "203.0.113.9", False, False).received == int(
        clock.now().timestamp() * 1000
    )


def test_the_token_bucket_refills_on_the_clock_not_in_real_time() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate_per_s=2, burst=3, clock=clock)
    assert [limiter.allow("a") for _ in range(4)] == [True, True, True, False]
    assert not limiter.allow("a")  # no time passed on the clock: still empty
    clock.advance(0.5)  # one token back at 2 per second
    assert limiter.allow("a") and not limiter.allow("a")
    assert limiter.allow("b")  # every client has a bucket of its own


def test_a_batch_costs_one_token_per_event_and_its_debt_is_waited_out() -> None:
    """A batch of 50 events cost one token (red team, 2026-12-02: one address sent 3,000 events
    at once, then 1,000/s); the rest of a batch is charged after the request is let in."""
    clock = FakeClock()
    limiter = RateLimiter(rate_per_s=10, burst=60, clock=clock)
    assert limiter.allow("a")
    limiter.charge("a", 49)  # a batch of 50: 10 tokens left
    assert limiter.allow("a")
    limiter.charge("a", 49)  # 9 - 49: in debt, at most one burst deep
    assert not limiter.allow("a")
    clock.advance(4.0)  # 40 tokens back: still below one
    assert not limiter.allow("a")
    clock.advance(0.2)  # -40 + 42 = 2
    assert limiter.allow("a")
    limiter.charge("a", 10_000)
    clock.advance(6.1)  # never more than one burst of debt: -60 + 61
    assert limiter.allow("a")
    assert limiter.allow("b")  # others are not charged
