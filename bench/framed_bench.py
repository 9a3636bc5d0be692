"""pipeline_framed: events/s of one stream worker on ``mayak.raw`` traffic framed as the
collector frames it under load (``contract.raw_frames``: several raw events of one partition
in one message, each partition's events in arrival order, sealed as the collector seals them:
``contract.raw_seal``), landed in ClickHouse.

The worker is one enrich worker (``mayak worker --role enrich``: validate, enrich,
pseudonymize, sessionize, publish to ``mayak.events``), timed by the events it publishes
there; ``role="all"`` times the single worker ``mayak up`` runs (enrich and sink: landed in
ClickHouse) instead. The frames carry
``FRAME_EVENTS`` events, a pass of the collector's sender thread at a few thousand
requests/s (it frames up to ``raw_frames.MAX_EVENTS``).
"""

from __future__ import annotations

import math
import subprocess
import time
from pathlib import Path

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from bench.harness import PeakMemory
from bench.pipeline_bench import worker_env, worker_landed_eps
from bench.stack_bench import Trees
from bench.traffic import raw_records
from contract import raw_frames, raw_seal
from mayak.errors import MayakError
from mayak.procs import settings_for, spawn_mayak, stop_process
from producers.collector.outbox import MemoPartitioner
from stream_jobs.batching import event_count
from stream_jobs.topics import ensure_topics

FRAME_EVENTS = 50
KEYS_TOPIC = "bench.framed.keys"
KEY_STORE_ENV = {"MAYAK_KEY_STORE": "kafka", "MAYAK_TOPIC_KEYS": KEYS_TOPIC}


def frames(
    records: list[tuple[bytes, bytes]], partitions: int, per_frame: int = FRAME_EVENTS
) -> list[tuple[int, bytes | None, bytes]]:
    """(partition, key, value) messages holding ``records`` framed ``per_frame`` at a time per
    partition, each record on the partition its key chooses (as the collector's producer)."""
    pick = MemoPartitioner().pick
    ordered = list(range(partitions))
    per_partition: dict[int, list[tuple[bytes, bytes]]] = {}
    out: list[tuple[int, bytes | None, bytes]] = []
    for key, value in records:
        partition = pick(key, ordered)
        waiting = per_partition.setdefault(partition, [])
        waiting.append((key, value))
        if len(waiting) == per_frame:
            out.append(_frame(partition, waiting))
            waiting.clear()
    out += [_frame(p, waiting) for p, waiting in per_partition.items() if waiting]
    return out


def _frame(partition: int, records: list[tuple[bytes, bytes]]) -> tuple[int, bytes | None, bytes]:
    keys = {key for key, _ in records}
    key = keys.pop() if len(keys) == 1 else None
    return partition, key, raw_frames.frame([value for _, value in records])


def fill(
    bootstrap: str,
    topic: str,
    messages: list[tuple[int, bytes | None, bytes]],
    seal: raw_seal.Transform = raw_seal.plain,
) -> None:
    """Produce ``messages``, each value sealed with ``seal`` (as the collector does)."""
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=20, compression_type="gzip"
    )
    for partition, key, value in messages:
        producer.send(topic, key=key, value=seal(value), partition=partition)
    producer.flush()
    producer.close()


def published_eps(
    bootstrap: str, topic: str, n: int, proc: subprocess.Popen, timeout: float
) -> tuple[float, float]:
    """Rate of the events published to ``topic`` (counted by each message's event count),
    between the first message and the ``n``-th event; and the worker's CPU microseconds per
    event meanwhile (which a busy shared machine distorts far less than the rate)."""
    worker = Trees({"worker": proc.pid})
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    deadline = time.monotonic() + timeout
    try:
        partitions = None
        while not partitions and time.monotonic() < deadline:
            partitions = consumer.partitions_for_topic(topic)
            time.sleep(0.2)
        consumer.assign([TopicPartition(topic, p) for p in partitions or ()])
        consumer.seek_to_beginning()
        first_n, first_t, first_cpu, count = 0, 0.0, 0.0, 0
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise MayakError("the worker exited during the framed benchmark")
            batch = consumer.poll(timeout_ms=100)
            now = time.perf_counter()
            count += sum(event_count(m.headers) for msgs in batch.values() for m in msgs)
            if count and not first_n:
                first_n, first_t, first_cpu = count, now, worker.cpu_seconds()["worker"]
            if count >= n:
                if count > n:
                    raise MayakError(f"{count} events published for {n} raw events: duplicates")
                if n <= first_n:
                    return math.nan, math.nan
                cpu_us = (worker.cpu_seconds()["worker"] - first_cpu) / (n - first_n) * 1e6
                return (n - first_n) / max(now - first_t, 1e-9), cpu_us
    finally:
        consumer.close()
    raise MayakError(f"only {count} of {n} events were published in {timeout:.0f}s")


def run(
    bootstrap: str, work: Path, n: int, results: dict, details: dict, role: str = "enrich"
) -> None:
    # the key store every enrich worker shares, as production runs it (docker-compose.yml):
    # the Kafka key store, on a keys topic of the step's own
    env = {**worker_env(bootstrap, work, "framed"), **KEY_STORE_ENV}
    settings = settings_for(env)
    ensure_topics(settings)
    messages = frames(raw_records(n, work / "framed"), settings.kafka_partitions)
    seal = raw_seal.sealer(raw_seal.key_of(settings), collector=True)  # as the collector does
    fill(bootstrap, settings.topic_raw, messages, seal)
    args = ["--role", "enrich"] if role == "enrich" else ["--dashboards"]
    proc = spawn_mayak(["worker", *args], work / "framed-worker.log", env)
    memory = PeakMemory(proc.pid)
    cpu_us = math.nan
    try:
        if role == "enrich":
            eps, cpu_us = published_eps(bootstrap, settings.topic_events, n, proc, 600)
        else:
            eps = worker_landed_eps(settings, proc, n, work)
    finally:
        stop_process(proc)
        peak = memory.stop()
    if math.isnan(eps):
        raise MayakError(f"all {n:,} events landed before the first look: too few to time")
    results["pipeline_framed_eps"] = round(eps)
    results["worker_peak_mb"] = max(results.get("worker_peak_mb", 0), peak)
    details["pipeline_framed_eps"] = (
        f"{n:,} events in {len(messages):,} frames of <= {FRAME_EVENTS}, "
        + (
            "1 enrich worker on the shared Kafka key store, published to mayak.events; "
            f"its CPU {cpu_us:.1f} us per event"
            if role == "enrich"
            else "1 worker (enrich + sink), landed in ClickHouse"
        )
    )
