"""Several raw events in one ``mayak.raw`` message: the collector's frames.

Under load the collector answers many requests per pass of its sender thread; it sends their
events as one message per partition, a JSON array of the raw events in arrival order, instead
of one message each. kafka-python's per-message cost (``send``, its I/O thread, the future
and callback of every record) was the larger half of the collector's time per beacon, and the
stream worker pays Faust's per-message cost once per frame too.

What a reader sees: a value starting with ``[`` is a frame, anything else one event (the
server hooks, replays and a lightly loaded collector write single events, as before). A frame
holds events of one partition only, so one visitor's events still arrive in order on the
partition their key chooses (the frame's own key is that key when all its events share it,
else none). Each event is a complete raw event, read like a single one (validated in full
when the message was not sealed, ``stream_jobs.validate``).
"""

from __future__ import annotations

from typing import Any

import orjson

#: events per frame: a beacon request carries at most 50, the sender thread's pass a few
#: hundred at most under load; more would only delay the acks of the first ones
MAX_EVENTS = 500
#: value bytes per frame, well under Kafka's default 1 MB message limit
MAX_BYTES = 256 * 1024


def frame(values: list[bytes]) -> bytes:
    """One message value for ``values`` (each a raw event's JSON); a single one unchanged."""
    if len(values) == 1:
        return values[0]
    return b"[" + b",".join(values) + b"]"


def events_of(value: bytes) -> list[Any]:
    """The raw events of one ``mayak.raw`` message: the frame's elements, or the value
    itself (bytes, validated downstream; so is anything that only looks like a frame)."""
    if value[:1] == b"[":
        try:
            items = orjson.loads(value)
        except orjson.JSONDecodeError:
            return [value]
        if isinstance(items, list) and items:
            return items
    return [value]
