"""Where the stream worker's commit order lives: what is flushed before an offset is committed,
in which order, and what is forgotten when partitions are revoked.

Faust acks a message when the agent asks for the next one and commits acked offsets only,
after awaiting ``producer.flush()``. Between the ack and the commit, what was made of a message
waits in the worker's buffers:

1. ``Intake`` (``stream_jobs.intake``): raw ``mayak.raw`` messages waiting for the pipeline;
2. ``Publisher`` (``stream_jobs.batching``): their enriched events waiting to be framed into
   ``mayak.events`` messages, with the ``SessionWriteBack`` of the session table, which the
   publisher flushes first, under its own lock, so that the events sent and the session state
   written back are taken at the same moment;
3. one ``LandingBuffer`` per sunk topic (``stream_jobs.sink``): ``mayak.events`` and
   ``mayak.failed`` records waiting to be landed in ClickHouse.

``CommitCoordinator.flush`` flushes them in that order before Faust's own producer flush
(hooked in by ``faust_adapter.hook_before_commit``): running the intake first feeds the
publisher, the publisher's sends reach Kafka with the producer flush that follows, and the
landing buffers land what was read from Kafka. After that flush, ``Deliveries.check`` awaits
every send made since the last commit and raises if the broker refused one: Faust's flush
returns all the same (it only logs a failed send), and would commit the offset of a message
whose events never reached Kafka. The raise stops the commit and the worker, which reads those
messages again when it restarts (the sink drops what already landed). No offset is committed
before what was made of its message is in Kafka or ClickHouse. Every flush is shielded
(``stream_jobs.uncancellable``) and serialized by its buffer's lock, so a commit that starts
while a timer's flush runs waits for it, and a stopping worker does not cancel one halfway.

How far a commit may go is the ``CommitGuard``'s (``stream_jobs.commit_guard``): a committed
offset never passes an offset of ``mayak.raw`` / ``mayak.events`` / ``mayak.failed`` whose
message no agent handled (its rules replace Faust's in the consumer), and a hole that stays
put is read again; the agents ask the coordinator whether a message read again was handled
before (``seen``). ``install`` puts the flush hook and the guard's rules in place when each
agent starts, before its first message.

On a rebalance (``revoke``) every buffer drops what it holds: those messages were acked but
never committed, so whoever gets the partitions reads them again; on an assignment
(``assign``) the guard learns where each partition resumes.

(The agents batched with Faust's ``take_events`` at first, which holds events un-acked: in the
SIGKILL exactly-once test it now and then never acked some, and the partition's committed
offset stopped there for good while the worker read on. The same hole, rarer, remained on
``mayak.events`` without them: the ``CommitGuard`` reads it again.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Protocol, runtime_checkable

from mayak.errors import MayakError
from stream_jobs.commit_guard import CommitGuard
from stream_jobs.faust_adapter import hook_before_commit

Send = Callable[..., Awaitable[Any]]


class UndeliveredMessages(MayakError):
    """The broker refused messages made before a commit: the commit must not happen."""


class Deliveries:
    """Every message sent since the last commit, until the producer's flush settled it.

    The senders (the publisher, the intake's dead letters, the sinks' poison records, the
    session changelog) send through ``tracked``; ``check`` runs after Faust's producer flush.
    Sends made while a check runs wait for the next one.
    """

    def __init__(self) -> None:
        self.pending: list[asyncio.Future[Any]] = []

    def tracked(self, send: Send) -> Send:
        """``send``, keeping the delivery future each call returns."""

        async def send_tracked(**message: Any) -> Any:
            delivery = await send(**message)
            self.pending.append(delivery)
            return delivery

        return send_tracked

    def add(self, delivery: asyncio.Future[Any]) -> None:
        self.pending.append(delivery)

    async def check(self) -> None:
        """Wait for every delivery; raise ``UndeliveredMessages`` if any failed."""
        pending, self.pending = self.pending, []
        if not pending:
            return
        results = await asyncio.gather(*pending, return_exceptions=True)
        failed = [result for result in results if isinstance(result, BaseException)]
        if failed:
            raise UndeliveredMessages(
                f"Kafka refused {len(failed)} of the {len(pending)} messages sent since the "
                f"last commit (first: {failed[0]!r}); nothing is committed, and the worker "
                "stops: restart it once the broker accepts them, it reads those events again"
            )


@runtime_checkable
class Buffer(Protocol):
    """What the coordinator needs of a buffer: ``flush`` and ``drop``.

    ``flush()`` sends or lands everything added so far and returns only once it is out (a
    flush already running is waited for); it completes even if its caller is cancelled.
    ``drop()`` forgets what is held, synchronously (partitions revoked).

    Every buffer also has a synchronous ``add`` returning True when a flush is due, but its
    arguments are what the caller has in hand: a raw message's partition, key and bytes
    (``Intake``), an enriched event (``Publisher``), a message's position, bytes and row count
    (``LandingBuffer``), a visitor's session (``SessionWriteBack``, as a mapping). The
    coordinator never adds; one common ``add`` shape would mean a tuple per event on the
    enrich loop's hottest path and losing the type of each argument.
    """

    def flush(self) -> Awaitable[object]: ...

    def drop(self) -> None: ...


class CommitCoordinator:
    """Owns the flush order before a commit, the drops on a rebalance and the commit guard."""

    def __init__(
        self,
        intake: Buffer,
        publisher: Buffer,
        landing: Sequence[Buffer],
        guard: CommitGuard,
        deliveries: Deliveries | None = None,
    ) -> None:
        # the order of the module docstring: raw messages, their events, the sinks' rows
        self.buffers: tuple[Buffer, ...] = (intake, publisher, *landing)
        self.guard = guard
        self.deliveries = deliveries or Deliveries()

    def install(self, producer: Any) -> None:
        """Put the commit rules in place, once (each agent calls this when it starts, again
        after a restart): ``flush`` runs before each of ``producer``'s pre-commit flushes and
        the deliveries are checked after it, then the guard's rules go into Faust's consumer
        (no commit passes an offset no agent handled)."""
        hook_before_commit(producer, self.flush, self.deliveries.check)
        self.guard.install()

    async def flush(self) -> None:
        """Flush every buffer, in order (what Faust's pre-commit flush awaits first)."""
        for buffer in self.buffers:
            await buffer.flush()

    def revoke(self, revoked: Iterable[Any]) -> None:
        """Partitions revoked: drop what every buffer holds (acked, never committed: whoever
        gets the partitions reads it again); the guard forgets what it learned of them."""
        for buffer in self.buffers:
            buffer.drop()
        self.guard.forget(revoked)

    def assign(self, assigned: Iterable[Any]) -> None:
        """Partitions assigned: the guard learns where each resumes, in a task; not awaited
        here: the consumer thread that would answer waits for this rebalance callback to
        return."""
        self.guard.learning = asyncio.ensure_future(self.guard.learn_starts(set(assigned)))

    def seen(self, message: Any) -> bool:
        """Whether ``message`` was handled before (read again after a rewind)."""
        return self.guard.acked(message)

    async def rewind_lost_offsets(self) -> int:
        """Read again what Faust lost (``CommitGuard.check``); returns partitions rewound."""
        return await self.guard.check()
