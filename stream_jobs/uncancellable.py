"""Flushes that finish even when the task that called them is cancelled.

A flush takes what a buffer holds (raw messages, enriched events, rows) and then awaits sends
or an insert. When Faust stops (SIGTERM, Ctrl-C of ``mayak up``, the supervisor's death) it
cancels agents and timers, possibly in the middle of such a flush, and then commits the
offsets already acked: what the cancelled flush had taken was gone from the buffer and never
sent, so those events were lost (25 beacons in tests/test_stack_faults.py). Shielded, the
flush runs to its end; its lock keeps the pre-commit flush waiting until it has.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


def completes(flush: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """Wrap an ``async def flush``: cancelling the caller no longer cancels the flush."""

    @functools.wraps(flush)
    async def run(*args: Any, **kwargs: Any) -> T:
        return await asyncio.shield(flush(*args, **kwargs))

    return run
