"""collector: beacons/s through the real HTTP server into the real broker, against the limit of
a bare kafka-python send loop of the same messages (same producer settings) in the same run;
then p50/p99 latency at half the measured rate.

Load comes from wrk (throughput) and hey (fixed rate, latency), both C/Go programs from Debian,
so that the generator costs the 2-core machine as little as possible.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import orjson

from bench.harness import PeakMemory
from mayak.errors import MayakError
from mayak.procs import spawn_mayak, stop_process, wait_http_ok

UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
ORIGIN = "https://e-legal.az"


def beacon_body() -> bytes:
    return orjson.dumps(
        {
            "v": 1,
            "id": str(uuid.uuid4()),
            "type": "pageview",
            "site": "demo",
            "ts": int(time.time() * 1000),
            "url": "https://e-legal.az/services/notary",
            "ref": "https://www.google.com/",
            "section": "services",
        }
    )


def _require(tool: str) -> str:
    path = shutil.which(tool)
    if not path:
        raise MayakError(
            f"`{tool}` is needed by the benchmark: apt-get install wrk hey "
            "(or run scripts/setup.sh --test)"
        )
    return path


def bare_send_loop(bootstrap: str, topic: str, seconds: float) -> float:
    """Messages/s of kafka-python alone sending what the collector would send for the beacon
    (the sealed value: the seal itself is the collector's work, not the client's)."""
    from kafka import KafkaProducer

    from contract.raw_seal import key_of, seal
    from contract.schema import ClientEvent
    from mayak.settings import Settings
    from producers.collector.events import EventFactory
    from producers.collector.outbox import producer_config

    settings = Settings(data_dir=Path("/tmp"))  # key material only
    factory = EventFactory(settings)
    ctx = factory.context({"user-agent": UA}, "85.132.10.20", False, False)
    key, value = factory.from_client(ClientEvent.model_validate(orjson.loads(beacon_body())), ctx)
    value = seal(key_of(settings), value)  # as it goes out
    # the collector's own producer settings (acks, idempotence, linger, compression, partitioner)
    producer = KafkaProducer(bootstrap_servers=bootstrap, **producer_config())
    sent, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(500):
            producer.send(topic, key=key, value=value)
        sent += 500
    producer.flush()
    elapsed = time.perf_counter() - start
    producer.close()
    return sent / elapsed


def _wrk(url: str, body: bytes, seconds: float, work: Path) -> tuple[float, int]:
    script = work / "post.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = [[{body.decode()}]]\n"
        'wrk.headers["Content-Type"] = "text/plain"\n'
        f'wrk.headers["User-Agent"] = "{UA}"\n'
        f'wrk.headers["Origin"] = "{ORIGIN}"\n'
    )
    out = subprocess.run(
        [_require("wrk"), "-t2", "-c64", f"-d{seconds:.0f}s", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if found is None:
        raise RuntimeError(f"wrk printed no Requests/sec:\n{out[-2000:]}")
    rps = float(found.group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    if errors:
        raise MayakError(f"wrk saw socket errors: {errors.group(0)}")
    return rps, int(bad.group(1)) if bad else 0


def _hey(url: str, body: bytes, rate: float, seconds: float) -> dict[str, float]:
    workers = 16
    out = subprocess.run(
        [
            _require("hey"),
            "-z",
            f"{seconds:.0f}s",
            "-c",
            str(workers),
            "-q",
            f"{max(1.0, rate / workers):.0f}",
            "-m",
            "POST",
            "-T",
            "text/plain",
            "-H",
            f"Origin: {ORIGIN}",
            "-H",
            f"User-Agent: {UA}",
            "-d",
            body.decode(),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = dict(re.findall(r"(\d+)%+ in ([\d.]+) secs", out))
    codes = re.findall(r"\[(\d+)\]\s+(\d+) responses", out)
    if any(code != "202" for code, _ in codes):
        raise MayakError(f"the collector refused requests during the latency run: {codes}")
    return {"p50_ms": float(found["50"]) * 1000, "p99_ms": float(found["99"]) * 1000}


def run(
    bootstrap: str, work: Path, seconds: float, results: dict, details: dict, workers: int = 1
) -> None:
    env = {
        "MAYAK_KAFKA_BOOTSTRAP": bootstrap,
        "MAYAK_TOPIC_RAW": "bench.collector",
        "MAYAK_DATA_DIR": str(work / "collector"),
        "MAYAK_COLLECTOR_PORT": "18400",
        "MAYAK_COLLECTOR_RATE_PER_S": "1000000000",
        "MAYAK_COLLECTOR_RATE_BURST": "1000000000",
        "MAYAK_COLLECTOR_MAX_PENDING": "200000",
    }
    bare = bare_send_loop(bootstrap, "bench.collector", seconds)
    proc = spawn_mayak(["collector", "--workers", str(workers)], work / "collector.log", env)
    memory = PeakMemory(proc.pid)
    try:
        wait_http_ok(
            {"collector": "http://127.0.0.1:18400/healthz"}, {"collector": proc}, logs=work
        )
        url = "http://127.0.0.1:18400/e"
        _wrk(url, beacon_body(), 2, work)  # warm-up: connections, producer metadata
        rps, refused = _wrk(url, beacon_body(), seconds, work)
        if refused:
            raise MayakError(
                f"the collector refused {refused} requests under load; see {work / 'collector.log'}"
            )
        latency = _hey(url, beacon_body(), rps / 2, seconds)
    finally:
        stop_process(proc)
        peak = memory.stop()
    results.update(
        collector_eps=round(rps),
        collector_ratio=round(rps / bare, 3),
        collector_p99_ms=round(latency["p99_ms"], 2),
        collector_peak_mb=peak,
    )
    details.update(
        collector_eps="wrk, 64 connections, 1 event per request",
        collector_ratio=f"bare kafka-python loop: {bare:,.0f} msg/s",
        collector_p99_ms=f"hey at {rps / 2:,.0f} req/s; p50 {latency['p50_ms']:.2f} ms",
    )
