"""Batch framing of ``mayak.events`` and the per-flush write-back of the session table.

``mayak.events`` carries **batches**: one message holds the enriched events of one
``Publisher`` flush from one ``mayak.raw`` partition, as a JSON array (at most
``events_per_message`` events
and about ``MAX_MESSAGE_BYTES``), zlib-compressed (level 1) above ``COMPRESS_ABOVE`` bytes
(a handful of events gains nothing from it). Compressed, an enriched event
takes about as many bytes as its gzip-compressed raw event (~85 B instead of ~615 B of JSON),
so each fetch of the worker's one consumer brings as many events of ``mayak.events`` as of
``mayak.raw`` and the sink keeps pace with a ``mayak.raw`` backlog instead of waiting for it
to drain. A value starting with ``[`` is an uncompressed array, with ``{`` one event (the
format before batching); both are still accepted. The ``COUNT_HEADER`` header says how many
events a message holds. Each event's position is ``(partition, offset,
index in the message)``; ClickHouse keeps it in ``kafka_partition`` and ``kafka_offset =
offset << INDEX_BITS | index`` so the sink's "skip what is already landed" stays exact.

``Publisher`` holds the enriched events until they go out (``flush``), with the session
write-back, so that both reach Kafka before the commit that covers their raw events (both are
``Buffer``s of the commit coordinator, ``stream_jobs.commit``; the publisher flushes its
write-back itself).

``SessionWriteBack`` stands between the sessionize step and the Faust table: until the next
flush it serves reads from what was written since, and ``flush()`` writes each touched visitor
to the table (and its changelog) once, on the partition of the visitor's raw event.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import Any

import orjson

from stream_jobs.uncancellable import completes

INDEX_BITS = 16  # up to 65,536 events per message
MAX_INDEX = (1 << INDEX_BITS) - 1
MAX_MESSAGE_BYTES = 900_000  # below Kafka's default 1 MB message and request limits
COMPRESS_ABOVE = 4096
#: header of a ``mayak.events`` message: how many events it holds (the sink sizes its
#: inserts by it without decoding the message on the event loop)
COUNT_HEADER = "mayak-events"

#: (partition, position, value) of one event or dead letter read from Kafka; the position is
#: the message's offset, or ``position(offset, index)`` in a batched ``mayak.events`` message
Record = tuple[int, int, dict[str, Any]]
#: writes (key, value) records of one partition to the session table's changelog
ChangelogWrite = Callable[[int, list[tuple[str, Any]]], Awaitable[None]]


def position(offset: int, index: int) -> int:
    """The ``kafka_offset`` of the ``index``-th event of the message at ``offset``."""
    return offset << INDEX_BITS | index


def message_offset(pos: int) -> int:
    return pos >> INDEX_BITS


def frame(events: list[dict[str, Any]], per_message: int) -> Iterator[tuple[int, bytes]]:
    """(event count, message value) for ``events``: JSON arrays of at most ``per_message``
    events each, halved until a value fits in ``MAX_MESSAGE_BYTES`` (a single oversize event
    is sent alone)."""
    per_message = max(1, min(per_message, MAX_INDEX + 1))
    for start in range(0, len(events), per_message):
        yield from _fit(events[start : start + per_message])


def _fit(chunk: list[dict[str, Any]]) -> Iterator[tuple[int, bytes]]:
    blob = orjson.dumps(chunk)
    if len(blob) > COMPRESS_ABOVE:
        blob = zlib.compress(blob, 1)
    if len(blob) <= MAX_MESSAGE_BYTES or len(chunk) == 1:
        yield len(chunk), blob
        return
    half = len(chunk) // 2
    yield from _fit(chunk[:half])
    yield from _fit(chunk[half:])


def event_count(headers: Any) -> int:
    """Events in a ``mayak.events`` message, from its ``COUNT_HEADER`` (1 without one)."""
    items = headers.items() if isinstance(headers, dict) else headers or ()
    for name, value in items:
        if name == COUNT_HEADER:
            return max(1, int(value))
    return 1


def unframe(partition: int, offset: int, value: bytes) -> list[Record]:
    """The events of one ``mayak.events`` message with their positions."""
    if value[:1] not in (b"[", b"{"):
        value = zlib.decompress(value)
    decoded = orjson.loads(value)
    if isinstance(decoded, dict):
        return [(partition, position(offset, 0), decoded)]
    return [(partition, position(offset, i), event) for i, event in enumerate(decoded)]


class SessionWriteBack(MutableMapping):
    """An overlay over the session table until the next ``flush()``, which writes it back.

    ``partition`` must be set to the raw partition of the event being processed before the
    pipeline runs it: a visitor's changelog record goes to that partition, as Faust's own
    table writes would. A visitor whose state ends as it began (a repeat hit with
    the same timestamp) is not written at all.
    """

    def __init__(self, table: Any, write: ChangelogWrite) -> None:
        self.table = table
        self.write = write  # stream_jobs.changelog.BatchedChangelog
        self.partition = 0
        self._dirty: dict[str, tuple[int, Any, Any]] = {}  # key -> (partition, new, old)

    def __getitem__(self, key: str) -> Any:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def get(self, key: str, default: Any = None) -> Any:
        hit = self._dirty.get(key)
        if hit is not None:
            return hit[1]
        # the table's store, as flush() writes it: Faust's own table.get adds sensors and
        # key checks per read (~2/3 of the sessionize step's time)
        value = self.table.data.get(key)
        return default if value is None else value

    def __setitem__(self, key: str, value: Any) -> None:
        hit = self._dirty.get(key)
        old = hit[2] if hit is not None else self.table.data.get(key)
        self._dirty[key] = (self.partition, value, old)

    def __delitem__(self, key: str) -> None:  # sessions are never deleted by the pipeline
        raise NotImplementedError

    def __iter__(self) -> Iterator[str]:
        return iter(self.table)

    def __len__(self) -> int:
        return len(self.table)

    def drop(self) -> None:
        """Forget the overlay (partitions revoked: the raw events are read again)."""
        self._dirty = {}

    def take_changes(self) -> list[tuple[int, str, Any]]:
        """Empty the overlay; returns (partition, key, value) of every visitor in it whose
        state changed."""
        dirty, self._dirty = self._dirty, {}
        return [
            (partition, key, value)
            for key, (partition, value, old) in dirty.items()
            if value != old
        ]

    async def flush(self) -> int:
        """Write every visitor changed since the last flush to the table and its changelog
        (with ``write``, per partition; the commit flushes the producer after this)."""
        data = self.table.data
        by_partition: dict[int, list[tuple[str, Any]]] = {}
        for partition, key, value in self.take_changes():
            data[key] = value
            by_partition.setdefault(partition, []).append((key, value))
        for partition, records in by_partition.items():
            await self.write(partition, records)
        return sum(len(records) for records in by_partition.values())


class Publisher:
    """Enriched events waiting to be framed into ``mayak.events`` messages.

    ``add`` is synchronous (the agent calls it between two raw events); ``flush`` sends
    everything added so far and writes the session table back. Flushes are serialized: a
    pre-commit flush returns only after every earlier flush has queued its messages.
    """

    def __init__(
        self,
        send: Callable[..., Awaitable[Any]],
        write_back: SessionWriteBack,
        per_message: int,
        partitions: int,
    ) -> None:
        self.send = send
        self.write_back = write_back
        self.per_message = per_message
        self.partitions = partitions
        self.pending: dict[int, list[dict[str, Any]]] = {}  # raw partition -> events
        self.count = 0
        self.lock = asyncio.Lock()

    def add(self, partition: int, event: dict[str, Any]) -> bool:
        """Hold ``event``; True when a full message's worth is waiting (flush now)."""
        self.pending.setdefault(partition, []).append(event)
        self.count += 1
        return self.full

    @property
    def full(self) -> bool:
        """A message's worth is waiting (flush now)."""
        return self.count >= self.per_message

    def drop(self) -> None:
        """Forget what is held (partitions revoked: the raw events are read again)."""
        self.pending, self.count = {}, 0
        self.write_back.drop()

    @completes
    async def flush(self) -> int:
        """Send what is held (and write the session table back); returns the event count."""
        async with self.lock:
            pending, self.pending, count, self.count = self.pending, {}, self.count, 0
            await self.write_back.flush()
            for partition, events in pending.items():
                for n, value in frame(events, self.per_message):
                    await self.send(
                        value=value,
                        partition=partition % self.partitions,
                        headers=[(COUNT_HEADER, b"%d" % n)],
                    )
            return count
