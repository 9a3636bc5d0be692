"""`mayak up` SIGKILLed while beacons arrive (the supervisor alone, then its whole process
group) and started again: every beacon the collector accepted lands once, the rollups equal
a recount, and nothing of the killed runs is left running."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import psutil
import pytest

from mayak.procs import mayak_sql
from tests.stream_jobs.test_sj_exactly_once import _lag
from tests.test_stack_up import _descendants, _env, _java_of

pytestmark = [pytest.mark.faults, pytest.mark.kafka, pytest.mark.clickhouse]

UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


def _up(env: dict[str, str], log: Path) -> subprocess.Popen:
    # its own session: the test can SIGKILL its whole process group, as a terminal would
    return subprocess.Popen(
        [sys.executable, "-m", "mayak", "up"],
        env=env,
        stdout=open(log, "ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _wait_up(env: dict[str, str], proc: subprocess.Popen, log: Path) -> None:
    urls = [
        f"http://127.0.0.1:{env['MAYAK_COLLECTOR_PORT']}/healthz",
        f"http://127.0.0.1:{env['MAYAK_DASHBOARDS_PORT']}/healthz",
    ]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-3000:]
        try:
            if all(httpx.get(u, timeout=1).status_code == 200 for u in urls):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"mayak up did not come up:\n{log.read_text()[-3000:]}")


class Beacons:
    """Batches of 25 pageviews POSTed to the collector; remembers what it accepted."""

    def __init__(self, port: str) -> None:
        self.url = f"http://127.0.0.1:{port}/e"
        self.accepted: set[str] = set()
        self.sent: set[str] = set()
        self.refused = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        n = 0
        with httpx.Client(timeout=5) as client:
            while not self.stop.is_set():
                now = int(time.time() * 1000)
                batch = [
                    {
                        "id": str(uuid.uuid4()),
                        "type": "pageview",
                        "site": "elegal",
                        "ts": now,
                        "url": f"https://e-legal.az/p{(n + i) % 40}",
                    }
                    for i in range(25)
                ]
                n += 25
                self.sent.update(e["id"] for e in batch)
                try:
                    r = client.post(
                        self.url,
                        content=orjson.dumps(batch),
                        headers={
                            "Content-Type": "text/plain",
                            "User-Agent": UA,
                            "Origin": "https://e-legal.az",
                            "X-Forwarded-For": f"85.132.1.{n % 250}",
                        },
                    )
                    if r.status_code == 202:
                        self.accepted.update(e["id"] for e in batch)
                    else:
                        self.refused += 1
                except httpx.HTTPError:
                    self.refused += 1
                time.sleep(0.05)


def _beacon_env(data_dir: Path) -> dict[str, str]:
    """``mayak up``'s settings for these tests: beacons from 127.0.0.1 as a trusted proxy, no
    rate limit in the way, sessions that close quickly."""
    return {
        **_env(data_dir),
        "MAYAK_COLLECTOR_RATE_PER_S": "10000",
        "MAYAK_COLLECTOR_RATE_BURST": "10000",
        "MAYAK_COLLECTOR_TRUSTED_PROXIES": '["127.0.0.1"]',
        "MAYAK_WORKER_SESSION_TIMEOUT_S": "6",
    }


def _gone(procs: list[psutil.Process], timeout: float) -> list[str]:
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    return [" ".join(p.cmdline()[:4]) for p in alive if p.status() != psutil.STATUS_ZOMBIE]


def test_mayak_up_sigkilled_twice_and_restarted_loses_nothing_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    env = _beacon_env(data_dir)
    log = tmp_path / "up.log"
    beacons = Beacons(env["MAYAK_COLLECTOR_PORT"])
    seen: list[psutil.Process] = []

    up = _up(env, log)
    _wait_up(env, up, log)
    beacons.thread.start()
    for how in ("supervisor", "process group"):
        time.sleep(6)  # beacons in every stage: collector, raw, worker, ClickHouse
        children = _descendants(up)
        seen += children + _java_of(data_dir)
        if how == "supervisor":
            up.send_signal(signal.SIGKILL)
            # its worker and collector stop by themselves (PR_SET_PDEATHSIG)
            left = _gone([c for c in children if "kafka.Kafka" not in " ".join(c.cmdline())], 45)
            assert left == [], f"children of the killed supervisor still run: {left}"
        else:
            os.killpg(up.pid, signal.SIGKILL)  # supervisor, worker and collector at once
        up.wait()
        assert _java_of(data_dir), "the broker runs on (its own session) for the next run"
        up = _up(env, log)  # takes the broker over
        _wait_up(env, up, log)
    time.sleep(4)
    beacons.stop.set()
    beacons.thread.join()
    seen += _descendants(up) + _java_of(data_dir)

    topics = ["mayak.raw", "mayak.events", "mayak.failed"]
    deadline = time.monotonic() + 120
    while True:  # every accepted beacon through the pipeline
        committed, end = _lag(env["MAYAK_KAFKA_BOOTSTRAP"], env["MAYAK_WORKER_ID"], topics)
        if committed == end and end > 0:
            break
        assert time.monotonic() < deadline, (committed, end)
        time.sleep(0.5)
    up.send_signal(signal.SIGINT)
    assert up.wait(90) == 0, log.read_text()[-3000:]
    left = _gone(seen, 10)
    assert left == [], f"left running: {left}"
    assert _java_of(data_dir) == []
    assert not (data_dir / "up.json").exists()

    ids = [r["id"] for r in mayak_sql("SELECT toString(event_id) AS id FROM events", env)]
    print(
        f"beacons sent {len(beacons.sent)}, accepted {len(beacons.accepted)}, refused "
        f"requests {beacons.refused}, landed {len(ids)}"
    )
    assert len(beacons.accepted) > 1000 and beacons.refused > 0  # traffic across both kills
    assert len(ids) == len(set(ids))
    assert beacons.accepted <= set(ids) <= beacons.sent
    out = subprocess.run(
        [sys.executable, "-m", "tests.rollup_recount"],
        capture_output=True,
        env=env,
        timeout=180,
        cwd=Path(__file__).parent.parent,
    )
    differences = orjson.loads(out.stdout.splitlines()[-1])
    assert differences and differences == dict.fromkeys(differences, 0)


def _running(up: subprocess.Popen, command: str = "worker") -> list[psutil.Process]:
    """The running ``mayak COMMAND`` processes of ``up`` (a killed one is a zombie until
    reaped)."""
    found = []
    for proc in _descendants(up):
        try:
            if proc.status() != psutil.STATUS_ZOMBIE and f" {command}" in " ".join(proc.cmdline()):
                found.append(proc)
        except psutil.Error:
            continue
    return found


@dataclass(frozen=True)
class Kill:
    """One part of the stack to SIGKILL under ``mayak up``: how to find its running process,
    what ``mayak up``'s log says when it starts it again, and a check of the running stack
    (data dir, the new process's pid) once the collector accepts beacons again."""

    name: str
    find: Callable[[subprocess.Popen, Path], psutil.Process | None]
    said: str
    while_up: Callable[[Path, int], None] = lambda data_dir, pid: None


def _kill_in_turn(tmp_path: Path, kills: list[Kill]) -> tuple[Beacons, dict[str, int], str]:
    """Run ``mayak up`` with beacons flowing and SIGKILL each part of ``kills`` in turn
    (mid-stream: between batches, inserts, commits); after each, wait until ``mayak up`` runs a
    new one and the collector accepted 1,000 more beacons. Then stop the beacons, wait until the
    worker committed everything and stop the stack: it exits cleanly, its log says each
    ``said``, and every beacon accepted landed once. Returns the beacons, the requests refused
    around each kill, and the log. One stack for every kill: each start-up and drain costs the
    suite most of a minute, and a part killed after another shows the restarts do not
    interfere."""
    data_dir = tmp_path / "data"
    env = _beacon_env(data_dir)
    log = tmp_path / "up.log"
    beacons = Beacons(env["MAYAK_COLLECTOR_PORT"])
    refused: dict[str, int] = {}
    up = _up(env, log)
    try:
        _wait_up(env, up, log)
        beacons.thread.start()
        for kill in kills:
            time.sleep(5)  # beacons in every stage: collector, raw, worker, ClickHouse
            killed = kill.find(up, data_dir)
            assert killed is not None, kill.name
            before, refused_before = len(beacons.accepted), beacons.refused
            killed.send_signal(signal.SIGKILL)
            deadline = time.monotonic() + 120
            while (again := kill.find(up, data_dir)) is None or again.pid == killed.pid:
                assert up.poll() is None, log.read_text()[-3000:]  # the stack stays up
                assert time.monotonic() < deadline, (kill.name, log.read_text()[-3000:])
                time.sleep(0.2)
            deadline = time.monotonic() + 120
            while len(beacons.accepted) < before + 1000:  # accepted again: the stack serves
                assert up.poll() is None, log.read_text()[-3000:]
                assert time.monotonic() < deadline, (kill.name, before, len(beacons.accepted))
                time.sleep(0.5)
            refused[kill.name] = beacons.refused - refused_before
            kill.while_up(data_dir, again.pid)
        beacons.stop.set()
        beacons.thread.join()
        topics = ["mayak.raw", "mayak.events", "mayak.failed"]
        deadline = time.monotonic() + 180
        while True:
            committed, end = _lag(env["MAYAK_KAFKA_BOOTSTRAP"], env["MAYAK_WORKER_ID"], topics)
            if committed == end and end > 0:
                break
            assert time.monotonic() < deadline, (committed, end, log.read_text()[-3000:])
            time.sleep(0.5)
    finally:
        beacons.stop.set()
        up.send_signal(signal.SIGINT)
        code = up.wait(90)
    text = log.read_text()
    assert code == 0, text[-3000:]
    for kill in kills:
        assert kill.said in text, (kill.name, text[-3000:])
    ids = [r["id"] for r in mayak_sql("SELECT toString(event_id) AS id FROM events", env)]
    print(
        f"accepted {len(beacons.accepted)}, refused {beacons.refused} {refused}, landed {len(ids)}"
    )
    assert len(ids) == len(set(ids)), "an event landed twice"
    assert beacons.accepted <= set(ids) <= beacons.sent
    return beacons, refused, text


def _child(command: str) -> Callable[[subprocess.Popen, Path], psutil.Process | None]:
    return lambda up, data_dir: next(iter(_running(up, command)), None)


def _broker(up: subprocess.Popen, data_dir: Path) -> psutil.Process | None:
    """The running (not zombie) broker JVM of ``data_dir``."""
    for proc in _java_of(data_dir):
        try:
            if proc.status() != psutil.STATUS_ZOMBIE:
                return proc
        except psutil.Error:
            continue
    return None


def _recorded(data_dir: Path, pid: int) -> None:
    """The new worker is the one ``up.json`` names (a killed ``mayak up`` would stop it)."""
    state = orjson.loads((data_dir / "up.json").read_bytes())
    assert state["children"]["worker"]["pid"] == pid


def test_the_worker_broker_and_collector_killed_in_turn_under_mayak_up_are_started_again(
    tmp_path: Path,
) -> None:
    """The worker dies between batches, inserts and commits; then the broker's JVM (no clean
    shutdown: the collector refuses while it is gone, ``mayak up`` starts it again on the same
    data); then the collector mid-request (requests in flight get no answer, which a browser's
    beacon retries). Each is started again, and every beacon answered 202 before, between and
    after the kills lands once."""
    kills = [
        Kill(
            "worker",
            _child("worker"),
            "the worker exited with code -9; started it again (restart 1 of at most 5",
            _recorded,
        ),
        Kill(
            "broker", _broker, "the Kafka broker stopped; started it again (restart 1 of at most 5"
        ),
        Kill(
            "collector",
            _child("collector"),
            "the collector exited with code -9; started it again (restart 1 of at most 5",
        ),
    ]
    beacons, refused, log = _kill_in_turn(tmp_path, kills)
    assert len(beacons.accepted) > 3500
    assert refused["broker"] > 0  # the outage was seen by the collector's clients
    assert refused["collector"] > 0  # so was the kill
    # each worker run gave its start-up pages back (warehouse/engine_pages.py); the line is
    # flushed, so the first worker's survives its SIGKILL. How many MB depends on what other
    # processes of the test run map the same chDB library at that moment (the kernel keeps a
    # page another process maps), down to 0: tests/warehouse/test_engine_pages.py measures
    # the release itself, on a copy of the library no other process maps
    given = re.findall(
        r"gave back (\d+) MB of start-up pages", (tmp_path / "data" / "worker.log").read_text()
    )
    assert len(given) == 2, (given, log[-3000:])
