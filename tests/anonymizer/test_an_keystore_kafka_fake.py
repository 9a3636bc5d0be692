"""The shared key store's logic on an in-memory log (unit tier): every store reads one list
of records as Kafka's single partition would, so races, erasure and losers' clean-up are
checked without a broker (the real broker: test_an_keystore_kafka.py)."""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from anonymizer.keystore import SaltExpired
from anonymizer.keystore_kafka import KafkaKeyStore

DAY = date(2026, 11, 28)
NOON = datetime(2026, 11, 28, 12, tzinfo=UTC)


@dataclass
class Record:
    offset: int
    key: bytes
    value: bytes | None


@dataclass
class Log:
    """One partition: appends get the next offset."""

    records: list[Record] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def append(self, key: bytes, value: bytes | None) -> int:
        with self.lock:
            self.records.append(Record(len(self.records), key, value))
            return len(self.records) - 1


class Sent:
    def __init__(self, offset: int) -> None:
        self.offset = offset

    def get(self, timeout: float | None = None) -> Sent:
        return self


class FakeProducer:
    def __init__(self, log: Log) -> None:
        self.log = log

    def send(self, topic: str, key: bytes, value: bytes | None, partition: int) -> Sent:
        return Sent(self.log.append(key, value))

    def close(self, timeout: float | None = None) -> None:
        pass


class FakeConsumer:
    def __init__(self, log: Log) -> None:
        self.log, self.pos = log, 0

    def assign(self, tps: list[Any]) -> None:
        self.tp = tps[0]

    def seek_to_beginning(self, tp: Any) -> None:
        self.pos = 0

    def end_offsets(self, tps: list[Any]) -> dict[Any, int]:
        return {tps[0]: len(self.log.records)}

    def position(self, tp: Any) -> int:
        return self.pos

    def poll(self, timeout_ms: int) -> dict[Any, list[Record]]:
        with self.log.lock:
            new = self.log.records[self.pos :]
        if not new:
            time.sleep(0.005)
            return {}
        self.pos += len(new)
        return {self.tp: new}

    def close(self) -> None:
        pass


@pytest.fixture
def stores():
    log, master, opened = Log(), secrets.token_bytes(32), []

    def open_one() -> KafkaKeyStore:
        store = KafkaKeyStore(
            "fake:0", "keys", master, clients=(FakeProducer(log), FakeConsumer(log))
        )
        opened.append(store)
        return store

    open_one.log = log  # type: ignore[attr-defined]
    yield open_one
    for store in opened:
        store.close()


def test_racing_creators_agree_and_the_loser_tombstones_its_candidate(stores) -> None:
    a, b = stores(), stores()
    start, got = threading.Barrier(2), {}

    def create(name: str, store: KafkaKeyStore) -> None:
        start.wait()
        got[name] = (store.salt_for(DAY, NOON), store.customer_key("c"))

    threads = [threading.Thread(target=create, args=(n, s)) for n, s in (("a", a), ("b", b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert got["a"] == got["b"] and a.visitor_key == b.visitor_key
    candidates = [r for r in stores.log.records if r.key.startswith(b"cust/") and r.value]
    tombstones = [r for r in stores.log.records if r.key.startswith(b"cust/") and not r.value]
    assert len(candidates) - len(tombstones) == 1  # every loser deleted its own
    assert stores().customer_key("c") == got["a"][1]  # a new process reads the same


def test_erasure_reaches_the_other_store_and_the_next_key_is_new(stores) -> None:
    a, b = stores(), stores()
    old = a.customer_key("c")
    assert b.customer_key("c") == old
    assert b.forget_customer("c") is True
    deadline = time.monotonic() + 5
    while a.has_customer("c"):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert a.customer_key("c") != old
    gone = [r.key for r in stores.log.records if r.key.startswith(b"gone/cust/")]
    assert len(gone) == 1 and len(gone[0].split(b"/")[2]) == 64  # an HMAC, not the id


def test_purged_salt_is_tombstoned_and_never_made_again(stores) -> None:
    a, b = stores(), stores()
    a.salt_for(DAY, NOON)
    assert b.purge_expired(NOON + timedelta(days=2)) == [DAY]
    salt_records = [r for r in stores.log.records if r.key.startswith(b"salt/")]
    assert salt_records[-1].value is None  # every candidate tombstoned
    deadline = time.monotonic() + 5
    while a.salt_days():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    for store in (a, b, stores()):
        with pytest.raises(SaltExpired):
            store.salt_for(DAY, NOON)


def test_opt_out_travels_and_values_are_ciphertext(stores) -> None:
    a, b = stores(), stores()
    a.opt_out("customer-4242")
    deadline = time.monotonic() + 5
    while not b.is_opted_out("customer-4242"):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert b.opt_in("customer-4242") is True and b.opt_in("customer-4242") is False
    key = a.customer_key("customer-4242")
    raw = b"".join(r.key + (r.value or b"") for r in stores.log.records)
    assert b"customer-4242" not in raw and key not in raw and a.visitor_key not in raw
