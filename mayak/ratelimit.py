"""The per-client token bucket both HTTP front doors use: the collector (every request) and
the dashboards (refused, unauthenticated callers)."""

from __future__ import annotations

from collections import OrderedDict

from mayak.clock import SYSTEM_CLOCK, Clock


class RateLimiter:
    """Token bucket per client key, bounded in memory (least recently seen clients evicted)."""

    def __init__(
        self, rate_per_s: float, burst: int, max_clients: int = 100_000, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self.rate = rate_per_s
        self.burst = float(burst)
        self.max_clients = max_clients
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def allow(self, client: str) -> bool:
        now = self.clock.monotonic()
        tokens, last = self._buckets.pop(client, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        ok = tokens >= 1.0
        self._buckets[client] = (tokens - 1.0 if ok else tokens, now)
        if len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        return ok

    def charge(self, client: str, tokens: float) -> None:
        """Take ``tokens`` more from a client ``allow`` let in (the other events of a batch):
        the bucket may go below zero, down to ``-burst``, and the client's next requests wait
        until it has refilled, so a batch of 50 costs what 50 requests of one event cost."""
        if tokens <= 0:
            return
        left, last = self._buckets.get(client, (self.burst, self.clock.monotonic()))
        self._buckets[client] = (max(-self.burst, left - tokens), last)
