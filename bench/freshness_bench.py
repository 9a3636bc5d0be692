"""freshness: time from the collector's 2xx to the event being counted by a dashboard query,
p50 and p95, at a steady 1,000 events/s through the real collector, broker and worker."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from pathlib import Path

import aiohttp
import httpx
import orjson

from bench.harness import PeakMemory, percentile
from bench.pipeline_bench import worker_env
from bench.traffic import SITE, client_event
from dashboards.auth import cli_token_path
from mayak.errors import MayakError
from mayak.procs import settings_for, spawn_mayak, stop_process, wait_http_ok
from stream_jobs.topics import ensure_topics

UA = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"


async def send_steady(url: str, rate: int, seconds: float) -> list[float]:
    """POST one event per request at ``rate``/s; return the 2xx times (perf_counter) in order."""
    acked: list[float] = []
    rng = random.Random(5)
    headers = {"Content-Type": "text/plain", "User-Agent": UA, "Origin": "https://e-legal.az"}
    interval = 1.0 / rate
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as session:

        async def one() -> None:
            body = orjson.dumps(client_event(rng, int(time.time() * 1000)))
            async with session.post(url, data=body, headers=headers) as response:
                if response.status >= 300:
                    raise MayakError(f"collector answered {response.status}")
                acked.append(time.perf_counter())

        tasks = []
        start = time.perf_counter()
        for i in range(int(rate * seconds)):
            delay = start + i * interval - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one()))
        await asyncio.gather(*tasks)
    return sorted(acked)


def poll_counts(
    url: str, stop: threading.Event, seen: list[tuple[float, int]], headers: dict | None = None
) -> None:
    with httpx.Client(timeout=5, headers=headers) as client:
        while not stop.is_set():
            count = int(client.get(url).json().get("pageviews", 0))
            seen.append((time.perf_counter(), count))
            stop.wait(0.05)


def visible_delays(acked: list[float], seen: list[tuple[float, int]]) -> list[float]:
    """For the k-th acknowledged event: first poll time with count >= k, minus its 2xx time."""
    delays, j = [], 0
    for k, t_ack in enumerate(acked, start=1):
        while j < len(seen) and seen[j][1] < k:
            j += 1
        if j == len(seen):
            raise MayakError(
                f"only {seen[-1][1] if seen else 0} of {len(acked)} events became visible"
            )
        delays.append(max(0.0, seen[j][0] - t_ack))
    return delays


def run(
    bootstrap: str, work: Path, seconds: float, results: dict, details: dict, rate: int = 1000
) -> None:
    env = worker_env(bootstrap, work, "freshness")
    settings = settings_for(env)
    ensure_topics(settings)
    worker = spawn_mayak(["worker", "--dashboards"], work / "freshness-worker.log", env)
    collector = spawn_mayak(["collector"], work / "freshness-collector.log", env)
    memory = PeakMemory(worker.pid)
    stop, seen = threading.Event(), list[tuple[float, int]]()
    try:
        wait_http_ok(
            {
                "dashboards": f"{settings.dashboards_url}/healthz",
                "collector": f"{settings.collector_url}/healthz",
            },
            {"worker": worker, "collector": collector},
            logs=work,
        )
        time.sleep(3)  # let the consumer group settle before the clock starts
        poller = threading.Thread(
            target=poll_counts,
            daemon=True,
            args=(
                f"{settings.dashboards_url}/api/stats/summary?site={SITE}",
                stop,
                seen,
                {"Authorization": f"Bearer {cli_token_path(settings).read_text().strip()}"},
            ),
        )
        poller.start()
        acked = asyncio.run(send_steady(f"{settings.collector_url}/e", rate, seconds))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not seen or seen[-1][1] < len(acked)):
            time.sleep(0.1)
        stop.set()
        poller.join()
        delays = visible_delays(acked, seen)
    finally:
        stop.set()
        stop_process(collector)
        stop_process(worker)
        peak = memory.stop()
    p50, p95 = percentile(delays, 50) * 1000, percentile(delays, 95) * 1000
    results["freshness_p95_ms"] = round(p95)
    results["worker_peak_mb"] = max(results.get("worker_peak_mb", 0), peak)
    details["freshness_p95_ms"] = f"{len(acked):,} events at {rate}/s; p50 {p50:.0f} ms"
