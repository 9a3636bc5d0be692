"""Broker outages under steady load (issue 16): a broker of this module's own is stopped for
10 s, 60 s and 5 min while ~100 events/s arrive. While it is away the collector answers 503
at once (a trial request every 0.5 s waits up to 2 s), never after the 30 s ack timeout;
``/readyz`` says why while ``/healthz`` stays ok; within 5 s of the broker's return events are
acknowledged again; and every event answered 2xx is on ``mayak.raw`` exactly once.

The 5-minute case is marked ``long_outage``: ``pytest -m long_outage`` runs it alone."""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import orjson
import pytest

from mayak.kafka_local import LocalBroker, free_port
from mayak.procs import settings_for, spawn_mayak, stop_process, wait_http_ok
from mayak.settings import Settings
from stream_jobs.topics import ensure_topics
from tests.brokers import private_broker
from tests.producers.test_kafka_delivery import _read_all

pytestmark = pytest.mark.kafka
RATE = 50  # requests per second, two events each: 100 events/s
RECOVERY_S = 5.0


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    """A broker only this module uses, so stopping it disturbs no other test."""
    with private_broker(
        tmp_path_factory.mktemp("outage-kafka"), heap_mb=384, timeout=180
    ) as broker:
        yield broker


class Collector:
    """``mayak collector`` as a child process (its own GIL, as in production)."""

    def __init__(self, settings: Settings, env: dict[str, str], home) -> None:
        self.env, self.home, self.url = env, home, settings.collector_url

    def __enter__(self) -> Collector:
        self.proc = spawn_mayak(["collector"], self.home / "collector.log", self.env)
        wait_http_ok(
            {"collector": f"{self.url}/healthz"},
            {"collector": self.proc},
            timeout=60,
            logs=self.home,
        )
        return self

    def __exit__(self, *exc: object) -> None:
        stop_process(self.proc, timeout=60)


@dataclass
class Load:
    """An open-loop load: a request every 1/RATE s whatever the answers take (as browsers),
    over a pool of kept-alive connections, written by hand so that the load generator costs
    little CPU on the shared test box. Every second it asks ``/readyz`` and ``/healthz``."""

    port: int
    answers: list[tuple[float, float, int, list[str]]] = field(default_factory=list)
    probes: list[tuple[float, int, dict]] = field(default_factory=list)  # /readyz, /healthz
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        asyncio.run(self._run())

    async def _run(self) -> None:
        idle: asyncio.Queue = asyncio.Queue()
        for _ in range(60):
            idle.put_nowait(None)  # a connection slot, opened on first use
        tasks = set()
        start = time.monotonic()
        i = 0
        while not self.stop.is_set():
            i += 1
            for job in [self._one] + ([self._ready] if i % RATE == 0 else []):
                task = asyncio.create_task(job(idle))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            await asyncio.sleep(max(0.0, start + i / RATE - time.monotonic()))
        await asyncio.gather(*tasks)

    async def _request(
        self, idle: asyncio.Queue, method: str, path: str, body: bytes = b""
    ) -> tuple[int, bytes]:
        conn = await idle.get()
        try:
            if conn is None:
                conn = await asyncio.open_connection("127.0.0.1", self.port)
            reader, writer = conn
            writer.write(
                b"%s %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (method.encode(), path.encode(), len(body), body)
            )
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 60)
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            answer = await reader.readexactly(length)
            idle.put_nowait(conn)
            return int(head.split(b" ", 2)[1]), answer
        except (TimeoutError, OSError, asyncio.IncompleteReadError, IndexError):
            idle.put_nowait(None)  # the slot opens a new connection next time
            return 0, b""

    async def _one(self, idle: asyncio.Queue) -> None:
        ids = [str(uuid.uuid4()) for _ in range(2)]
        now = int(time.time() * 1000)
        body = orjson.dumps(
            [
                {
                    "id": i,
                    "type": "pageview",
                    "site": "elegal",
                    "ts": now,
                    "url": "https://e-legal.az/x",
                }
                for i in ids
            ]
        )
        t0 = time.monotonic()
        code, _ = await self._request(idle, "POST", "/e", body)
        self.answers.append((t0, time.monotonic(), code, ids))

    async def _ready(self, idle: asyncio.Queue) -> None:
        t0 = time.monotonic()
        code, ready = await self._request(idle, "GET", "/readyz")
        _, alive = await self._request(idle, "GET", "/healthz")
        self.probes.append((t0, code, orjson.loads(ready) | {"healthz": alive.decode()}))


