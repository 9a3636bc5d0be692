"""Fault tests: the real broker, real Faust workers and real chDB, broken on purpose.

* the worker SIGKILLed 20 times while traffic flows (kills land anywhere: start-up, the
  repair, mid-insert, between an insert and its commit);
* the sink's inserts failing for 60 s;
* poison messages on ``mayak.raw``;
* ``mayak up`` SIGKILLed (alone, and with its whole process group) and started again.

After each: every event the broker acknowledged is in ``events`` exactly once, every rollup
equals a recount from its source (``tests/rollup_recount.py``), and nothing is left running.
``pytest -m faults`` runs these alone (about 8-10 minutes on 2 cores).
"""

from __future__ import annotations

import base64
import os
import random
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
import uuid

import orjson
import pytest

from contract import raw_seal
from contract.crypto import encrypt_ip, ip_cipher_key, partition_key, partition_secret
from tests.stream_jobs.lost_events import explain_lost
from tests.stream_jobs.test_sj_exactly_once import _lag, _produce

pytestmark = [pytest.mark.faults, pytest.mark.kafka, pytest.mark.clickhouse]

UAS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
]
BOT_UA = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
PATHS = ["/", "/services/notary", "/lawyers", "/faq", "/cases/new", "/pricing"]


class Traffic:
    """Raw events as the collector makes them (encrypted IP, keyed partition), and what the
    tests expect of them."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.master = secrets.token_bytes(32)
        self.key, self.secret = ip_cipher_key(self.master), partition_secret(self.master)
        self.ips = [
            f"85.132.{self.rng.randrange(256)}.{self.rng.randrange(1, 255)}" for _ in range(400)
        ]
        self.ids: set[str] = set()  # events that must land
        self.bots = 0

    @property
    def env(self) -> dict[str, str]:
        return {"MAYAK_IP_KEY": base64.b64encode(self.master).decode()}

    def _message(self, event: dict, ua: str) -> tuple[bytes, bytes]:
        ip = self.rng.choice(self.ips)
        event.update(ua=ua, ip_enc=encrypt_ip(self.key, ip))
        return partition_key(self.secret, event["site"], ip, ua), orjson.dumps(event)

    def batch(self, n: int, duplicates: int = 0, bots: int = 0) -> list[tuple[bytes, bytes]]:
        now = int(time.time() * 1000)
        out = []
        for _ in range(n):
            event = {
                "v": 1,
                "id": str(uuid.uuid4()),
                "site": "elegal",
                "type": self.rng.choice(["pageview"] * 8 + ["service_request"]),
                "ts": now - self.rng.randrange(3 * 3_600_000),  # a few hours: several
                "url": f"https://e-legal.az{self.rng.choice(PATHS)}"
                f"?utm_source={self.rng.choice(['mail', 'ads', ''])}",
                "engaged_ms": self.rng.randrange(30_000),
            }
            if event["type"] == "service_request":
                event["service_type"] = self.rng.choice(["notary", "court"])
            self.ids.add(event["id"])
            out.append(self._message(event, self.rng.choice(UAS)))
        out += self.rng.sample(out, duplicates)  # made twice upstream (a retried beacon)
        for _ in range(bots):
            out.append(
                self._message(
                    {
                        "v": 1,
                        "id": str(uuid.uuid4()),
                        "type": "pageview",
                        "site": "elegal",
                        "ts": now,
                        "url": "https://e-legal.az/",
                    },
                    BOT_UA,
                )
            )
        self.bots += bots
        self.rng.shuffle(out)
        return out


def _start_worker(stack) -> None:
    stack.start("worker", "worker", "--no-dashboards")


def _committed(stack, topic: str) -> int:
    return _lag(stack.settings.kafka_bootstrap, stack.settings.worker_id, [topic])[0]


def _wait_drained(stack, produced: int, timeout: float) -> float:
    """Wait until the worker committed every message of the three topics; seconds taken."""
    s = stack.settings
    topics = [s.topic_raw, s.topic_events, s.topic_failed]
    started = deadline = time.monotonic()
    deadline += timeout
    while time.monotonic() < deadline:
        committed, end = _lag(s.kafka_bootstrap, s.worker_id, topics)
        if end >= produced and committed == end:
            return time.monotonic() - started
        if stack.procs["worker"].poll() is not None:
            raise AssertionError(f"worker died:\n{stack.log('worker')[-3000:]}")
        time.sleep(0.5)
    lags = {t: _lag(s.kafka_bootstrap, s.worker_id, [t]) for t in topics}
    raise AssertionError(
        f"not drained in {timeout:.0f}s: (committed, end) {lags}\n{stack.log('worker')[-4000:]}"
    )


def _rollup_differences(env: dict[str, str]) -> dict[str, int]:
    out = subprocess.run(
        [sys.executable, "-m", "tests.rollup_recount"],
        capture_output=True,
        env={**os.environ, **env},
        timeout=180,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
    )
    assert out.returncode == 0, out.stderr.decode()[-3000:]
    return orjson.loads(out.stdout.splitlines()[-1])


def _assert_landed_exactly_once(stack, traffic: Traffic) -> None:
    rows = stack.sql("SELECT toString(event_id) AS id FROM events")
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)), f"{len(ids) - len(set(ids))} duplicate(s)"
    lost = traffic.ids - set(ids)
    s = stack.settings
    why = (
        explain_lost(
            s.kafka_bootstrap,
            s.worker_id,
            (s.topic_raw, s.topic_events, s.topic_failed),
            lost,
            stack.log("worker"),
            stack.home / "lost.txt",
        )
        if lost
        else ""
    )
    assert set(ids) == traffic.ids, (
        f"lost {len(lost)}, unexpected {len(set(ids) - traffic.ids)}\n{why}"
    )
    bots = stack.sql(
        "SELECT count() AS n, uniqExact(event_id) AS ids FROM failed_events WHERE reason = 'bot'"
    )[0]
    assert bots == {"n": traffic.bots, "ids": traffic.bots}
    differences = _rollup_differences(stack.env)
    assert set(differences) >= {
        "sessions",
        "agg_site_hourly",
        "agg_dim_hourly",
        "agg_dim_daily",
        "bot_hits",
    }
    assert differences == dict.fromkeys(differences, 0)


def _inserting(data_dir) -> bool:
    """ClickHouse is writing an insert's parts (they are renamed into place when committed)."""
    return any(True for _ in data_dir.glob("clickhouse/store/*/*/tmp_insert_*"))


