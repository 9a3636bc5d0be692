"""Abuse limits: the per-client token bucket and the capped body reader."""

from __future__ import annotations

from collections import OrderedDict

from starlette.types import Receive

from mayak.clock import SYSTEM_CLOCK, Clock


class TooLarge(Exception):
    """The request body is over the limit."""


class RateLimiter:
    """Token bucket per client key, bounded in memory (least recently seen clients evicted)."""

    def __init__(self, rate_per_s: float, burst: int, max_clients: int = 100_000,
                 clock: Clock = SYSTEM_CLOCK) -> None:
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


async def read_capped(receive: Receive, declared: str | None, limit: int) -> bytes | None:
    """The body from ASGI ``receive``, refused (``TooLarge``) early on Content-Length and again
    while streaming; None when the client disconnected."""
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge
    message = await receive()
    body = message.get("body", b"")
    if len(body) > limit:
        raise TooLarge
    while message.get("more_body", False):
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        body += message.get("body", b"")
        if len(body) > limit:
            raise TooLarge
    if message["type"] == "http.disconnect":
        return None
    return bytes(body)
