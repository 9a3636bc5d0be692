"""Raw messages waiting to run through the pipeline, a batch at a time.

The enrich agent hands each ``mayak.raw`` message to an ``Intake`` and the pipeline runs over
``enrich_batch_size`` of them in one go, not one per message between Faust's own per-message
work: the steps' code and data stay in the CPU caches (timed in the worker, one run cost
74-85 us of CPU per event against 35 us alone). Pipeline benchmark, 100k events: about
4,000-4,200 events/s one at a time, 4,340-4,770 with batches of 100; 500 were no faster.
A batch waits at most ``enrich_linger_seconds`` (the publisher's timer flushes it first), so
freshness does not change.

The messages are acked once the agent asks for the next one; like the publisher's events they
are flushed before every commit and dropped on a rebalance (``stream_jobs.commit``: the intake
is the first buffer the commit coordinator flushes), so nothing acked is committed before it
ran.

The batch's new customers get their keys first, all at once (``Pipeline.prepare``: one
round trip to the shared key store, not one per customer). If that, or the batch, raises
(``KeyStoreUnavailable``: the key store cannot create a key in time, the broker away; or the
key store failed for good) the intake fails for good: this flush and every later one raise,
so no commit passes the batch's messages, and the key store's failure stops the worker
(``mayak.install.KeyStoreWatch``); started again, it reads them again from the last commit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from contract import raw_seal
from contract.raw_frames import events_of
from stream_jobs.batching import Publisher
from stream_jobs.dead_letters import DeadLetter
from stream_jobs.pipeline import Pipeline
from stream_jobs.uncancellable import completes
from stream_jobs.validate import vouch

log = logging.getLogger("mayak.stream_jobs")


class Intake:
    """Raw messages waiting for the pipeline; a ``Buffer`` of the commit coordinator."""

    def __init__(
        self,
        pipeline: Pipeline,
        publisher: Publisher,
        send_failed: Callable[..., Awaitable[Any]],
        batch: int,
        open_raw: raw_seal.Transform = raw_seal.plain,
    ) -> None:
        self.pipeline = pipeline
        self.open_raw = open_raw  # sealed messages (contract.raw_seal) opened with the key
        self.publisher = publisher
        self.send_failed = send_failed
        self.batch = batch
        self.pending: list[tuple[int, Any, bytes]] = []  # (raw partition, key, value)
        self.lock = asyncio.Lock()
        self.failure: Exception | None = None

    def add(self, partition: int, key: Any, value: bytes) -> bool:
        """Hold a raw message; True when a batch is waiting (flush now)."""
        self.pending.append((partition, key, value))
        return len(self.pending) >= self.batch

    def drop(self) -> None:
        """Forget what waits (partitions revoked: the messages are read again)."""
        self.pending = []

    @completes
    async def flush(self) -> list[dict[str, Any] | DeadLetter]:
        """Run what waits, in order: events go to the publisher, rejections to
        ``mayak.failed``. Returns every result (the agent yields them to test sinks)."""
        async with self.lock:
            if self.failure is not None:  # every later flush, a commit's too, stops here
                raise self.failure
            pending, self.pending = self.pending, []
            try:
                results, rejected = self._run(pending)
            except Exception as exc:  # KeyStoreUnavailable, or the key store failed for good
                # part of the batch may have run: acked, never to be committed (read again
                # after the restart; the sink drops what lands twice)
                self.failure = exc
                raise
            for key, record in rejected:  # one message each, as before batching
                await self.send_failed(key=key, value=record)
            return results

    def _run(self, pending: list[tuple[int, Any, bytes]]):
        run, add = self.pipeline.run, self.publisher.add
        write_back = self.publisher.write_back
        results: list[dict[str, Any] | DeadLetter] = []
        rejected: list[tuple[Any, bytes]] = []
        batch = [(partition, key, self._events(value)) for partition, key, value in pending]
        opened = [raw for _, _, raws in batch for raw in raws if not isinstance(raw, DeadLetter)]
        unopened = sum(isinstance(raw, DeadLetter) for _, _, raws in batch for raw in raws)
        if unopened:  # once per batch: another secret fails every message, thousands a second
            log.warning("%d mayak.raw message(s) do not open; sent to failed", unopened)
        self.pipeline.prepare(opened)
        for partition, key, raws in batch:
            write_back.partition = partition  # the visitor's changelog record goes there
            for raw in raws:  # a collector's frame holds several
                result = run(raw) if not isinstance(raw, DeadLetter) else raw
                if isinstance(result, DeadLetter):
                    rejected.append((key, orjson.dumps(result.to_record())))
                else:
                    add(partition, result)
                results.append(result)
        return results, rejected

    def _events(self, value: bytes) -> list[Any]:
        """The raw events of one message, or the dead letter of a seal that does not open
        (another key: a producer configured with another master secret)."""
        try:
            opened = self.open_raw(value)
        except raw_seal.SealBroken as exc:
            letter = DeadLetter("enrichment", f"raw_seal:{exc}")
            return [self.pipeline.dead_letter(letter, "unseal", None)]
        events = events_of(opened)
        if raw_seal.opened_from_collector(value, opened):
            # it opened under the collector's label: the collector validated its events
            # (stream_jobs.validate); a hook's, a replay's or anything plain is validated here
            return [vouch(event) for event in events]
        return events
