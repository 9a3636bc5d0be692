"""Two enrich workers and one sink worker (``mayak worker --role enrich|sink``): separate
processes and data directories, one real broker, embedded ClickHouse at the sink. 20,000
events from cookieless visitors (the collector's messages and frames) and logged-in customers
(the server hooks' messages, keyed by customer id); one enrich worker is SIGKILLed mid-stream
and started again. Every event lands exactly once, and every visitor and every customer has
one pseudonym although both workers made them."""

from __future__ import annotations

import base64
import random
import re
import secrets
import signal
import time
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

from anonymizer.master import load_master_secret
from contract import raw_frames, raw_seal
from contract.crypto import partition_secret
from contract.schema import ClientEvent
from mayak.kafka_local import free_port
from mayak.procs import mayak_sql, settings_for, spawn_mayak
from mayak.settings import Settings
from producers.collector.events import Context, EventFactory
from producers.collector.outbox import MemoPartitioner
from producers.hooks.tracker import Tracker
from stream_jobs.batching import unframe
from stream_jobs.roles import Role, group_id
from stream_jobs.topics import ensure_topics
from tests.stream_jobs.lost_events import _records, explain_lost
from tests.stream_jobs.test_sj_exactly_once import _lag
from tests.stream_jobs.test_sj_faults import UAS

pytestmark = [pytest.mark.faults, pytest.mark.kafka, pytest.mark.clickhouse]

PARTITIONS = 4
N_BROWSER, N_HOOKS = 16_000, 4_000  # 20,000 events
N_VISITORS, N_CUSTOMERS = 800, 200
SLICES = 20


def shared_key_store(tag: str) -> dict[str, str]:
    """How every enrich worker reaches the one key store: the Kafka key store, on a keys
    topic of this test's own (the session broker is shared by the tests)."""
    return {"MAYAK_KEY_STORE": "kafka", "MAYAK_TOPIC_KEYS": f"s{tag}.keys"}


class Traffic:
    """Raw events made by the collector's and the hooks' own code, framed per partition as the
    collector's outbox frames them, with who sent each."""

    def __init__(self, settings: Settings, seed: int) -> None:
        self.rng = random.Random(seed)
        self.factory = EventFactory(settings)
        master = load_master_secret(settings.ip_key, settings.data_dir)
        self.seal = raw_seal.sealer(raw_seal.raw_seal_key(master))  # as both producers seal
        self.open_raw = raw_seal.opener(raw_seal.raw_seal_key(master))
        self.sent: list[tuple[bytes, bytes]] = []
        self.tracker = Tracker(
            settings.hooks_site,
            lambda key, value: self.sent.append((key, value)),
            partition_secret(load_master_secret(settings.ip_key, settings.data_dir)),
        )
        # distinct devices (IP, User-Agent): two visitors never share one by chance
        self.visitors = [
            (f"85.132.{i // 250}.{i % 250 + 1}", self.rng.choice(UAS)) for i in range(N_VISITORS)
        ]
        self.customers = [f"ELG-CUST-{i:05d}" for i in range(N_CUSTOMERS)]
        self.visitor_of: dict[str, int] = {}  # event id -> index into visitors
        self.customer_of: dict[str, str] = {}  # event id -> customer id

    def browser(self, n: int) -> list[tuple[bytes, bytes]]:
        now = int(time.time() * 1000)
        out = []
        for _ in range(n):
            who = self.rng.randrange(N_VISITORS)
            ip, ua = self.visitors[who]
            event = ClientEvent(
                id=uuid.uuid4(),
                type="pageview",
                site="elegal",
                ts=now - self.rng.randrange(600_000),
                url=f"https://e-legal.az/lawyers/{self.rng.randrange(50)}",
            )
            self.visitor_of[str(event.id)] = who
            ctx = Context(ip=ip, ua=ua, lang="az", dnt=False, gpc=False, received=now)
            out.append(self.factory.from_client(event, ctx))
        return out

    def hooks(self, n: int) -> list[tuple[bytes, bytes]]:
        self.sent = []
        for _ in range(n):
            uid = self.rng.choice(self.customers)
            event = self.tracker.track(
                "service_request",
                uid=uid,
                service_type="notary",
                route="POST /services/{service}/apply",
                method="POST",
                ua=self.rng.choice(UAS),
            )
            self.customer_of[str(event.id)] = uid
        self.tracker.flush()
        return self.sent

    def slice(self, browser: int, hooks: int) -> list[tuple[int, bytes | None, bytes]]:
        """(partition, key, value) messages: the browser events framed per partition as the
        collector's outbox does (its partitioner, frames of a few), the hooks' one by one;
        every value sealed (``contract.raw_seal``)."""
        partitioner, parts = MemoPartitioner(), list(range(PARTITIONS))
        frames: dict[int, list[tuple[bytes, bytes]]] = defaultdict(list)
        messages: list[tuple[int, bytes | None, bytes]] = []
        for key, value in self.browser(browser):
            partition = partitioner.pick(key, parts)
            frames[partition].append((key, value))
            if len(frames[partition]) == self.rng.randrange(1, 40):
                messages.append(_frame(partition, frames.pop(partition)))
        messages += [_frame(p, items) for p, items in frames.items()]
        messages += [(partitioner.pick(k, parts), k, v) for k, v in self.hooks(hooks)]
        self.rng.shuffle(messages)
        return [(p, k, self.seal(v)) for p, k, v in messages]