def _outage(tmp_path, broker: LocalBroker, outage_s: float) -> None:
    tag = uuid.uuid4().hex[:8]
    env = {
        "MAYAK_DATA_DIR": str(tmp_path),
        "MAYAK_KAFKA_BOOTSTRAP": broker.bootstrap,
        "MAYAK_TOPIC_RAW": f"o{tag}.raw",
        "MAYAK_TOPIC_EVENTS": f"o{tag}.events",
        "MAYAK_TOPIC_FAILED": f"o{tag}.failed",
        "MAYAK_COLLECTOR_PORT": str(free_port()),
        "MAYAK_COLLECTOR_RATE_PER_S": "1000000",
        "MAYAK_COLLECTOR_RATE_BURST": "1000000",
    }
    settings = settings_for(env)
    ensure_topics(settings)
    load = Load(settings.collector_port)
    runner = threading.Thread(target=load.run, daemon=True)
    with Collector(settings, env, tmp_path):
        idle = httpx.get(f"{settings.collector_url}/readyz")  # no traffic yet: asks the broker
        assert idle.status_code == 200 and idle.json() == {"ready": True, "kafka": "ok"}
        runner.start()
        time.sleep(3)
        broker.stop()
        gone = time.monotonic()
        time.sleep(outage_s)
        restarting = time.monotonic()
        broker.start(timeout=180)
        back = time.monotonic()
        time.sleep(RECOVERY_S + 2)
        load.stop.set()
        runner.join(120)
    assert not runner.is_alive()

    answers = load.answers
    codes = Counter(code for *_, code, _ in answers)
    assert set(codes) <= {202, 503}, codes  # no connection errors, no 5xx but 503
    before = [a for a in answers if a[1] < gone - 0.5]
    assert before and all(code == 202 for _, _, code, _ in before), codes

    # while the broker is away: 503 at once, never after the 30 s ack timeout
    settled = gone + settings.collector_stall_s + 1.0
    during = [t1 - t0 for t0, t1, code, _ in answers if settled < t0 < restarting - 3.0]
    assert len(during) > RATE * (restarting - 3.0 - settled) * 0.5
    assert max(t1 - t0 for t0, t1, *_ in answers) < settings.collector_stall_s + 4.0
    assert statistics.median(during) < 0.1 and max(during) < 5.0, sorted(during)[-10:]
    down = [(code, body) for t0, code, body in load.probes if settled < t0 < restarting]
    assert down and all(
        code == 503
        and body["ready"] is False
        and "Kafka" in body["kafka"]
        and body["healthz"] == "ok"
        for code, body in down
    ), down[:3]

    # back: acknowledged again within RECOVERY_S of the broker's return, and ready
    first_ok = min(t1 for t0, t1, code, _ in answers if code == 202 and t1 > gone)
    assert first_ok - back < RECOVERY_S, (first_ok - back, back - restarting)
    late = Counter(code for t0, _, code, _ in answers if t0 > back + RECOVERY_S)
    assert late and set(late) == {202}, late
    assert load.probes[-1][1] == 200 and load.probes[-1][2]["ready"] is True

    # no acknowledged event lost or doubled
    acked = [i for *_, code, ids in answers if code == 202 for i in ids]
    got = _read_all(settings, len(acked), quiet_s=2)
    counts = Counter(e["id"] for e in got)
    missing = [i for i in acked if counts[i] == 0]
    doubled = [i for i in acked if counts[i] > 1]
    assert not missing and not doubled, (len(missing), len(doubled), len(acked), codes)
    p95 = statistics.quantiles(during, n=20)[18]
    print(
        f"outage {outage_s:.0f} s: {codes}, 503 in {statistics.median(during) * 1000:.0f} ms"
        f" (median), {p95 * 1000:.0f} ms (p95), {max(during):.2f} s (max), "
        f"first 2xx {first_ok - back:.2f} s after the broker's"
        f" return ({back - restarting:.1f} s to start it), {len(acked)} acked events found"
        f" once each among {len(got)} on the topic"
    )


def test_ten_second_outage(tmp_path, broker) -> None:
    _outage(tmp_path, broker, 10)


def test_sixty_second_outage(tmp_path, broker) -> None:
    _outage(tmp_path, broker, 60)


@pytest.mark.long_outage
def test_five_minute_outage(tmp_path, broker) -> None:
    _outage(tmp_path, broker, 300)