def test_twenty_sigkills_lose_nothing_count_nothing_twice_and_keep_rollups_equal(stack) -> None:
    traffic = Traffic(seed=16)
    stack.env.update(
        traffic.env,
        MAYAK_SINK_FLUSH_SECONDS="0.3",
        MAYAK_SINK_BATCH_SIZE="1000",
        MAYAK_WORKER_SESSION_TIMEOUT_S="6",
    )  # the broker's minimum: fast takeover
    s = stack.settings
    rng = random.Random(20)
    # 20,000 events (+300 duplicates, 200 bots) in 40 slices over the run
    slices = [traffic.batch(500, duplicates=8, bots=5) for _ in range(40)]
    produced = sum(len(m) for m in slices)
    stop = threading.Event()

    def trickle() -> None:  # every 6 s; once told to stop, the rest at once (the last
        for messages in slices[:-2]:  # two slices always after the last kill)
            _produce(s.kafka_bootstrap, s.topic_raw, messages)
            stop.wait(6.0)
        stop.wait()
        for messages in slices[-2:]:
            _produce(s.kafka_bootstrap, s.topic_raw, messages)

    feeder = threading.Thread(target=trickle, daemon=True)
    feeder.start()
    kills, targeted, started = 0, 0, time.monotonic()
    while kills < 20:
        _start_worker(stack)
        before = _committed(stack, s.topic_events)
        # up and landing (or 20 s: then the kill finds it starting up or repairing)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and _committed(stack, s.topic_events) <= before:
            assert stack.procs["worker"].poll() is None, stack.log("worker")[-3000:]
            time.sleep(0.3)
        if kills % 2:  # a random point: mid-insert, between an insert and its commit, ...
            time.sleep(rng.uniform(0.0, 2.5))
        else:  # while ClickHouse writes an insert's parts, the first ones may be committed
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not _inserting(s.data_dir):
                time.sleep(0.005)
            targeted += time.monotonic() < deadline
            time.sleep(rng.uniform(0.0, 0.05))
        stack.stop("worker", sig=signal.SIGKILL)
        kills += 1
    stop.set()  # what is left goes at once
    feeder.join()
    killing = time.monotonic() - started
    _start_worker(stack)
    drained = _wait_drained(stack, produced, 240)
    stack.stop("worker")
    log = stack.log("worker")
    print(
        f"{kills} SIGKILLs ({targeted} while parts were being written) in {killing:.0f}s, "
        f"{produced} messages, drained {drained:.0f}s after the last restart; inserts "
        f"interrupted: {log.count('was interrupted')}, rollup rewrites: "
        f"{log.count('differed from a recount')}, redelivered ranges skipped: "
        f"{log.count('redelivered offset')}, duplicate drops: {log.count('duplicate(s)')}"
    )
    _assert_landed_exactly_once(stack, traffic)