def _frame(partition: int, items: list[tuple[bytes, bytes]]) -> tuple[int, bytes | None, bytes]:
    keys = {k for k, _ in items}
    key = next(iter(keys)) if len(keys) == 1 else None  # the outbox's rule
    return partition, key, raw_frames.frame([v for _, v in items])


def _send(bootstrap: str, topic: str, messages: list[tuple[int, bytes | None, bytes]]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20)
    for partition, key, value in messages:
        producer.send(topic, key=key, value=value, partition=partition)
    producer.flush()
    producer.close()


class Workers:
    """The three worker processes, each with its own data directory, web port and log."""

    def __init__(self, stack, env: dict[str, str]) -> None:
        self.stack, self.env = stack, env
        self.offsets: dict[str, int] = {}  # where each process's current log began

    def env_of(self, name: str) -> dict[str, str]:
        return {**self.env, "MAYAK_DATA_DIR": str(self.stack.home / name)}

    def start(self, name: str, role: Role) -> None:
        log = self.stack.home / f"{name}.log"
        self.offsets[name] = log.stat().st_size if log.exists() else 0
        env = {**self.env_of(name), "MAYAK_WORKER_WEB_PORT": str(free_port())}
        args = ["worker", "--role", role.value, "--no-dashboards", "--loglevel", "info"]
        self.stack.procs[name] = spawn_mayak(args, log, env)

    def log(self, name: str, current: bool = True) -> str:
        text = self.stack.log(name)
        return text[self.offsets.get(name, 0) :] if current else text

    def raw_partitions(self, name: str) -> set[int] | None:
        """The mayak.raw partitions of the last assignment the process logged (None: none)."""
        topic = re.escape(self.env["MAYAK_TOPIC_RAW"])
        found = re.findall(r"took partitions \[([^\]]*)\]", self.log(name))
        if not found:
            return None
        return {int(p) for p in re.findall(topic + r"/(\d+)", found[-1])}

    def wait(self, condition, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, proc in self.stack.procs.items():
                if proc.poll() is not None:
                    raise AssertionError(f"{name} died:\n{self.log(name)[-3000:]}")
            if condition():
                return
            time.sleep(0.3)
        logs = "\n".join(f"--- {n}\n{self.log(n)[-2500:]}" for n in self.stack.procs)
        raise AssertionError(f"timed out waiting for {what}\n{logs}")


class Offsets:
    """The broker's committed and end offsets, asked often: one admin client and consumer."""

    def __init__(self, bootstrap: str) -> None:
        self.admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap)

    def committed(self, group: str, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        offsets = self.admin.list_group_offsets({group: tps}).get(group, {})
        return {tp: max(offsets[tp].offset, 0) if tp in offsets else 0 for tp in tps}

    def end(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return self.consumer.end_offsets(tps)

    def wait_for(self, condition, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return True
            time.sleep(0.02)
        return False

    def close(self) -> None:
        self.admin.close()
        self.consumer.close()


def _counted(log: str) -> int:
    """Events the enrich pipeline handled, from the counters it logs when it stops."""
    found = re.findall(r"stream counters at stop (\{[^}]*\})", log)
    assert found, log[-3000:]
    return sum(int(n) for n in re.findall(r": (\d+)", found[-1]))


def test_two_enrich_workers_and_a_sink_one_killed_land_once_with_one_pseudonym_each(
    stack,
) -> None:
    tag = uuid.uuid4().hex[:8]
    env = {
        **stack.env,
        "MAYAK_TOPIC_RAW": f"s{tag}.raw",
        "MAYAK_TOPIC_EVENTS": f"s{tag}.events",
        "MAYAK_TOPIC_FAILED": f"s{tag}.failed",
        "MAYAK_KAFKA_PARTITIONS": str(PARTITIONS),
        # one master secret for the collector and the workers
        "MAYAK_IP_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "MAYAK_WORKER_SESSION_TIMEOUT_S": "6",  # the broker's minimum: fast takeover
        "MAYAK_SINK_FLUSH_SECONDS": "0.3",
        "MAYAK_SINK_BATCH_SIZE": "2000",
        **shared_key_store(tag),
    }
    settings = settings_for(env)
    ensure_topics(settings)
    bootstrap = settings.kafka_bootstrap
    enrich_group, sink_group = group_id(settings, Role.ENRICH), group_id(settings, Role.SINK)
    assert sink_group != enrich_group  # different subscriptions: different groups
    traffic = Traffic(settings, seed=17)
    per_slice = (N_BROWSER // SLICES, N_HOOKS // SLICES)
    slices = [traffic.slice(*per_slice) for _ in range(SLICES)]
    expected = set(traffic.visitor_of) | set(traffic.customer_of)
    assert len(expected) == N_BROWSER + N_HOOKS
    day_started = datetime.now(UTC).date()

    workers = Workers(stack, env)
    started = time.monotonic()
    workers.start("sink", Role.SINK)
    workers.start("enrich-a", Role.ENRICH)
    workers.start("enrich-b", Role.ENRICH)

    def split() -> bool:  # each holds some, none both (a worker logs each full assignment)
        a, b = workers.raw_partitions("enrich-a"), workers.raw_partitions("enrich-b")
        return bool(a and b and not a & b and a | b == set(range(PARTITIONS)))

    workers.wait(split, 120, "the two enrich workers to split mayak.raw's partitions")
    a_parts = workers.raw_partitions("enrich-a") or set()

    queue = list(slices)
    sent = 0

    def send(n: int, pause: float = 0.0) -> None:
        nonlocal sent
        for _ in range(min(n, len(queue))):
            messages = queue.pop(0)
            _send(bootstrap, settings.topic_raw, messages)
            sent += len(messages)
            time.sleep(pause)

    send(SLICES // 3, pause=0.5)
    offsets = Offsets(bootstrap)
    raw_a = [TopicPartition(settings.topic_raw, p) for p in sorted(a_parts)]
    events_a = [TopicPartition(settings.topic_events, p) for p in sorted(a_parts)]  # the same
    try:
        workers.wait(
            lambda: sum(offsets.committed(enrich_group, raw_a).values()) > 0,
            60,
            "enrich-a to commit mayak.raw offsets",
        )
        # kill enrich-a while events it published are not committed on mayak.raw yet: whoever
        # takes its partitions enriches those raw messages again (the rebalance's duplicates)
        caught = False
        while not caught and len(queue) > SLICES // 3:
            committed, published = offsets.committed(enrich_group, raw_a), offsets.end(events_a)
            send(1)
            caught = offsets.wait_for(
                lambda: offsets.end(events_a) != published  # noqa: B023 - called at once
                and offsets.committed(enrich_group, raw_a) == committed,  # noqa: B023
                3.0,
            )
    finally:
        offsets.close()
    assert stack.stop("enrich-a", sig=signal.SIGKILL) == -signal.SIGKILL
    assert caught, "never saw enrich-a's events published ahead of its commit"
    send(len(queue) - 3, pause=0.3)  # enrich-b takes over meanwhile
    workers.start("enrich-a", Role.ENRICH)
    workers.wait(
        lambda: bool(workers.raw_partitions("enrich-a")),
        90,
        "the restarted enrich-a to hold mayak.raw partitions again",
    )
    send(3)  # some for the restarted worker too

    def drained() -> bool:
        raw = _lag(bootstrap, enrich_group, [settings.topic_raw])
        landed = _lag(bootstrap, sink_group, [settings.topic_events, settings.topic_failed])
        return raw[1] >= sent and raw[0] == raw[1] and landed[0] == landed[1] > 0

    workers.wait(drained, 150, "every raw message enriched and every event landed")
    took = time.monotonic() - started
    for name in ("enrich-a", "enrich-b", "sink"):
        stack.stop(name)
    counted = {name: _counted(workers.log(name)) for name in ("enrich-a", "enrich-b")}
    first_a = workers.log("enrich-a", current=False)[: workers.offsets["enrich-a"]]
    print(
        f"{sent} raw messages ({len(expected)} events) drained {took:.0f}s after the start; "
        f"events handled at stop: {counted} (enrich-a restarted); redelivered after the kill: "
        f"{'skipped' in workers.log('sink')}, duplicates dropped at the sink: "
        f"{workers.log('sink').count('duplicate')}"
    )
    assert "took partitions" in first_a  # the killed incarnation held partitions ...
    assert counted["enrich-a"] > 0 and counted["enrich-b"] > 0  # ... and both enriched events

    sink_env = workers.env_of("sink")
    rows = mayak_sql(
        "SELECT toString(event_id) AS id, visitor_id AS v, customer_pid AS c FROM events",
        sink_env,
        timeout=180,
    )
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)), f"{len(ids) - len(set(ids))} event(s) landed twice"
    # the kill made duplicates upstream (enriched by both workers), which landed once
    published = Counter(
        str(event["event_id"])
        for p, o, value in _records(bootstrap, settings.topic_events)
        for _, _, event in unframe(p, o, value)
    )
    twice = sum(1 for n in published.values() if n > 1)
    print(f"events enriched twice (by both workers around the kill): {twice}")
    assert twice > 0 and set(published) == expected
    lost = expected - set(ids)
    if lost:
        why = "\n".join(
            explain_lost(
                bootstrap,
                group,
                (settings.topic_raw, settings.topic_events, settings.topic_failed),
                lost,
                workers.log(name, current=False),
                stack.home / f"lost-{name}.txt",
                traffic.open_raw,
            )
            for group, name in ((enrich_group, "enrich-a"), (sink_group, "sink"))
        )
        raise AssertionError(f"lost {len(lost)} event(s)\n{why}")
    assert set(ids) == expected
    failed = mayak_sql("SELECT reason, count() AS n FROM failed_events GROUP BY reason", sink_env)
    assert failed == []

    # one pseudonym per visitor (per day: a salt is daily) and per customer, across workers
    days = len({day_started, datetime.now(UTC).date()})
    by_visitor: dict[int, set[str]] = defaultdict(set)
    by_customer: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        if r["id"] in traffic.visitor_of:
            by_visitor[traffic.visitor_of[r["id"]]].add(r["v"])
            assert r["c"] == ""
        else:
            by_customer[traffic.customer_of[r["id"]]].add(r["c"])
    split = {v: ids for v, ids in by_visitor.items() if len(ids) > days}
    assert split == {}, f"{len(split)} visitor(s) with several visitor ids"
    assert len(by_visitor) == len({frozenset(s) for s in by_visitor.values()})  # none shared
    assert {c: len(p) for c, p in by_customer.items()} == dict.fromkeys(by_customer, 1)
    assert len({next(iter(p)) for p in by_customer.values()}) == len(by_customer) == N_CUSTOMERS
    assert "" not in {next(iter(p)) for p in by_customer.values()}
    for name in ("enrich-a", "enrich-b"):  # no ClickHouse was opened by an enrich worker
        assert not (stack.home / name / "clickhouse").exists()
