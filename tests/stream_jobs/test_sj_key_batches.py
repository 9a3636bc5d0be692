"""New customers' keys on the enrich path with the shared (Kafka) key store, on an in-memory
log (unit tier; the real broker: test_sj_key_outage.py).

A batch of events from many new customers costs one round trip to the broker for all their
keys, not one each on the event loop; and a key store that cannot create a key (the broker
away) makes no dead letters and no partial commit: the intake refuses every later flush and
the store's failure stops the worker.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import orjson
import pytest
from kafka.errors import KafkaTimeoutError

from anonymizer import keylog, pseudonym
from anonymizer.keyrecords import KeyStoreUnavailable
from anonymizer.keystore_kafka import KafkaKeyStore
from tests.anonymizer.test_an_keystore_kafka_fake import FakeConsumer, FakeProducer, Log
from tests.stream_jobs.samples import raw_event
from tests.stream_jobs.test_sj_intake import _intake

CUSTOMERS = 200


class _Sent:
    def __init__(self, producer: CountingProducer, offset: int) -> None:
        self.producer, self.offset, self.acked = producer, offset, False

    def get(self, timeout: float | None = None) -> _Sent:
        if not self.acked:  # waits for this record's ack: a round trip of its own
            self.producer.round_trips += 1
            self.acked = True
        return self


class CountingProducer(FakeProducer):
    """Counts the waits for the broker: a flush of unacked records, or a get of one no flush
    covered. ``down``: every send fails as kafka-python's does when no broker answers."""

    def __init__(self, log: Log) -> None:
        super().__init__(log)
        self.round_trips, self.down, self.unacked = 0, False, []

    def send(self, topic: str, key: bytes, value: bytes | None, partition: int) -> Any:
        if self.down:
            raise KafkaTimeoutError("Failed to update metadata after 30.0 secs.")
        sent = _Sent(self, self.log.append(key, value))
        self.unacked.append(sent)
        return sent

    def flush(self, timeout: float | None = None) -> None:
        waiting = [sent for sent in self.unacked if not sent.acked]
        if waiting:
            self.round_trips += 1
            for sent in waiting:
                sent.acked = True
        self.unacked = []


@pytest.fixture
def kafka_keys():
    """Opens a Kafka key store on one in-memory log: (store, its counting producer)."""
    log, master, opened = Log(), b"m" * 32, []

    def open_one() -> tuple[KafkaKeyStore, CountingProducer]:
        producer = CountingProducer(log)
        store = KafkaKeyStore("fake:0", "keys", master, clients=(producer, FakeConsumer(log)))
        opened.append(store)
        return store, producer

    yield open_one
    for store in opened:
        store.close()


@pytest.fixture
def keys(kafka_keys) -> KafkaKeyStore:
    """The key store of ``make_pipeline`` (conftest): the Kafka one, on the in-memory log."""
    return kafka_keys()[0]


def _customer_events(n: int, prefix: str = "cust") -> list[dict]:
    return [raw_event(type="service_request", uid=f"{prefix}-{i:04d}") for i in range(n)]


def test_a_batch_of_new_customers_costs_one_round_trip(
    make_pipeline, keys, kafka_keys, clock
) -> None:
    store, producer = keys, keys._log.producer
    store.salt_for(clock.now().date(), clock.now())  # today's salt exists: customers only
    intake, pipeline, *_ = _intake(lambda sessions: make_pipeline(sessions=sessions), batch=1000)
    events = _customer_events(CUSTOMERS)
    for event in events:
        intake.add(0, None, orjson.dumps(event))
    producer.round_trips = 0

    results = asyncio.run(intake.flush())

    # one produce + flush for 200 new keys (one get of an acked record each: no wait)
    assert producer.round_trips == 1
    assert pipeline.counters == {"ok": CUSTOMERS}
    other, _ = kafka_keys()  # another worker reading the same topic: the same keys
    for event, result in zip(events, results, strict=True):
        uid = event["uid"]
        assert result["customer_pid"] == pseudonym.customer_pid(other.customer_key(uid), uid)
    # the same customers again, and a frame of them: no round trip at all
    producer.round_trips = 0
    for event in _customer_events(CUSTOMERS)[:50]:
        intake.add(1, None, orjson.dumps(event))
    asyncio.run(intake.flush())
    assert producer.round_trips == 0