def test_poison_messages_become_typed_dead_letters_and_the_rest_flows(stack) -> None:
    traffic = Traffic(seed=3)
    stack.env.update(traffic.env)
    s = stack.settings
    good = traffic.batch(300)
    ts = int(time.time() * 1000)
    crashing = {
        "v": 1,
        "id": str(uuid.uuid4()),
        "type": "pageview",
        "site": "elegal",
        "ts": ts,
        "url": "https://e-legal.az/",
        "ua": UAS[0],
        "ip_enc": "AAAA" * 11,
    }  # garbage
    poison = [
        (b"k1", b"\xff\xfe\x00 not json at all"),
        (b"k2", b'{"v": 1, "id": '),
        (b"k3", b"[1, 2, 3]"),
        (b"k4", orjson.dumps(crashing)),
        (b"k5", b""),
        # sealed by a producer holding another master secret, and a bomb sealed with the right one
        (b"k6", raw_seal.seal(secrets.token_bytes(32), orjson.dumps(crashing))),
        (b"k7", raw_seal.seal(raw_seal.raw_seal_key(traffic.master), bytes(64 * 2**20))),
    ]
    _produce(s.kafka_bootstrap, s.topic_raw, good[:150] + poison + good[150:])
    _start_worker(stack)
    _wait_drained(stack, len(good) + len(poison), 120)
    # a corrupt message on the internal topics (a buggy producer, a bad disk): skipped, named
    _produce(s.kafka_bootstrap, s.topic_events, [(b"x", b"\x00garbage")])
    _produce(s.kafka_bootstrap, s.topic_failed, [(b"x", b'{"reason": ')])
    more = traffic.batch(100)  # the pipeline goes on after the poison
    _produce(s.kafka_bootstrap, s.topic_raw, more)
    _wait_drained(stack, len(good) + len(poison) + len(more), 120)
    stack.stop("worker")

    failed = stack.sql("SELECT reason, step, detail FROM failed_events")
    undecodable = sorted(
        re.sub(r"/\d+/\d+:", "/P/O:", f["detail"])
        for f in failed
        if f["reason"] == "undecodable" and f["step"] == "sink"
    )
    assert undecodable == sorted(
        [
            f"{s.topic_events}/P/O: zlib.error",  # not JSON: zlib?
            f"{s.topic_failed}/P/O: orjson.JSONDecodeError",
        ]
    ), failed
    assert sorted(
        (f["reason"], f["step"], f["detail"]) for f in failed if f["reason"] != "undecodable"
    ) == sorted(
        [("enrichment", "validate", "ip_enc:undecryptable")]  # the IP decryption raised
        + [("schema", "validate", "not_an_object")] * 3  # the frame [1, 2, 3]: three events
        + [("schema", "validate", "not_json")] * 3
        + [
            ("enrichment", "unseal", "raw_seal:sealed under another key, or altered"),
            (
                "enrichment",
                "unseal",
                f"raw_seal:opens to more than {raw_seal.MAX_OPENED} bytes, or is cut short",
            ),
        ]
    )
    _assert_landed_exactly_once(stack, traffic)


def test_a_sink_failing_for_60_s_commits_nothing_meanwhile_and_lands_everything_after(
    stack,
) -> None:
    traffic = Traffic(seed=60)
    # inserts fail from 10 s after the worker opened ClickHouse, for 60 s (stream_jobs/faults.py)
    stack.env.update(traffic.env, MAYAK_TEST_SINK_OUTAGE="10:60")
    s = stack.settings
    topics = [s.topic_raw, s.topic_events, s.topic_failed]
    slices = [traffic.batch(400, duplicates=5, bots=3) for _ in range(20)]
    produced = sum(len(m) for m in slices)

    def trickle() -> None:  # traffic before, during and after the outage
        for messages in slices:
            _produce(s.kafka_bootstrap, s.topic_raw, messages)
            time.sleep(3.0)

    feeder = threading.Thread(target=trickle, daemon=True)
    feeder.start()
    _start_worker(stack)
    deadline = time.monotonic() + 90
    while "SinkOutage" not in stack.log("worker"):
        assert time.monotonic() < deadline, stack.log("worker")[-3000:]
        assert stack.procs["worker"].poll() is None, stack.log("worker")[-3000:]
        time.sleep(0.2)
    began = time.monotonic()
    time.sleep(3)  # a commit under way when the outage began has ended
    frozen = _lag(s.kafka_bootstrap, s.worker_id, topics)
    time.sleep(began + 52 - time.monotonic())
    assert stack.procs["worker"].poll() is None, stack.log("worker")[-3000:]
    # nothing committed in the outage: offsets whose rows are not in ClickHouse stay uncommitted
    during = _lag(s.kafka_bootstrap, s.worker_id, topics)
    assert during[0] == frozen[0] and during[1] > frozen[1]  # while traffic went on
    feeder.join()
    drained = _wait_drained(stack, produced, 180)
    stack.stop("worker")
    log = stack.log("worker")
    print(
        f"{produced} messages; {log.count('SinkOutage')} failed insert attempts; drained "
        f"{drained:.0f}s after the outage"
    )
    assert log.count("insert into events failed (SinkOutage)") >= 10
    _assert_landed_exactly_once(stack, traffic)
