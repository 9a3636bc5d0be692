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

The record layout, the cipher and the winner rule are in ``anonymizer.keyrecords``; reading
and writing the topic (the cache, the reader thread, heartbeats) in ``anonymizer.keylog``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any

from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError

from anonymizer.keylog import KeyLog
from anonymizer.keyrecords import (
    SALT_LIFETIME,
    Candidate,
    KeyState,
    KeyStoreUnavailable,
    RecordCipher,
    SaltExpired,
    day_start,
)
from anonymizer.keystopic import ensure_keys_topic, no_broker
from anonymizer.master import keystore_cipher_key, keystore_index_key
from mayak.errors import MayakError


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
        self._index_key = keystore_index_key(master)
        if clients is None:
            ensure_keys_topic(bootstrap, topic, segment_s)
            clients = _connect(bootstrap)
        cipher = RecordCipher(keystore_cipher_key(master))
        self._log = KeyLog(topic, cipher, clients, heartbeat_s=heartbeat_s, timeout_s=timeout_s)
        if mint:
            self.visitor_key = self._secret("visitor-cookie")

    def __repr__(self) -> str:  # never show key material
        return f"KafkaKeyStore({self.topic!r})"

    # --- creating and destroying secrets -----------------------------------------------
    def _winner(self, slot: str) -> Candidate | None:
        with self._log.cond:
            self._log.raise_failure()
            return self._log.state.winner(slot)

    def _get_or_create(self, slot: str) -> bytes:
        found = self._winner(slot)
        if found is not None:
            return found.secret
        for _ in range(5):  # another store may destroy the slot meanwhile: try again
            mine = f"{slot}/{secrets.token_hex(8)}"
            with self._creating():
                self._log.wait_read(self._log.send(mine, secrets.token_bytes(32)))
            won = self._winner(slot)
            if won is not None and won.record_key != mine:
                self._log.send(mine, None)  # lost the race: keep one live candidate per slot
            if won is not None or self._destroyed(slot):
                break
        if won is None:
            raise SaltExpired(slot) if slot.startswith("salt/") else MayakError(slot)
        return won.secret

    @contextmanager
    def _creating(self) -> Iterator[None]:
        """Around a creation's write and read-back: if the store cannot do them in time, fail
        the store (the worker stops: ``keylog.on_store_failure``) and raise: no event may be
        enriched, or dropped, for want of a key the store may or may not hold now."""
        try:
            yield
        except KeyStoreUnavailable as exc:
            self._log.fail(exc)
            raise

    def create_customer_keys(self, uids: Iterable[str]) -> int:
        """Create the key of every customer of ``uids`` that has none, all at once: their
        candidates in one produce + flush, then one read-back (a new customer otherwise costs
        a round trip of its own, ~10 ms, on the enrich worker's event loop). Returns how many
        were created. Racing stores agree as in ``customer_key`` (losers are tombstoned)."""
        with self._log.cond:
            self._log.raise_failure()
            wanted = {f"cust/{self.mac(uid)}" for uid in uids}
            missing = sorted(slot for slot in wanted if self._log.state.winner(slot) is None)
        if not missing:
            return 0
        mine = {slot: f"{slot}/{secrets.token_hex(8)}" for slot in missing}
        records: list[tuple[str, bytes | None]] = [
            (key, secrets.token_bytes(32)) for key in mine.values()
        ]
        with self._creating():
            self._log.wait_read(self._log.send_all(records))
        with self._log.cond:
            lost = [
                key
                for slot, key in mine.items()
                if (won := self._log.state.winner(slot)) is not None and won.record_key != key
            ]
        if lost:  # keep one live candidate per slot
            self._log.send_all([(key, None) for key in lost])
        return len(missing)

    def _destroy(self, slot: str, whole: bool) -> bool:
        """Mark ``gone`` and tombstone every candidate of ``slot`` (after reading to the end)."""
        self._log.sync()
        with self._log.cond:
            live = self._log.state.live(slot)
        last = self._log.send(f"gone/{slot}", b"") if whole else -1
        for candidate in live:
            if not whole:
                self._log.send(f"gone/{candidate.record_key}", b"")
            last = self._log.send(candidate.record_key, None)
        if last >= 0:
            self._log.wait_read(last)
        return bool(live)

    def _destroyed(self, slot: str) -> bool:
        with self._log.cond:
            return slot in self._log.state.gone

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
        self._log.sync()
        expired = [d for d in self.salt_days() if day_start(d) + SALT_LIFETIME <= now]
        for day in expired:
            self._destroy(f"salt/{day.isoformat()}", whole=True)
        return expired

    def salt_days(self) -> list[date]:
        with self._log.cond:
            slots = self._log.state.slots("salt")
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
        self._log.wait_read(self._log.send(f"optout/{self.mac(uid)}", b"1"))

    def opt_in(self, uid: str) -> bool:
        self._log.sync()
        if not self.is_opted_out(uid):
            return False
        self._log.wait_read(self._log.send(f"optout/{self.mac(uid)}", None))
        return True

    def is_opted_out(self, uid: str) -> bool:
        with self._log.cond:
            self._log.raise_failure()
            return self.mac(uid) in self._log.state.opted_out

    # --- backup and restore (anonymizer.keybackup) ---------------------------------------
    def snapshot(self) -> KeyState:
        """A copy of what the store knows, after reading to the end of the topic."""
        self._log.sync()
        with self._log.cond:
            return KeyState(
                {slot: dict(live) for slot, live in self._log.state.candidates.items()},
                set(self._log.state.gone),
                set(self._log.state.opted_out),
                self._log.state.next_offset,
            )

    def write(self, record_key: str, plain: bytes | None) -> None:
        """Write one record as it is (restore); the caller checked it may."""
        self._log.wait_read(self._log.send(record_key, plain))

    def close(self) -> None:
        self._log.close()


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
