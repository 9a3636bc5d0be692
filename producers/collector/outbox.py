"""The collector's Kafka producer: answers only after the broker acknowledged every record.

kafka-python's ``send`` can block (waiting for metadata while the broker is down), so all sends
run on one dedicated sender thread, which also keeps one visitor's records in arrival order.
Requests do not hop to that thread one by one: ``produce`` appends the request to a queue and
the thread drains everything queued since its last pass, so under load one wake-up carries the
records of many requests, and they go out as one message per partition (a frame,
``contract.raw_frames``; the partition is the one kafka-python would pick for each key).
(Calling ``send`` from the event loop once the topic's metadata is known was measured too: no
faster, since it moves the thread's work onto the loop.) The acks come back on the producer's
I/O thread; they are counted per request there, and the requests whose records are all
acknowledged are handed back to the event loop in bulk (one ``call_soon_threadsafe`` per
burst, not one per record). At most ``max_pending`` records may await acks; past that, and when
the acks do not come within ``ack_timeout``, the caller gets ``Unavailable`` and answers 503.
The producer is idempotent with acks=all and retries, so a broker restart neither loses nor
duplicates an acknowledged record.

Kafka down: when records have waited ``stall_s`` with no ack at all, or a send failed with no
ack since, Kafka counts as unavailable (``status``, served at ``/readyz``): the waiting
requests and new ones get ``Unavailable`` at once instead of waiting out ``ack_timeout``,
except one trial request every ``PROBE_EVERY_S`` (which waits ``PROBE_TIMEOUT_S`` at most);
the first ack ends the outage. (Records of a request answered 503 may still reach Kafka
later: the beacon's retry carries the same event id.) A producer that reported an error, or that
has not been acknowledged for longer than its delivery timeout, is replaced by a new one:
kafka-python's idempotent producer that expired a batch in retry resets its producer id and,
once the broker is back, never gets a new one (every request then waited ``ack_timeout`` and
got 503 until a restart: issue 16). By then every record it held has been acknowledged or
failed, so dropping it loses no acknowledged record.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
import queue
import random
import threading
from typing import Any

from kafka.partitioner import DefaultPartitioner
from kafka.partitioner.default import murmur2

from contract import raw_frames, raw_seal
from mayak.clock import SYSTEM_CLOCK, Clock

log = logging.getLogger("mayak.collector")

#: How long records wait in the client for more records of the same partition before a produce
#: request goes out. The collector answers only after the ack, so linger is latency: 1 ms (was
#: 5) gave about 4 ms less p50 at half the peak rate. Longer lingers fill bigger batches, and
#: kafka-python's per-produce-request cost is high: 2-3 ms looked some 10-15% cheaper in CPU per
#: event, but within the noise of the shared 2-core box and at +1-2 ms p50, against a 10 ms p99.
LINGER_MS = 1
#: Compression is part of the producer contract (issue 3), and it is done before Kafka now:
#: each message value is sealed (``contract.raw_seal``: zlib, then AES-GCM), so the bytes on
#: the wire and on the broker's disk are compressed already. Kafka's own gzip over ciphertext
#: would only cost CPU (the record batch no longer compresses).
COMPRESSION = None
#: while Kafka is unavailable, one request per interval goes through as a trial
PROBE_EVERY_S = 0.5
#: how long a trial request waits for its ack
PROBE_TIMEOUT_S = 2.0
#: how long producer start-up and metadata may block the sender thread (kafka-python's
#: bootstrap and max_block timeouts); requests time out on the event loop meanwhile
BLOCK_S = 5.0


class MemoPartitioner(DefaultPartitioner):
    """kafka-python's default partitioner (murmur2 of the key, as the Java client) with the hash
    of recent keys memoised: the pure-Python murmur2 is the single most expensive step of a
    send, and the keys (keyed hashes of a visitor) repeat for every event of a visit. Keyless
    records are delegated unchanged, so every record lands where the default partitioner would
    put it."""

    def __init__(self, size: int = 16_384) -> None:  # a few MB at most
        self._hash = functools.lru_cache(maxsize=size)(lambda key: murmur2(key) & 0x7FFFFFFF)

    def partition(
        self,
        topic: str,
        key: Any,
        serialized_key: bytes | None,
        value: Any,
        serialized_value: Any,
        cluster: Any,
    ) -> int:
        if serialized_key is None:
            return super().partition(topic, key, serialized_key, value, serialized_value, cluster)
        parts = cluster.partitions_for_topic(topic)
        if not parts:
            raise ValueError(f"Topic {topic} not found in ClusterMetadata")
        return self.pick(bytes(serialized_key), sorted(parts))

    def pick(self, key: bytes, ordered: list[int]) -> int:
        """The partition of ``key`` among the topic's sorted partitions."""
        return ordered[self._hash(key) % len(ordered)]


