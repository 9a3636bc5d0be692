"""The shared key store: the anonymizer's secrets in one compacted Kafka topic, for every worker.

Responsible for the same methods as the SQLite ``KeyStore`` (``anonymizer.keystore``), but
with one store for every worker on every host (``MAYAK_KEY_STORE=kafka``):

* **Reads** come from a cache in memory that a background thread keeps up to date by
  consuming the topic continuously (from its beginning at start: a new process answers only
  once it has read the whole topic, so losing a worker loses no secret).
* **Creation** (a day's salt, a customer's key, the store-wide secrets) writes a candidate
  record and waits to read it back; the slot's live candidate with the lowest offset wins
  (``anonymizer.keyrecords``), so two workers racing agree on one, and a losing candidate is
  tombstoned by its writer. ``create_customer_keys`` does that for every new customer of a
  batch of events at once: one produce + flush and one read-back, not a round trip each.
  A creation that cannot write or read back within ``timeout_s`` (the broker away) raises
  ``KeyStoreUnavailable`` and fails the store: the worker stops without committing the
  events that needed the key (``stream_jobs.intake``), and enriches them when started again.
* **Destruction** (``forget_customer``, ``purge_expired``) first reads up to the end of the
  topic, then writes a ``gone/`` marker and a tombstone for every candidate of the slot. The
  other stores drop the secret as soon as their thread reads the tombstone (within about a
  second); the broker deletes the bytes when it compacts (topic settings below, and a
  heartbeat each ``heartbeat_s`` so the active segment closes).

The record layout, the cipher and the winner rule are in ``anonymizer.keyrecords``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError, LogTruncationError, OffsetOutOfRangeError

from anonymizer.keyrecords import (
    HEARTBEAT,
    SALT_LIFETIME,
    Candidate,
    KeyState,
    KeyStoreUnavailable,
    RecordCipher,
    SaltExpired,
    WrongMasterKey,
    day_start,
)
from anonymizer.keystopic import ensure_keys_topic, no_broker
from anonymizer.master import keystore_cipher_key, keystore_index_key
from mayak.errors import MayakError

LOST = (
    "the key topic {topic} lost its records while this process ran (deleted or truncated?): "
    "refusing to answer, so that no new keys are minted beside the stored data -> restore "
    "it (`mayak keys restore FILE`) and start the workers again"
)

#: called with the message when a store of this process fails for good (topic lost, another
#: master secret): ``mayak.install.KeyStoreWatch`` stops the worker, as when a key file vanishes
_failure_listeners: list[Callable[[str], None]] = []


def on_store_failure(listener: Callable[[str], None]) -> None:
    _failure_listeners.append(listener)


class KafkaKeyStore:
    """Secrets of the anonymizer in a compacted Kafka topic; thread-safe, shared by hosts."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        master: bytes,
        *,
        segment_s: float = 600.0,
        heartbeat_s: float = 30.0,
        timeout_s: float = 30.0,
        mint: bool = True,
        clients: tuple[Any, Any] | None = None,
    ) -> None:
        """``mint=False`` (restoring a backup): create no store-wide secret on opening.
        ``clients``: a (producer, consumer) pair to use instead of connecting (tests' fakes)."""
        self.topic = topic
        self.timeout_s = timeout_s
        self._cipher = RecordCipher(keystore_cipher_key(master))
        self._index_key = keystore_index_key(master)
        self._state = KeyState()
        self._cond = threading.Condition()
        self._failure: BaseException | None = None
        self._stop = threading.Event()
        if clients is None:
            ensure_keys_topic(bootstrap, topic, segment_s)
            clients = _connect(bootstrap)
        self._producer, self._consumer = clients
        self._tp = TopicPartition(topic, 0)
        self._consumer.assign([self._tp])
        self._consumer.seek_to_beginning(self._tp)
        try:
            self._catch_up()
        except BaseException:  # wrong master secret, broker too slow: leave no client behind
            self._consumer.close()
            self._producer.close(timeout=5)
            raise
        self._reader = threading.Thread(target=self._read_loop, name="keys-reader", daemon=True)
        self._reader.start()
        self._beat = threading.Thread(
            target=self._heartbeat_loop, args=(heartbeat_s,), name="keys-heartbeat", daemon=True
        )
        self._beat.start()
        if mint:
            self.visitor_key = self._secret("visitor-cookie")

    def __repr__(self) -> str:  # never show key material
        return f"KafkaKeyStore({self.topic!r})"

    # --- reading the topic ---------------------------------------------------------------
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
        with self._cond:
            for offset, key, plain in opened:
                self._state.apply(offset, key, plain)
            if opened:
                self._cond.notify_all()

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
                    self._fail(exc)
                    return
                except (OffsetOutOfRangeError, LogTruncationError):  # deleted + re-created, cut
                    self._fail(MayakError(LOST.format(topic=self.topic)))
                    return
                except Exception:  # the broker away for a while: kafka-python reconnects
                    self._stop.wait(0.5)
        finally:
            self._consumer.close()

    def _fail(self, exc: BaseException) -> None:
        with self._cond:
            self._failure = exc
            self._cond.notify_all()
        for listener in list(_failure_listeners):
            listener(str(exc))

    def _wait_read(self, offset: int) -> None:
        """Block until the reader has taken in the record at ``offset``."""
        with self._cond:
            done = self._cond.wait_for(
                lambda: self._failure is not None or self._state.next_offset > offset,
                self.timeout_s,
            )
            self._raise_failure()
        if not done:
            raise KeyStoreUnavailable(
                f"the key store did not read back its write to {self.topic} within "
                f"{self.timeout_s:.0f}s -> check the broker (`mayak kafka status`)"
            )

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure

    # --- writing -------------------------------------------------------------------------
    def _send(self, key: str, plain: bytes | None) -> int:
        return self._send_all([(key, plain)])

    def _send_all(self, records: list[tuple[str, bytes | None]]) -> int:
        """Write ``records`` (record key, plaintext or None for a tombstone) with one flush:
        one round trip to the broker however many. Returns the last one's offset."""
        try:
            sent = [
                self._producer.send(
                    self.topic,
                    key=key.encode(),
                    value=None if plain is None else self._cipher.seal(key, plain),
                    partition=0,
                )
                for key, plain in records
            ]
            if len(sent) > 1:
                self._producer.flush(timeout=self.timeout_s)
            return max(meta.get(timeout=self.timeout_s).offset for meta in sent)
        except KafkaError as exc:
            raise KeyStoreUnavailable(
                f"the key store could not write to {self.topic} within {self.timeout_s:.0f}s "
                f"({exc}) -> check the broker (`mayak kafka status`)"
            ) from exc

    def _sync(self) -> None:
        """Read up to the end of the topic as it is now (a heartbeat marks the end)."""
        self._wait_read(self._send_heartbeat())

    def _send_heartbeat(self) -> int:
        meta = self._producer.send(self.topic, key=HEARTBEAT.encode(), value=b"", partition=0)
        return meta.get(timeout=self.timeout_s).offset

    def _heartbeat_loop(self, every_s: float) -> None:
        while not self._stop.wait(every_s):
            try:
                self._send_heartbeat()
            except Exception:  # the broker away: the next beat tries again
                pass

    def _winner(self, slot: str) -> Candidate | None:
        with self._cond:
            self._raise_failure()
            return self._state.winner(slot)

    def _get_or_create(self, slot: str) -> bytes:
        found = self._winner(slot)
        if found is not None:
            return found.secret
        for _ in range(5):  # another store may destroy the slot meanwhile: try again
            mine = f"{slot}/{secrets.token_hex(8)}"
            with self._creating():
                self._wait_read(self._send(mine, secrets.token_bytes(32)))
            won = self._winner(slot)
            if won is not None and won.record_key != mine:
                self._send(mine, None)  # lost the race: keep one live candidate per slot
            if won is not None or self._destroyed(slot):
                break
        if won is None:
            raise SaltExpired(slot) if slot.startswith("salt/") else MayakError(slot)
        return won.secret

    @contextmanager
    def _creating(self) -> Iterator[None]:
        """Around a creation's write and read-back: if the store cannot do them in time, fail
        the store (the worker stops: ``on_store_failure``) and raise: no event may be
        enriched, or dropped, for want of a key the store may or may not hold now."""
        try:
            yield
        except KeyStoreUnavailable as exc:
            self._fail(exc)
            raise

    def create_customer_keys(self, uids: Iterable[str]) -> int:
        """Create the key of every customer of ``uids`` that has none, all at once: their
        candidates in one produce + flush, then one read-back (a new customer otherwise costs
        a round trip of its own, ~10 ms, on the enrich worker's event loop). Returns how many
        were created. Racing stores agree as in ``customer_key`` (losers are tombstoned)."""
        with self._cond:
            self._raise_failure()
            wanted = {f"cust/{self.mac(uid)}" for uid in uids}
            missing = sorted(slot for slot in wanted if self._state.winner(slot) is None)
        if not missing:
            return 0
        mine = {slot: f"{slot}/{secrets.token_hex(8)}" for slot in missing}
        records: list[tuple[str, bytes | None]] = [
            (key, secrets.token_bytes(32)) for key in mine.values()
        ]
        with self._creating():
            self._wait_read(self._send_all(records))
        with self._cond:
            lost = [
                key
                for slot, key in mine.items()
                if (won := self._state.winner(slot)) is not None and won.record_key != key
            ]
        if lost:  # keep one live candidate per slot
            self._send_all([(key, None) for key in lost])
        return len(missing)

    def _destroy(self, slot: str, whole: bool) -> bool:
        """Mark ``gone`` and tombstone every candidate of ``slot`` (after reading to the end)."""
        self._sync()
        with self._cond:
            live = self._state.live(slot)
        last = self._send(f"gone/{slot}", b"") if whole else -1
        for candidate in live:
            if not whole:
                self._send(f"gone/{candidate.record_key}", b"")
            last = self._send(candidate.record_key, None)
        if last >= 0:
            self._wait_read(last)
        return bool(live)

    def _destroyed(self, slot: str) -> bool:
        with self._cond:
            return slot in self._state.gone

    # --- the KeyStore methods ------------------------------------------------------------
    def _secret(self, name: str) -> bytes:
        return self._get_or_create(f"secret/{name}")

    @property
    def install_id(self) -> str:
        """A random id of the store (``mayak.install`` matches it with ``install.id``)."""
        return self._secret("install-id").hex()[:32]

    def salt_for(self, day: date, now: datetime) -> bytes:
        """The salt of ``day`` (UTC); raises ``SaltExpired`` once it is 48 h old or destroyed."""
        slot = f"salt/{day.isoformat()}"
        if day_start(day) + SALT_LIFETIME <= now or self._destroyed(slot):
            raise SaltExpired(day.isoformat())
        return self._get_or_create(slot)

    def purge_expired(self, now: datetime) -> list[date]:
        """Destroy every salt whose day started ``SALT_LIFETIME`` ago or earlier (after reading
        to the end of the topic: a salt another worker just created is destroyed too)."""
        self._sync()
        expired = [d for d in self.salt_days() if day_start(d) + SALT_LIFETIME <= now]
        for day in expired:
            self._destroy(f"salt/{day.isoformat()}", whole=True)
        return expired

    def salt_days(self) -> list[date]:
        with self._cond:
            slots = self._state.slots("salt")
        return sorted(date.fromisoformat(slot.split("/")[1]) for slot in slots)

    def mac(self, uid: str) -> str:
        return hmac.new(self._index_key, uid.encode(), hashlib.sha256).hexdigest()

    def customer_key(self, uid: str) -> bytes:
        """The customer's pseudonym key, created on first use (and again after erasure)."""
        return self._get_or_create(f"cust/{self.mac(uid)}")

    def has_customer(self, uid: str) -> bool:
        return self._winner(f"cust/{self.mac(uid)}") is not None

    def forget_customer(self, uid: str) -> bool:
        """Destroy the customer's key on every worker (erasure). True if a key existed."""
        return self._destroy(f"cust/{self.mac(uid)}", whole=False)

    def opt_out(self, uid: str) -> None:
        self._wait_read(self._send(f"optout/{self.mac(uid)}", b"1"))

    def opt_in(self, uid: str) -> bool:
        self._sync()
        if not self.is_opted_out(uid):
            return False
        self._wait_read(self._send(f"optout/{self.mac(uid)}", None))
        return True

    def is_opted_out(self, uid: str) -> bool:
        with self._cond:
            self._raise_failure()
            return self.mac(uid) in self._state.opted_out

    # --- backup and restore (anonymizer.keybackup) ---------------------------------------
    def snapshot(self) -> KeyState:
        """A copy of what the store knows, after reading to the end of the topic."""
        self._sync()
        with self._cond:
            return KeyState(
                {slot: dict(live) for slot, live in self._state.candidates.items()},
                set(self._state.gone),
                set(self._state.opted_out),
                self._state.next_offset,
            )

    def write(self, record_key: str, plain: bytes | None) -> None:
        """Write one record as it is (restore); the caller checked it may."""
        self._wait_read(self._send(record_key, plain))

    def close(self) -> None:
        self._stop.set()
        self._reader.join(timeout=5)
        self._producer.close(timeout=5)


def _connect(bootstrap: str) -> tuple[KafkaProducer, KafkaConsumer]:
    try:
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
        consumer = KafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=None,
            enable_auto_commit=False,
            fetch_max_wait_ms=500,  # a long poll: answered as soon as a record comes
            auto_offset_reset="none",  # records gone under our feet: fail, never skip
        )
    except KafkaError as exc:
        raise MayakError(no_broker(bootstrap, exc)) from exc
    return producer, consumer
