"""The broker goes away while a worker on the shared (Kafka) key store creates new customers'
keys, and comes back a while later. A worker (``--role all``: enrich and sink, embedded
ClickHouse) works through a backlog in which most events come from customers never seen
before; the broker is stopped while the keys topic grows (keys being created), for longer
than the key store waits (``MAYAK_KEY_STORE_TIMEOUT_S``), then started again. A worker that
stopped meanwhile is started again, as a supervisor would. Every event lands exactly once,
none as a failure, and every customer has one pseudonym."""

from __future__ import annotations

import base64
import secrets
import time
from collections import defaultdict
from collections.abc import Iterator

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from anonymizer.master import load_master_secret
from contract.crypto import partition_secret
from mayak.kafka_local import LocalBroker
from mayak.procs import mayak_sql, settings_for, spawn_mayak, stop_process
from mayak.settings import Settings
from producers.hooks.tracker import Tracker
from stream_jobs.topics import ensure_topics
from tests.brokers import private_broker, worker_env
from tests.stream_jobs.test_sj_exactly_once import _lag
from tests.stream_jobs.test_sj_faults import UAS

pytestmark = [pytest.mark.faults, pytest.mark.kafka, pytest.mark.clickhouse]

CUSTOMERS = 3_000  # each sends two events: the second after the outage, mostly
TIMEOUT_S = 3.0  # the key store's bound on a write and its read-back
OUTAGE_S = 8.0  # longer than that bound: the worker stops if it was creating keys
KEY_STORE_ERRORS = ("key store could not write", "key store did not read back")


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    """A broker only this module uses, so stopping it disturbs no other test."""
    with private_broker(
        tmp_path_factory.mktemp("keys-outage-kafka"), heap_mb=384, timeout=180
    ) as broker:
        yield broker


def _events(settings: Settings) -> tuple[list[tuple[bytes, bytes]], dict[str, str]]:
    """(key, value) raw messages of the server hooks, and each event's customer."""
    sent: list[tuple[bytes, bytes]] = []
    secret = partition_secret(load_master_secret(settings.ip_key, settings.data_dir))
    tracker = Tracker(settings.hooks_site, lambda k, v: sent.append((k, v)), secret)
    customer_of: dict[str, str] = {}
    for round_ in range(2):
        for i in range(CUSTOMERS):
            uid = f"OUT-{i:05d}"
            event = tracker.track(
                "service_request",
                uid=uid,
                service_type=f"s{round_}",
                route="POST /services/{service}/apply",
                method="POST",
                ua=UAS[i % len(UAS)],
            )
            customer_of[str(event.id)] = uid
    tracker.flush()
    tracker.close()
    return sent, customer_of


def _send(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20)
    for key, value in messages:
        producer.send(topic, key=key, value=value)
    producer.flush()
    producer.close()


def _keys_written(bootstrap: str, topic: str) -> int:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        tp = TopicPartition(topic, 0)
        return consumer.end_offsets([tp])[tp]
    finally:
        consumer.close()


def test_no_broker_while_keys_are_created_loses_nothing_and_splits_no_customer(
    broker: LocalBroker, tmp_path
) -> None:
    env = {
        **worker_env(tmp_path / "data", broker.bootstrap, "k"),
        "MAYAK_KEY_STORE_TIMEOUT_S": str(TIMEOUT_S),
        "MAYAK_IP_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
    }
    settings = settings_for(env)
    ensure_topics(settings)
    messages, customer_of = _events(settings)
    _send(broker.bootstrap, settings.topic_raw, messages[:CUSTOMERS])  # the backlog
    log = tmp_path / "worker.log"

    def start() -> object:
        return spawn_mayak(["worker", "--no-dashboards", "--loglevel", "info"], log, env)

    worker = start()
    try:
        # stop the broker while the worker creates keys (the keys topic grows), mid-backlog
        deadline = time.monotonic() + 120
        while _keys_written(broker.bootstrap, settings.topic_keys) < CUSTOMERS // 10:
            assert worker.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.05)
        broker.stop()
        time.sleep(OUTAGE_S)
        broker.start(timeout=120)
        if any(error in log.read_text() for error in KEY_STORE_ERRORS):
            worker.wait(60)  # it stops on its own: let it finish
        if worker.poll() is not None:
            print(f"the worker stopped during the outage (exit {worker.returncode})")
            worker = start()
        _send(broker.bootstrap, settings.topic_raw, messages[CUSTOMERS:])

        def drained() -> bool:
            topics = [settings.topic_raw, settings.topic_events, settings.topic_failed]
            done = [_lag(broker.bootstrap, settings.worker_id, [t]) for t in topics]
            return done[0] == (len(messages),) * 2 and all(c == e for c, e in done)

        deadline = time.monotonic() + 240
        while not drained():
            assert worker.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
    finally:
        stop_process(worker)
    text = log.read_text()
    print(f"key store errors logged: {sum(text.count(error) for error in KEY_STORE_ERRORS)}")

    rows = mayak_sql(
        "SELECT toString(event_id) AS id, customer_pid AS c FROM events", env, timeout=180
    )
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)), f"{len(ids) - len(set(ids))} event(s) landed twice"
    assert set(ids) == set(customer_of), f"{len(set(customer_of) - set(ids))} event(s) lost"
    assert mayak_sql("SELECT count() AS n FROM failed_events", env) == [{"n": 0}]
    pseudonyms: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        pseudonyms[customer_of[r["id"]]].add(r["c"])
    assert {c: len(p) for c, p in pseudonyms.items()} == dict.fromkeys(pseudonyms, 1)
    assert len({next(iter(p)) for p in pseudonyms.values()}) == CUSTOMERS
