"""pipeline: events/s of the full Faust worker (validate, enrich, pseudonymize, sessionize,
land in ClickHouse) against a no-op Faust agent over the same pre-filled topic, same run."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
from kafka import KafkaProducer

from bench.harness import PeakMemory
from bench.traffic import SITE, raw_records
from contract import raw_seal
from dashboards.auth import ensure_cli_token
from mayak.errors import MayakError
from mayak.kafka_local import free_port
from mayak.procs import settings_for, spawn_mayak, stop_process, wait_http_ok
from mayak.settings import Settings
from stream_jobs.topics import ensure_topics


def worker_env(bootstrap: str, work: Path, tag: str) -> dict[str, str]:
    return {
        "MAYAK_KAFKA_BOOTSTRAP": bootstrap,
        "MAYAK_DATA_DIR": str(work / tag),
        "MAYAK_TOPIC_RAW": f"bench.{tag}.raw",
        "MAYAK_TOPIC_EVENTS": f"bench.{tag}.events",
        "MAYAK_TOPIC_FAILED": f"bench.{tag}.failed",
        "MAYAK_WORKER_ID": f"bench-{tag}",
        "MAYAK_DASHBOARDS_PORT": str(free_port()),
        "MAYAK_WORKER_WEB_PORT": str(free_port()),
        "MAYAK_COLLECTOR_PORT": str(free_port()),
        "MAYAK_COLLECTOR_SITES": f'{{"{SITE}": ["*"]}}',
        "MAYAK_COLLECTOR_RATE_PER_S": "1000000000",
        "MAYAK_COLLECTOR_RATE_BURST": "1000000000",
    }


def fill(
    bootstrap: str,
    topic: str,
    records: list[tuple[bytes, bytes]],
    seal: raw_seal.Transform = raw_seal.plain,
) -> None:
    """Produce ``records`` one message each, sealed with ``seal`` (as the collector under a
    light load and the hooks send them)."""
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=20, compression_type="gzip"
    )
    for key, value in records:
        producer.send(topic, key=key, value=seal(value))
    producer.flush()
    producer.close()


def noop_eps(env: dict[str, str], topic: str, n: int, work: Path) -> float:
    out = work / "noop.seconds"
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.noop_worker", topic, str(n), str(out)],
        env={**os.environ, **env},
        stdout=open(work / "noop.log", "ab"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
    )
    try:
        proc.wait(timeout=300)
    finally:
        stop_process(proc)
    if not out.exists():
        raise MayakError(f"the no-op agent did not see {n} events; see {work / 'noop.log'}")
    return (n - 1) / float(out.read_text())


def pageviews(url: str, token: str = "") -> int:
    """Pageviews the dashboards API counts (``token``: the worker's CLI token, which the
    worker writes at start-up: the API has no anonymous access)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        return int(httpx.get(url, timeout=5, headers=headers).json().get("pageviews", 0))
    except (httpx.HTTPError, ValueError):
        return 0


def landed_eps(url: str, n: int, proc: subprocess.Popen, timeout: float, token: str = "") -> float:
    """Rate between the first time rows are visible and the time all ``n`` are."""
    deadline = time.monotonic() + timeout
    first_n, first_t, count = 0, 0.0, 0
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise MayakError("the worker exited during the pipeline benchmark")
        count = pageviews(url, token)
        now = time.perf_counter()
        if count and not first_n:
            first_n, first_t = count, now
        if count >= n:
            if count > n:
                raise MayakError(f"{count} pageviews landed for {n} events: duplicates")
            return (n - first_n) / max(now - first_t, 1e-9) if n > first_n else float("nan")
        # the probe is a dashboard query served by the worker under test: at 5 polls/s it took
        # ~7% of the worker's samples (py-spy); once a second is still a 1-3% resolution
        time.sleep(1.0)
    raise MayakError(f"only {count} of {n} events landed in {timeout:.0f}s")


def worker_landed_eps(settings: Settings, proc: subprocess.Popen, n: int, work: Path) -> float:
    """Events/s at which the worker ``proc`` (serving its dashboards) lands ``n`` events, read
    through the dashboards API with the CLI's token."""
    wait_http_ok({"dashboards": f"{settings.dashboards_url}/healthz"}, {"worker": proc}, logs=work)
    return landed_eps(
        f"{settings.dashboards_url}/api/stats/summary?site={SITE}",
        n,
        proc,
        600,
        ensure_cli_token(settings),
    )


def run(bootstrap: str, work: Path, n: int, results: dict, details: dict) -> None:
    env = worker_env(bootstrap, work, "pipeline")
    settings = settings_for(env)
    ensure_topics(settings)
    # sealed with the key of the master secret raw_records encrypted the IPs with
    records = raw_records(n, work / "pipeline")
    seal = raw_seal.sealer(raw_seal.key_of(settings), collector=True)  # as the collector does
    fill(bootstrap, settings.topic_raw, records, seal)
    baseline = noop_eps(env, settings.topic_raw, n, work)
    proc = spawn_mayak(["worker", "--dashboards"], work / "pipeline-worker.log", env)
    memory = PeakMemory(proc.pid)
    try:
        eps = worker_landed_eps(settings, proc, n, work)
    finally:
        stop_process(proc)
        peak = memory.stop()
    results.update(pipeline_eps=round(eps), pipeline_ratio=round(eps / baseline, 3))
    results["worker_peak_mb"] = max(results.get("worker_peak_mb", 0), peak)
    details.update(
        pipeline_eps=f"{n:,} events, 1 worker, landed in ClickHouse",
        pipeline_ratio=f"no-op Faust agent: {baseline:,.0f} events/s",
        worker_peak_mb="stream worker (Faust + chDB + dashboards)",
    )