def test_racing_batches_agree_on_one_key_per_customer(kafka_keys) -> None:
    a, _ = kafka_keys()
    b, _ = kafka_keys()
    uids = [f"c{i}" for i in range(40)]
    b.customer_key("c7")  # one of them exists already ...
    deadline = time.monotonic() + 5
    while not a.has_customer("c7") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert a.create_customer_keys(uids) == 39  # ... and is not made again
    # two workers creating the same batch at once: the first candidate of each wins
    more = [f"d{i}" for i in range(40)]
    start = threading.Barrier(2)

    def create(store: KafkaKeyStore) -> None:
        start.wait()
        store.create_customer_keys(more)

    threads = [threading.Thread(target=create, args=(s,)) for s in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert [a.customer_key(u) for u in uids + more] == [b.customer_key(u) for u in uids + more]


def test_an_opted_out_customer_gets_no_key(make_pipeline, keys) -> None:
    store = keys
    store.opt_out("objector")
    pipeline = make_pipeline()
    pipeline.prepare([raw_event(uid="objector"), orjson.dumps(raw_event(uid="new"))])
    assert not store.has_customer("objector") and store.has_customer("new")


def test_no_broker_during_key_creation_stops_the_worker_and_commits_nothing(
    make_pipeline, keys, clock
) -> None:
    store, producer = keys, keys._log.producer
    store.salt_for(clock.now().date(), clock.now())
    stopped: list[str] = []  # what mayak.install.KeyStoreWatch hands to stop_worker
    keylog.on_store_failure(stopped.append)
    try:
        intake, pipeline, _table, _events, failed = _intake(
            lambda sessions: make_pipeline(sessions=sessions), batch=1000
        )
        for event in _customer_events(20):
            intake.add(0, None, orjson.dumps(event))
        producer.down = True

        with pytest.raises(KeyStoreUnavailable, match="could not write"):
            asyncio.run(intake.flush())
        # nothing made of the batch: no event published, no dead letter, no counter
        assert intake.publisher.count == 0 and failed.sent == [] and pipeline.counters == {}
        assert stopped and "check the broker" in stopped[0]
        # a commit flushes the intake first: it stops there, even with the broker back
        producer.down = False
        intake.add(0, None, orjson.dumps(raw_event()))
        with pytest.raises(KeyStoreUnavailable):
            asyncio.run(intake.flush())
        assert intake.publisher.count == 0
    finally:
        keylog._failure_listeners.remove(stopped.append)


def test_a_salt_that_cannot_be_made_is_no_dead_letter(make_pipeline, keys) -> None:
    """The pipeline's catch-all would turn the failure into a dead letter of the event:
    the event is fine, so it must wait (raise), not leave as rejected."""
    pipeline = make_pipeline()
    keys._log.producer.down = True
    with pytest.raises(KeyStoreUnavailable):
        pipeline.run(raw_event())  # cookieless: needs today's salt, not made yet
    assert pipeline.counters == {}


def test_a_key_store_failed_for_good_lets_no_commit_pass(make_pipeline, keys) -> None:
    """The topic lost under the store (or another master secret): the batch's customers
    cannot be looked up, and the messages taken from the intake must not be committed."""
    from mayak.errors import MayakError

    intake, pipeline, _table, _events, failed = _intake(
        lambda sessions: make_pipeline(sessions=sessions), batch=1000
    )
    intake.add(0, None, orjson.dumps(raw_event(type="service_request", uid="c-1")))
    keys._log.fail(MayakError("the key topic lost its records"))
    for _ in range(2):  # this flush, and a commit's flush after it
        with pytest.raises(MayakError, match="lost its records"):
            asyncio.run(intake.flush())
    assert intake.publisher.count == 0 and failed.sent == [] and pipeline.counters == {}
