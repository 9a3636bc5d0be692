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
