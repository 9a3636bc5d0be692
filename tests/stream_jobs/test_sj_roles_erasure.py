"""Erasure with two enrich workers running on the shared key store (issue 17).

A customer's events go through both enrich workers (to every partition of ``mayak.raw``),
``mayak erase`` destroys the key through the sink's admin API, and then, past the key
store's stated propagation bound, the same customer's events go through both workers again:
neither makes the old pseudonym, both make the same new one, and the erased key's encrypted
bytes leave the broker's files within the key store's purge bound.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
import uuid

import httpx
import pytest
from kafka import KafkaProducer

from anonymizer.master import load_master_secret
from contract.crypto import partition_secret
from mayak.kafka_local import LocalBroker, free_port
from mayak.procs import settings_for, spawn_mayak
from producers.hooks.tracker import Tracker
from stream_jobs.roles import Role, group_id
from stream_jobs.topics import ensure_topics
from tests.stream_jobs.test_sj_exactly_once import _lag
from tests.stream_jobs.test_sj_faults import UAS
from tests.stream_jobs.test_sj_roles_scaleout import Workers
from tests.warehouse.test_wh_erasure_pipeline import _files, _key_record, _mayak

pytestmark = [pytest.mark.faults, pytest.mark.kafka, pytest.mark.clickhouse]

PARTITIONS = 4
PER_PARTITION = 3
ERASED, KEPT = "ELG-CUST-ERASE1", "ELG-CUST-KEEP1"
#: the key store's stated bounds (README "Shared key store"; test settings below)
PROPAGATION_BOUND_S = 5.0
PURGE_BOUND_S = 60.0


def _send_everywhere(settings, uids: list[str], bootstrap: str) -> int:
    """``PER_PARTITION`` hook events of each customer on every partition of mayak.raw, so that
    both enrich workers pseudonymize each customer."""
    made: list[tuple[bytes, bytes]] = []
    tracker = Tracker(
        settings.hooks_site,
        lambda key, value: made.append((key, value)),
        partition_secret(load_master_secret(settings.ip_key, settings.data_dir)),
    )
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    for partition in range(PARTITIONS):
        made.clear()
        for uid in uids:
            for _ in range(PER_PARTITION):
                tracker.track(
                    "service_request",
                    uid=uid,
                    service_type="notary",
                    route="POST /services/{service}/apply",
                    method="POST",
                    ua=UAS[0],
                )
        tracker.flush()
        for key, value in made:
            producer.send(settings.topic_raw, key=key, value=value, partition=partition)
    producer.flush()
    producer.close()
    return PARTITIONS * PER_PARTITION * len(uids)


def _pids(env: dict[str, str], uid: str) -> list[str]:
    lines = _mayak(env, "export", "--customer", uid).stdout.splitlines()
    return [json.loads(line)["customer_pid"] for line in lines]


def test_an_erasure_reaches_both_enrich_workers(stack, kafka_broker: LocalBroker) -> None:
    tag = uuid.uuid4().hex[:8]
    env = {
        **stack.env,
        "MAYAK_TOPIC_RAW": f"e{tag}.raw",
        "MAYAK_TOPIC_EVENTS": f"e{tag}.events",
        "MAYAK_TOPIC_FAILED": f"e{tag}.failed",
        "MAYAK_KAFKA_PARTITIONS": str(PARTITIONS),
        "MAYAK_IP_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "MAYAK_WORKER_SESSION_TIMEOUT_S": "6",
        "MAYAK_SINK_FLUSH_SECONDS": "0.3",
        "MAYAK_KEY_STORE": "kafka",
        "MAYAK_TOPIC_KEYS": f"e{tag}.keys",
        "MAYAK_KEY_STORE_SEGMENT_S": "2",  # destroyed bytes gone within seconds
        "MAYAK_KEY_STORE_HEARTBEAT_S": "0.5",
    }
    settings = settings_for(env)
    ensure_topics(settings)
    bootstrap = settings.kafka_bootstrap
    enrich_group, sink_group = group_id(settings, Role.ENRICH), group_id(settings, Role.SINK)
    workers = Workers(stack, env)
    # the sink serves the dashboards' admin API: `mayak erase` goes through it
    sink_env = {**workers.env_of("sink"), "MAYAK_DASHBOARDS_PORT": str(free_port())}
    sink_env["MAYAK_WORKER_WEB_PORT"] = str(free_port())
    stack.procs["sink"] = spawn_mayak(
        ["worker", "--role", "sink", "--dashboards"], stack.home / "sink.log", sink_env
    )
    workers.start("enrich-a", Role.ENRICH)
    workers.start("enrich-b", Role.ENRICH)

    def split() -> bool:
        a, b = workers.raw_partitions("enrich-a"), workers.raw_partitions("enrich-b")
        return bool(a and b and not a & b and a | b == set(range(PARTITIONS)))

    workers.wait(split, 120, "the two enrich workers to split mayak.raw's partitions")
    dashboards = settings_for(sink_env).dashboards_url
    workers.wait(lambda: _up(f"{dashboards}/healthz"), 120, "the sink's dashboards")
    sent = 0

    def drained() -> bool:
        raw = _lag(bootstrap, enrich_group, [settings.topic_raw])
        landed = _lag(bootstrap, sink_group, [settings.topic_events, settings.topic_failed])
        return raw[1] >= sent and raw[0] == raw[1] and landed[0] == landed[1] > 0

    sent += _send_everywhere(settings, [ERASED, KEPT], bootstrap)
    workers.wait(drained, 120, "the first events enriched by both workers and landed")
    before = _pids(sink_env, ERASED)
    assert len(before) == PARTITIONS * PER_PARTITION and len(set(before)) == 1  # one pseudonym
    old_pid = before[0]
    kept_pid = set(_pids(sink_env, KEPT))
    held = _key_record(settings, ERASED)
    log_dir = kafka_broker.log_dir / f"{settings.topic_keys}-0"
    assert held in _files(log_dir)  # the scan below can see the key's record

    done = json.loads(_mayak(sink_env, "erase", "--customer", ERASED).stdout)
    erased_at = time.monotonic()
    assert done["subject"] == old_pid and done["key_destroyed"]
    assert done["rows_deleted"]["events"] == PARTITIONS * PER_PARTITION
    time.sleep(max(0.0, erased_at + PROPAGATION_BOUND_S - time.monotonic()))

    sent += _send_everywhere(settings, [ERASED, KEPT], bootstrap)
    workers.wait(drained, 120, "the events after the erasure enriched and landed")
    assert split(), "a rebalance moved partitions: both workers must have made the new pids"
    after = _pids(sink_env, ERASED)
    assert len(after) == PARTITIONS * PER_PARTITION
    assert old_pid not in after  # neither worker made the old pseudonym
    assert len(set(after)) == 1  # both made the same new one (created once, cluster-wide)
    assert set(_pids(sink_env, KEPT)) == kept_pid  # another customer is untouched

    deadline = time.monotonic() + PURGE_BOUND_S
    while held in _files(log_dir):
        assert time.monotonic() < deadline, "the erased key's bytes stayed on the broker"
        time.sleep(0.5)
    print(f"erased key's bytes left the broker {time.monotonic() - erased_at:.1f}s after")
    for name in ("enrich-a", "enrich-b", "sink"):
        stack.stop(name)


def _up(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
