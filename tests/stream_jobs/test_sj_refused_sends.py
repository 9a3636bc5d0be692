"""The broker refuses the worker's enriched events: nothing is committed past them.

Faust's producer flush, which a commit awaits, returns even when a send failed after its
retries (it only logs it). Here ``mayak.events`` accepts no message over 64 bytes, so every
enriched-events message is refused: the worker must stop without committing ``mayak.raw``,
and once the topic accepts them again a restarted worker lands every event exactly once.
On the old code the raw offsets were committed and those events were lost.
"""

from __future__ import annotations

import time

import pytest
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType

from tests.stream_jobs.test_sj_exactly_once import _produce
from tests.stream_jobs.test_sj_faults import (
    Traffic,
    _assert_landed_exactly_once,
    _committed,
    _start_worker,
    _wait_drained,
)

pytestmark = [pytest.mark.faults, pytest.mark.kafka, pytest.mark.clickhouse]


def _max_message_bytes(bootstrap: str, topic: str, value: str) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic, configs={"max.message.bytes": value})]
        )
    finally:
        admin.close()


def test_events_the_broker_refuses_are_never_committed_past(stack) -> None:
    traffic = Traffic(seed=61)
    stack.env.update(traffic.env, MAYAK_SINK_FLUSH_SECONDS="0.3")
    s = stack.settings
    _max_message_bytes(s.kafka_bootstrap, s.topic_events, "64")
    messages = traffic.batch(300)
    _produce(s.kafka_bootstrap, s.topic_raw, messages)
    _start_worker(stack)
    worker = stack.procs["worker"]
    deadline = time.monotonic() + 120
    while worker.poll() is None and time.monotonic() < deadline:
        time.sleep(0.5)
    log = stack.log("worker")
    assert worker.poll() is not None, f"the worker kept running:\n{log[-3000:]}"
    assert worker.returncode != 0
    assert "Kafka refused" in log, log[-3000:]
    assert _committed(stack, s.topic_raw) == 0  # not one raw offset committed
    stack.procs.pop("worker")

    _max_message_bytes(s.kafka_bootstrap, s.topic_events, "1048588")  # Kafka's default
    _start_worker(stack)
    _wait_drained(stack, len(messages), timeout=120)
    stack.stop("worker")
    _assert_landed_exactly_once(stack, traffic)
