"""pipeline_framed: events/s of one stream worker on ``mayak.raw`` traffic framed as the
collector frames it under load (``contract.raw_frames``: several raw events of one partition
in one message, each partition's events in arrival order), landed in ClickHouse.

The worker is the one ``mayak up`` runs (``mayak worker --dashboards``: enrich, sessions,
sink and dashboards in one process), so the figure includes landing; the frames carry
``FRAME_EVENTS`` events, a pass of the collector's sender thread at a few thousand
requests/s (it frames up to ``raw_frames.MAX_EVENTS``).
"""

from __future__ import annotations

import math
from pathlib import Path

from kafka import KafkaProducer

from bench.harness import PeakMemory
from bench.pipeline_bench import landed_eps, worker_env
from bench.traffic import SITE, raw_records
from contract import raw_frames
from dashboards.auth import ensure_cli_token
from mayak.errors import MayakError
from mayak.procs import settings_for, spawn_mayak, stop_process, wait_http_ok
from producers.collector.outbox import MemoPartitioner
from stream_jobs.topics import ensure_topics

FRAME_EVENTS = 50


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


def fill(bootstrap: str, topic: str, messages: list[tuple[int, bytes | None, bytes]]) -> None:
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=20, compression_type="gzip"
    )
    for partition, key, value in messages:
        producer.send(topic, key=key, value=value, partition=partition)
    producer.flush()
    producer.close()


def run(bootstrap: str, work: Path, n: int, results: dict, details: dict) -> None:
    env = worker_env(bootstrap, work, "framed")
    settings = settings_for(env)
    ensure_topics(settings)
    messages = frames(raw_records(n, work / "framed"), settings.kafka_partitions)
    fill(bootstrap, settings.topic_raw, messages)
    proc = spawn_mayak(["worker", "--dashboards"], work / "framed-worker.log", env)
    memory = PeakMemory(proc.pid)
    try:
        wait_http_ok(
            {"dashboards": f"{settings.dashboards_url}/healthz"}, {"worker": proc}, logs=work
        )
        eps = landed_eps(
            f"{settings.dashboards_url}/api/stats/summary?site={SITE}",
            n,
            proc,
            600,
            ensure_cli_token(settings),
        )
    finally:
        stop_process(proc)
        peak = memory.stop()
    if math.isnan(eps):
        raise MayakError(f"all {n:,} events landed before the first look: too few to time")
    results["pipeline_framed_eps"] = round(eps)
    results["worker_peak_mb"] = max(results.get("worker_peak_mb", 0), peak)
    details["pipeline_framed_eps"] = (
        f"{n:,} events in {len(messages):,} frames of <= {FRAME_EVENTS}, 1 worker "
        "(enrich + sink), landed in ClickHouse"
    )
