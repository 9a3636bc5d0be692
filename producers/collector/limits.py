"""Abuse limits of the collector: the capped body reader (the per-client token bucket,
shared with the dashboards, is ``mayak.ratelimit``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.types import Receive


class TooLarge(Exception):
    """The request body is over the limit."""


async def read_capped(chunks: AsyncIterator[bytes], declared: str | None, limit: int) -> bytes:
    """Read the body, refusing early on Content-Length and again while streaming."""
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > limit:
            raise TooLarge
    return bytes(body)


async def read_capped_asgi(receive: Receive, declared: str | None, limit: int) -> bytes | None:
    """``read_capped`` straight from ASGI ``receive``; None when the client disconnected."""
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