def _native_crc32c() -> bool:
    """Let kafka-python checksum record batches with aiokafka's compiled CRC-32C.

    kafka-python uses the ``crc32c`` package when installed and otherwise a byte-by-byte
    pure-Python CRC, which is the largest single cost of its I/O thread here. aiokafka (already
    a dependency, for Faust) ships the same checksum compiled; it is swapped in only after it
    agrees with kafka-python's own on test data. Returns whether it is in use."""
    try:
        from aiokafka.record._crecords.cutil import crc32c_cython
        from kafka.record import default_records, util
        from kafka.record._crc32c import crc as crc32c_py
    except ImportError:
        return False
    if getattr(default_records.calc_crc32c, "native", False):
        return True
    samples = [b"", b"a", b"123456789", bytes(range(256)) * 9]
    if any(crc32c_cython(memoryview(d)) != crc32c_py(d) for d in samples):
        return False

    def calc_crc32c(memview: Any) -> int:
        return crc32c_cython(memview)

    calc_crc32c.native = True  # type: ignore[attr-defined]
    default_records.calc_crc32c = calc_crc32c
    util.calc_crc32c = calc_crc32c
    return True


NATIVE_CRC = _native_crc32c()


def producer_config() -> dict[str, Any]:
    """The producer settings that matter for speed and delivery (also used by the benchmark's
    bare send loop, so that the comparison is like for like). Client-side metrics are off: the
    collector exports its own counters, and kafka-python's cost a few sensors per record."""
    return {
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": LINGER_MS,
        "compression_type": COMPRESSION,
        "partitioner": MemoPartitioner(),
        "metrics_enabled": False,
    }


class Unavailable(Exception):
    """The broker did not acknowledge in time, or the buffer is full: answer 503."""


class _Frame:
    """Records of one partition going out as one message, and whose requests they are."""

    __slots__ = ("keys", "owners", "size", "values")

    def __init__(self) -> None:
        self.values: list[bytes] = []
        self.keys: set[bytes | None] = set()
        self.owners: dict[_Request, int] = {}  # request -> how many of its records
        self.size = 0

    def fits(self, value: bytes) -> bool:
        return not self.values or (
            len(self.values) < raw_frames.MAX_EVENTS
            and self.size + len(value) < raw_frames.MAX_BYTES
        )

    def add(self, req: _Request, key: bytes | None, value: bytes) -> None:
        self.values.append(value)
        self.keys.add(key)
        self.owners[req] = self.owners.get(req, 0) + 1
        self.size += len(value) + 1


class _Request:
    """One ``produce`` call: its records, its loop future, how many acks are still missing."""

    __slots__ = ("deadline", "error", "future", "missing", "records", "sent")

    def __init__(
        self,
        records: list[tuple[bytes, bytes]],
        future: asyncio.Future,
        deadline: float,
        sent: float,
    ) -> None:
        self.records = records
        self.future = future
        self.missing = len(records)
        self.error: BaseException | None = None
        self.deadline = deadline
        self.sent = sent


