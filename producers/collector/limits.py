"""Abuse limits of the collector: the capped body reader (the per-client token bucket,
shared with the dashboards, is ``mayak.ratelimit``)."""

from __future__ import annotations

from starlette.types import Receive


class TooLarge(Exception):
    """The request body is over the limit."""


async def read_capped(receive: Receive, declared: str | None, limit: int) -> bytes | None:
    """The body from ASGI ``receive``, refused (``TooLarge``) early on Content-Length and again
    while streaming; None when the client disconnected."""
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
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
