"""The broker goes away for two minutes under a running worker (``--role all``: enrich and sink,
embedded ClickHouse) and comes back on its port. Events arrive before and after the outage.
The worker either rides it out or stops without committing (a supervisor starts it again, as
``mayak up`` and docker-compose do); it must not hang alive and stuck. Every event lands in
``events`` exactly once, none as a failure."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from mayak.kafka_local import LocalBroker
from mayak.procs import mayak_sql, settings_for, spawn_mayak, stop_process
from stream_jobs.topics import ensure_topics
from tests.brokers import private_broker, worker_env
from tests.stream_jobs.test_sj_exactly_once import _lag
from tests.stream_jobs.test_sj_key_outage import _events as _service_requests
from tests.stream_jobs.test_sj_key_outage import _send

pytestmark = [pytest.mark.long_outage, pytest.mark.kafka, pytest.mark.clickhouse]

OUTAGE_S = 120.0


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    """A broker only this module uses, so stopping it disturbs no other test."""
    with private_broker(
        tmp_path_factory.mktemp("worker-outage-kafka"), heap_mb=384, timeout=180
    ) as broker:
        yield broker


def test_two_minutes_without_a_broker_lose_nothing_and_leave_no_stuck_worker(
    broker: LocalBroker, tmp_path
) -> None:
    env = worker_env(tmp_path / "data", broker.bootstrap, "o")
    settings = settings_for(env)
    ensure_topics(settings)
    messages, _ = _service_requests(settings)
    half = len(messages) // 2
    log = tmp_path / "worker.log"

    def start() -> object:
        return spawn_mayak(["worker", "--no-dashboards", "--loglevel", "info"], log, env)

    def drained(total: int) -> bool:
        topics = [settings.topic_raw, settings.topic_events, settings.topic_failed]
        done = [_lag(broker.bootstrap, settings.worker_id, [t]) for t in topics]
        return done[0] == (total,) * 2 and all(c == e for c, e in done)

    restarts = 0
    worker = start()
    try:
        _send(broker.bootstrap, settings.topic_raw, messages[:half])
        deadline = time.monotonic() + 180
        while not drained(half):
            assert worker.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        broker.stop()
        time.sleep(OUTAGE_S)
        broker.start(timeout=120)
        _send(broker.bootstrap, settings.topic_raw, messages[half:])
        deadline = time.monotonic() + 240
        while not drained(len(messages)):
            if worker.poll() is not None:  # stopped on its own: a supervisor starts it again
                restarts += 1
                assert restarts <= 3, log.read_text()[-3000:]
                worker = start()
            assert time.monotonic() < deadline, f"stuck:\n{log.read_text()[-3000:]}"
            time.sleep(0.5)
    finally:
        stop_process(worker)
    print(f"restarts after the outage: {restarts}")
    rows = mayak_sql("SELECT toString(event_id) AS id FROM events", env, timeout=180)
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)), f"{len(ids) - len(set(ids))} event(s) landed twice"
    assert len(ids) == len(messages), f"{len(messages) - len(ids)} event(s) lost"
    assert mayak_sql("SELECT count() AS n FROM failed_events", env) == [{"n": 0}]