class Outbox:
    """Owns one KafkaProducer (created lazily, so the collector starts while Kafka is down)."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        *,
        max_pending: int,
        ack_timeout: float,
        stall_s: float = 3.0,
        producer_factory: Any = None,
        clock: Clock = SYSTEM_CLOCK,
        seal: raw_seal.Transform = raw_seal.plain,
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.max_pending = max_pending
        self.ack_timeout = ack_timeout
        self.stall_s = stall_s
        self._clock = clock
        self._seal = seal  # each message value, frame or single event (contract.raw_seal)
        self.pending = 0
        self._last_ack = 0.0  # monotonic time of the last ack (written by the I/O thread)
        self._down: str | None = None  # why Kafka is unavailable; None: it is not
        self._down_since = 0.0
        self._next_probe = 0.0
        self._poison: Any = None  # a producer to replace before the next send
        self._renewed = self._clock.monotonic()
        self._factory = producer_factory or self._kafka_producer
        self._producer: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()
        self._done: list[_Request] = []  # acked (or failed), not yet resolved on the loop
        self._done_lock = threading.Lock()
        self._waiting: collections.deque[_Request] = collections.deque()  # for the deadlines
        self._probing: collections.deque[_Request] = collections.deque()  # trials, shorter
        self._handing: list[_Request] = []  # this loop iteration's, for the sender thread
        self._sweeping = False
        # kafka-python's default partitioner for a key (murmur2, as the Java client), memoised
        self._partitioner = MemoPartitioner()
        self._thread = threading.Thread(target=self._run, name="mayak-outbox", daemon=True)
        self._thread.start()

    def _kafka_producer(self) -> Any:
        from kafka import KafkaProducer

        timeout_ms = int(self.ack_timeout * 1000)
        block_ms = int(min(self.ack_timeout, BLOCK_S) * 1000)
        return KafkaProducer(
            bootstrap_servers=self.bootstrap,
            **producer_config(),
            retries=2**31 - 1,
            request_timeout_ms=min(10_000, timeout_ms),
            delivery_timeout_ms=timeout_ms + 5_000,
            max_block_ms=block_ms,
            bootstrap_timeout_ms=block_ms,
            reconnect_backoff_max_ms=1_000,
            client_id="mayak-collector",
        )

    def _renew(self) -> None:
        """Drop the current producer (closed in the background; what it still holds fails or
        is delivered there, for requests answered already); the next send makes a new one."""
        old, self._producer, self._poison = self._producer, None, None
        self._renewed = self._clock.monotonic()
        if old is not None:
            log.warning("mayak collector: replacing the Kafka producer")
            threading.Thread(
                target=_close_quietly,
                args=(old, self.ack_timeout + 5.0),
                name="mayak-outbox-close",
                daemon=True,
            ).start()

    # -- the sender thread ------------------------------------------------------------------

    def _run(self) -> None:
        inbox = self._inbox
        while True:
            item = inbox.get()
            batch = [item]
            try:
                while True:
                    batch.append(inbox.get_nowait())
            except queue.Empty:
                pass
            requests: list[_Request] = []
            for item in batch:
                if item is None or callable(item):  # close(): send what came before it first
                    self._send(requests)
                    requests = []
                    if item is None:
                        return
                    item()
                    continue
                requests += item  # the requests of one loop iteration
            self._send(requests)

    def _send(self, requests: list[_Request]) -> None:
        """Send the records of ``requests`` as one frame per partition (more when large)."""
        # requests answered already (timed out while queued) are not sent: fewer duplicates
        requests = [req for req in requests if not req.future.done()]
        if not requests:
            return
        if self._poison is not None and self._poison is self._producer:
            self._renew()
        try:
            if self._producer is None:
                self._producer = self._factory()
            partitions = sorted(self._producer.partitions_for(self.topic))
        except Exception as exc:  # producer construction, metadata timeouts
            for req in requests:
                self._failed(req, exc)
            return
        frames: dict[int, _Frame] = {}
        for req in requests:
            for key, value in req.records:
                partition = self._partition_of(key, partitions)
                current = frames.get(partition)
                if current is None or not current.fits(value):
                    if current is not None:
                        self._send_frame(partition, current)
                    current = frames[partition] = _Frame()
                current.add(req, key, value)
        for partition, full in frames.items():
            self._send_frame(partition, full)

    def _partition_of(self, key: bytes | None, partitions: list[int]) -> int:
        if key is None:
            return random.choice(partitions)
        return self._partitioner.pick(key, partitions)

    def _send_frame(self, partition: int, frame: _Frame) -> None:
        # a frame of one visitor keeps the visitor's key (all of a light load's messages)
        key = next(iter(frame.keys)) if len(frame.keys) == 1 else None
        owners = frame.owners
        producer = self._producer
        try:
            value = self._seal(raw_frames.frame(frame.values))
            producer.send(self.topic, key=key, value=value, partition=partition).add_callback(
                functools.partial(self._acked, owners)
            ).add_errback(functools.partial(self._send_failed, producer, owners))
        except Exception as exc:  # buffer full past max_block_ms
            self._send_failed(producer, owners, exc)

    # -- the producer's I/O thread (or the sender thread) -----------------------------------

    def _acked(self, owners: dict[_Request, int], _metadata: Any) -> None:
        self._last_ack = self._clock.monotonic()
        for req, n in owners.items():
            with self._done_lock:
                req.missing -= n
                last = req.missing == 0
            if last:
                self._finish(req)

    def _send_failed(self, producer: Any, owners: dict[_Request, int], exc: BaseException) -> None:
        if producer is self._producer:  # kafka-python may not recover by itself: renew it
            self._poison = producer
        self._failed_all(owners, exc)

    def _failed_all(self, owners: dict[_Request, int], exc: BaseException) -> None:
        for req in owners:
            self._failed(req, exc)

    def _failed(self, req: _Request, exc: BaseException) -> None:
        if req.error is None:
            req.error = exc
            self._finish(req)

    def _finish(self, req: _Request) -> None:
        with self._done_lock:
            self._done.append(req)
            first = len(self._done) == 1
        if first:
            try:
                self._loop.call_soon_threadsafe(self._resolve)  # type: ignore[union-attr]
            except RuntimeError:  # the loop is closed: nobody waits any more
                pass

    # -- the event loop ---------------------------------------------------------------------

    def _resolve(self) -> None:
        with self._done_lock:
            done, self._done = self._done, []
        for req in done:
            if not req.future.done():
                if req.error is not None:
                    req.future.set_exception(req.error)
                else:
                    req.future.set_result(None)

    def _hand_over(self) -> None:
        """Pass the requests of one loop iteration to the sender thread at once: one wake-up
        of the thread (and one GIL hand-off) per iteration, not per request."""
        handing, self._handing = self._handing, []
        self._inbox.put(handing)

    def _sweep(self) -> None:
        """Fail the requests whose acks are overdue (they are answered 503), and notice when
        Kafka stopped acknowledging."""
        now = self._clock.monotonic()
        oldest = None
        for waiting in (self._waiting, self._probing):
            while waiting and (waiting[0].future.done() or waiting[0].deadline <= now):
                req = waiting.popleft()
                if not req.future.done():
                    req.future.set_exception(TimeoutError())
            if waiting and (oldest is None or waiting[0].sent < oldest):
                oldest = waiting[0].sent
        if oldest is not None and self._down is None:
            silent = now - max(self._last_ack, oldest)
            if silent >= self.stall_s:
                reason = f"no acknowledgement from Kafka for {silent:.1f} s"
                self._mark_down(reason)
                for waiting in (self._waiting, self._probing):  # 503 now, not at ack_timeout
                    for req in waiting:
                        if not req.future.done():
                            req.future.set_exception(Unavailable(reason))
                    waiting.clear()
        if (
            self._down is not None
            and self._last_ack <= self._down_since
            and now - max(self._down_since, self._renewed) > self.ack_timeout + 5.0
        ):
            self._poison = self._producer  # past its delivery timeout: nothing left to lose
            self._renewed = now
        heads = [w[0].deadline for w in (self._waiting, self._probing) if w]
        if heads:
            delay = max(0.01, min(0.5, min(heads) - now))
            asyncio.get_running_loop().call_later(delay, self._sweep)
        else:
            self._sweeping = False

    def _mark_down(self, reason: str) -> None:
        if self._down is None:
            log.warning("mayak collector: Kafka unavailable: %s", reason)
            self._down = reason
            self._down_since = self._clock.monotonic()
            self._next_probe = self._down_since + PROBE_EVERY_S

    def status(self) -> tuple[bool, str]:
        """(True, "ok"), or (False, why Kafka counts as unavailable)."""
        if self._down is not None and self._last_ack > self._down_since:
            log.warning(
                "mayak collector: Kafka available again after %.1f s",
                self._clock.monotonic() - self._down_since,
            )
            self._down = None
        return (True, "ok") if self._down is None else (False, self._down)

    def seconds_since_ack(self) -> float | None:
        """Seconds since the last ack, None before the first one."""
        return self._clock.monotonic() - self._last_ack if self._last_ack else None

    async def produce(self, records: list[tuple[bytes, bytes]]) -> None:
        """Return once the broker acknowledged every record; raise ``Unavailable`` otherwise
        (at once while Kafka is unavailable, but for one trial request per interval)."""
        n = len(records)
        now = self._clock.monotonic()
        timeout = self.ack_timeout
        if self._down is not None and not self.status()[0]:
            if now < self._next_probe:
                raise Unavailable(self._down)
            self._next_probe = now + PROBE_EVERY_S
            timeout = min(timeout, PROBE_TIMEOUT_S)
        if self.pending + n > self.max_pending:
            raise Unavailable("buffer full")
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        req = _Request(records, loop.create_future(), now + timeout, now)
        self.pending += n
        if not self._handing:  # the first request of this loop iteration
            loop.call_soon(self._hand_over)
        self._handing.append(req)
        (self._waiting if timeout == self.ack_timeout else self._probing).append(req)
        if not self._sweeping:
            self._sweeping = True
            loop.call_later(min(0.5, timeout, self.stall_s), self._sweep)
        try:
            await req.future
        except Exception as exc:  # timeouts, broker errors, producer construction
            # one line per request while Kafka is fine; an outage is logged once
            log.log(
                logging.DEBUG if self._down else logging.WARNING,
                "mayak collector: %d event(s) not acknowledged: %s",
                n,
                type(exc).__name__,
            )
            if self._last_ack <= req.sent:  # no ack since it was sent: Kafka, not this request
                self._mark_down(f"{type(exc).__name__}: {exc}"[:200])
            raise Unavailable(type(exc).__name__) from exc
        finally:
            self.pending -= n

    def close(self, timeout: float = 10.0) -> None:
        """Flush what is buffered and close the producer."""
        closed = threading.Event()

        def _close() -> None:
            try:
                if self._producer is not None:
                    _close_quietly(self._producer, timeout)
            finally:
                closed.set()

        if self._handing:  # requests of the current loop iteration go first
            self._inbox.put(self._handing)
            self._handing = []
        self._inbox.put(_close)
        self._inbox.put(None)
        closed.wait(timeout + 5)
        self._thread.join(timeout + 5)


def _close_quietly(producer: Any, timeout: float) -> None:
    """Flush and close; kafka-python's close gives up (raising) when the flush times out."""
    try:
        producer.flush(timeout)
    except Exception as exc:  # the broker is away: what is left fails, its requests got 503
        log.warning(
            "mayak collector: Kafka producer closed with records unsent (%s)", type(exc).__name__
        )
    try:
        producer.close(0)
    except Exception:  # it flushes again first: stop its sender thread without sending
        sender = getattr(producer, "_sender", None)
        if sender is not None:
            sender.force_close()
