"""The keys topic as one shared key store sees it: records written sealed, and every record
read back into a cache in memory by a background thread.

``KeyLog`` is responsible for the traffic with the broker: it reads the whole topic at start
(a new process answers only once it has), keeps reading it continuously, appends a heartbeat
each ``heartbeat_s`` (so the active segment closes and compaction can run), writes records
(one flush for many) and waits for a write to be read back. It applies what it reads to a
``KeyState`` (``anonymizer.keyrecords``); what the records mean, which candidate wins and when
to write, is ``anonymizer.keystore_kafka``'s.

It fails for good, and tells the ``on_store_failure`` listeners, when the topic loses records
under it, a record does not decrypt (another master secret), or the store cannot make a key
(``fail``): from then on every answer raises the failure.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from kafka import TopicPartition
from kafka.errors import KafkaError, LogTruncationError, OffsetOutOfRangeError

from anonymizer.keyrecords import (
    HEARTBEAT,
    KeyState,
    KeyStoreUnavailable,
    RecordCipher,
    WrongMasterKey,
)
from mayak.errors import MayakError

LOST = (
    "the key topic {topic} lost its records while this process ran (deleted or truncated?): "
    "refusing to answer, so that no new keys are minted beside the stored data -> restore "
    "it (`mayak keys restore FILE`) and start the workers again"
)

#: called with the message when a store of this process fails for good (topic lost, another
#: master secret, a key it could not make): ``mayak.install.KeyStoreWatch`` stops the worker
_failure_listeners: list[Callable[[str], None]] = []


def on_store_failure(listener: Callable[[str], None]) -> None:
    _failure_listeners.append(listener)


class KeyLog:
    """One store's view of the keys topic: sealed writes, a cache fed by a reader thread."""

    def __init__(
        self,
        topic: str,
        cipher: RecordCipher,
        clients: tuple[Any, Any],
        *,
        heartbeat_s: float,
        timeout_s: float,
    ) -> None:
        """Reads the topic to its end before it returns (``clients``: producer, consumer)."""
        self.topic = topic
        self.timeout_s = timeout_s
        self.state = KeyState()
        #: guards ``state``; notified whenever records were applied or the log failed
        self.cond = threading.Condition()
        self._cipher = cipher
        self._failure: BaseException | None = None
        self._stop = threading.Event()
        self.producer, self._consumer = clients
        self._tp = TopicPartition(topic, 0)
        self._consumer.assign([self._tp])
        self._consumer.seek_to_beginning(self._tp)
        try:
            self._catch_up()
        except BaseException:  # wrong master secret, broker too slow: leave no client behind
            self._consumer.close()
            self.producer.close(timeout=5)
            raise
        self._reader = threading.Thread(target=self._read_loop, name="keys-reader", daemon=True)
        self._reader.start()
        self._beat = threading.Thread(
            target=self._heartbeat_loop, args=(heartbeat_s,), name="keys-heartbeat", daemon=True
        )
        self._beat.start()

    # --- reading -------------------------------------------------------------------------
    def _catch_up(self) -> None:
        end = self._consumer.end_offsets([self._tp])[self._tp]
        # real time, not injected: waiting for the broker to hand over the topic
        deadline = time.monotonic() + self.timeout_s
        while self._consumer.position(self._tp) < end:
            if time.monotonic() > deadline:
                raise MayakError(
                    f"reading the key topic {self.topic} took over {self.timeout_s:.0f}s "
                    "-> check the broker (`mayak kafka status`) and start again"
                )
            self._take(self._consumer.poll(timeout_ms=200))

    def _take(self, batches: dict[Any, list[Any]]) -> None:
        opened = [
            (r.offset, r.key.decode(), self._open(r.key.decode(), r.value))
            for records in batches.values()
            for r in records
            if r.key  # not a record of ours (none is written without a key)
        ]
        with self.cond:
            for offset, key, plain in opened:
                self.state.apply(offset, key, plain)
            if opened:
                self.cond.notify_all()

    def _open(self, key: str, value: bytes | None) -> bytes | None:
        if value is None or key == HEARTBEAT:
            return value
        return self._cipher.open(key, value)

    def _read_loop(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    self._take(self._consumer.poll(timeout_ms=1000))
                except WrongMasterKey as exc:  # every later answer would be wrong: refuse
                    self.fail(exc)
                    return
                except (OffsetOutOfRangeError, LogTruncationError):  # deleted + re-created, cut
                    self.fail(MayakError(LOST.format(topic=self.topic)))
                    return
                except Exception:  # the broker away for a while: kafka-python reconnects
                    self._stop.wait(0.5)
        finally:
            self._consumer.close()

    def fail(self, exc: BaseException) -> None:
        """Refuse every later answer with ``exc``, and tell the listeners."""
        with self.cond:
            self._failure = exc
            self.cond.notify_all()
        for listener in list(_failure_listeners):
            listener(str(exc))

    def raise_failure(self) -> None:
        """Raise the failure, if the log failed (call with ``cond`` held)."""
        if self._failure is not None:
            raise self._failure

    def wait_read(self, offset: int) -> None:
        """Block until the reader has taken in the record at ``offset``."""
        with self.cond:
            done = self.cond.wait_for(
                lambda: self._failure is not None or self.state.next_offset > offset,
                self.timeout_s,
            )
            self.raise_failure()
        if not done:
            raise KeyStoreUnavailable(
                f"the key store did not read back its write to {self.topic} within "
                f"{self.timeout_s:.0f}s -> check the broker (`mayak kafka status`)"
            )

    # --- writing -------------------------------------------------------------------------
    def send(self, key: str, plain: bytes | None) -> int:
        return self.send_all([(key, plain)])

    def send_all(self, records: list[tuple[str, bytes | None]]) -> int:
        """Write ``records`` (record key, plaintext or None for a tombstone) with one flush:
        one round trip to the broker however many. Returns the last one's offset."""
        try:
            sent = [
                self.producer.send(
                    self.topic,
                    key=key.encode(),
                    value=None if plain is None else self._cipher.seal(key, plain),
                    partition=0,
                )
                for key, plain in records
            ]
            if len(sent) > 1:
                self.producer.flush(timeout=self.timeout_s)
            return max(meta.get(timeout=self.timeout_s).offset for meta in sent)
        except KafkaError as exc:
            raise KeyStoreUnavailable(
                f"the key store could not write to {self.topic} within {self.timeout_s:.0f}s "
                f"({exc}) -> check the broker (`mayak kafka status`)"
            ) from exc

    def sync(self) -> None:
        """Read up to the end of the topic as it is now (a heartbeat marks the end)."""
        self.wait_read(self._send_heartbeat())

    def _send_heartbeat(self) -> int:
        meta = self.producer.send(self.topic, key=HEARTBEAT.encode(), value=b"", partition=0)
        return meta.get(timeout=self.timeout_s).offset

    def _heartbeat_loop(self, every_s: float) -> None:
        while not self._stop.wait(every_s):
            try:
                self._send_heartbeat()
            except Exception:  # the broker away: the next beat tries again
                pass

    def close(self) -> None:
        self._stop.set()
        self._reader.join(timeout=5)
        self.producer.close(timeout=5)
