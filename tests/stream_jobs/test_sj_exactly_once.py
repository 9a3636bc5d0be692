"""10,000 raw events through the real broker and the real Faust worker into ClickHouse, counted
exactly once although the worker is SIGKILLed in the middle; then a scan for personal data
in every topic, every table and the worker's log."""

from __future__ import annotations

import base64
import json
import random
import secrets
import signal
import threading
import time
import uuid

import orjson
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

from contract.crypto import encrypt_ip, ip_cipher_key, partition_key, partition_secret
from mayak.procs import spawn_mayak
from tests.clock import clear_of_midnight_utc
from tests.leaks import found_in

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

N_EVENTS_BASE, N_DUPLICATES, N_BOTS, N_BROKEN = 10_000, 300, 120, 40
N_EVENTS = N_EVENTS_BASE + 2  # plus the two of the session probe
UAS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36 MayakScan/1",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.0 Mobile/15E148 Safari/604.1 MayakScan/2",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0 MayakScan/3",
]
SESSION_IP, SESSION_IDS = "85.133.7.7", [str(uuid.uuid4()), str(uuid.uuid4())]
BOT_UA = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html) MayakScan/4"


def _secrets_of_run(rng: random.Random, extra: random.Random) -> dict[str, list[str]]:
    """``rng`` draws as it always did (the messages stay the same from run to run); the
    formats of issue 16 are drawn from ``extra``."""

    def phone(a: int, b: int, c: int) -> str:  # every separator style of issue 16
        op = extra.choice(["50", "51", "55", "70", "77"])
        return extra.choice(
            [
                f"+994 {op} {a} {b} {c}",
                f"0{op}/{a}/{b}/{c}",
                f"0{op}_{a}_{b}_{c}",
                f"(0{op}) {a}-{b}-{c}",
                f"0{op}{a}{b}{c}",
                f"994{op}{a}{b}{c}",
                f"0{op}.{a}.{b}.{c}",
                f"+994-{op}-{a}-{b}-{c}",
            ]
        )

    alnum = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"
    return {
        "ips": [f"85.132.{rng.randrange(256)}.{rng.randrange(1, 255)}" for _ in range(300)],
        "emails": [f"scan.person{i}@mail.az" for i in range(200)],
        "phones": [
            phone(rng.randrange(100, 999), rng.randrange(10, 99), rng.randrange(10, 99))
            for _ in range(100)
        ],
        "uids": [f"CUST-{rng.randrange(10**9, 10**10)}" for _ in range(100)],
        # portal customer ids (MAYAK_CUSTOMER_ID_PATTERN's default format), used as uid
        # and written into URLs, sections, utm values, props
        "cids": [f"ELG-CUST-{''.join(extra.choice(alnum) for _ in range(5))}" for _ in range(100)],
        "campaigns": [],  # phones and IPv4 addresses as campaign ids (slugs)
        # addresses of 8 digits or fewer and IPv6 ones, written into free text; the first
        # is also a referrer's host
        "addrs": ["198.18.7.7"]
        + [f"198.18.{extra.randrange(10)}.{extra.randrange(10, 99)}" for _ in range(50)]
        + [
            f"2001:db8:{extra.randrange(16**4):x}::{extra.randrange(1, 16**4):x}" for _ in range(50)
        ],
    }


def _slug(value: str) -> str:
    """A phone as a campaign id (a slug): (050) 123-45-67 -> 050__123-45-67."""
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in value).strip("_")


def _raw_events(
    master: bytes, known: dict[str, list[str]], rng: random.Random, extra: random.Random
) -> list[tuple[bytes, bytes]]:
    key, secret = ip_cipher_key(master), partition_secret(master)
    now = int(time.time() * 1000)
    messages = []

    def add(event: dict, ip: str, ua: str) -> None:
        event.update(ua=ua, ip_enc=encrypt_ip(key, ip))
        messages.append((partition_key(secret, event["site"], ip, ua), orjson.dumps(event)))

    for i in range(N_EVENTS_BASE):
        ip, ua = rng.choice(known["ips"]), rng.choice(UAS)
        ts, email = now - rng.randrange(3_600_000), rng.choice(known["emails"])
        phone = rng.choice(known["phones"])
        cid, addr = extra.choice(known["cids"]), extra.choice(known["addrs"])
        campaign = _slug(extra.choice([phone, addr if ":" not in addr else phone]))
        known["campaigns"].append(campaign)
        # every free-text field carries a personal value (issue 16)
        event = {
            "v": 1,
            "id": str(uuid.uuid4()),
            "type": "pageview",
            "site": "elegal",
            "ts": ts,
            "url": f"https://e-legal.az/cases/{i + 10000}/{extra.choice([phone, cid, addr])}"
            f"?utm_source=scan&utm_medium={phone}&utm_campaign={cid}&email={email}",
            "ref": f"https://{extra.choice(['198.18.7.7', 'e-legal.az', 'google.com'])}"
            f"/kabinet/{cid}",
            "section": f"Kabinet {cid} {phone}",
            "campaign": campaign,
            "props": {"note": f"call {phone}", "who": cid, "addr": addr, "ua": ua, "ip": ip},
        }
        if i % 10 == 0:
            uid, email = rng.choice(known["uids"]), rng.choice(known["emails"])
            event.update(
                type="service_request",
                uid=extra.choice([uid, cid]),
                service_type=f"notary {phone}",
                url=f"https://e-legal.az/u/{email}",
            )
        elif i % 10 == 5:  # a server hook's route template with the method prefix
            event.update(
                type="service_request",
                uid=cid,
                service_type="notary",
                route=f"POST /kabinet/{cid}/services/{{service}}/apply",
                method="POST",
            )
            event.pop("url")
        add(event, ip, ua)
    # the same events produced twice upstream (a collector retry, a re-sending agent)
    messages += rng.sample(messages, N_DUPLICATES)
    for _ in range(N_BOTS):
        add(
            {
                "v": 1,
                "id": str(uuid.uuid4()),
                "type": "pageview",
                "site": "elegal",
                "ts": now,
                "url": "https://e-legal.az/",
            },
            rng.choice(known["ips"]),
            BOT_UA,
        )
    for _ in range(N_BROKEN):  # schema failures that carry personal data in odd places
        add(
            {
                "v": 1,
                "id": str(uuid.uuid4()),
                "type": "pageview",
                "site": "elegal",
                "ts": now,
                "url": f"https://e-legal.az/p/{rng.choice(known['emails'])}",
                "scroll_pct": 900,
                "uid": rng.choice(known["uids"]),
            },
            rng.choice(known["ips"]),
            rng.choice(UAS),
        )
    rng.shuffle(messages)
    # one visitor seen before the kill and 5 minutes later after it: the session must carry over
    known["ips"].append(SESSION_IP)
    for n, ts in ((0, now - 600_000), (1, now - 300_000)):
        event = {
            "v": 1,
            "id": SESSION_IDS[n],
            "type": "pageview",
            "site": "elegal",
            "ts": ts,
            "url": "https://e-legal.az/session",
        }
        add(event, SESSION_IP, UAS[0])
        message = messages.pop()
        messages.insert(0, message) if n == 0 else messages.append(message)
    return messages


def _produce(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20)
    for key, value in messages:
        producer.send(topic, key=key, value=value)
    producer.flush()
    producer.close()


def _produce_paced(
    bootstrap: str,
    topic: str,
    messages: list[tuple[bytes, bytes]],
    slices: int = 24,
    pause: float = 0.25,
) -> None:
    step = max(1, len(messages) // slices)
    for start in range(0, len(messages), step):
        _produce(bootstrap, topic, messages[start : start + step])
        time.sleep(pause)


def _lag(bootstrap: str, group: str, topics: list[str]) -> tuple[int, int]:
    """(committed, end) summed over the topics' partitions for the worker's consumer group."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        try:
            committed = admin.list_group_offsets(group).get(group, {})
        except Exception:  # the group does not exist yet
            committed = {}
        tps = [TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()]
        end = consumer.end_offsets(tps)
        return (
            sum(committed[tp].offset for tp in tps if tp in committed and committed[tp].offset > 0),
            sum(end.values()),
        )
    finally:
        admin.close()
        consumer.close()


def _wait(condition, timeout: float, what: str, stack) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if stack.procs["worker"].poll() is not None:
            raise AssertionError(f"worker died:\n{stack.log('worker')[-3000:]}")
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}\n{stack.log('worker')[-3000:]}")


def _read_topic(bootstrap: str, topic: str) -> list[bytes]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    end = consumer.end_offsets(tps)
    values: list[bytes] = []
    while any(consumer.position(tp) < end[tp] for tp in tps):
        for records in consumer.poll(timeout_ms=1000).values():
            values += [r.value or b"" for r in records]
    consumer.close()
    return values


def test_exactly_once_through_a_sigkill_and_nothing_personal_anywhere(stack) -> None:
    clear_of_midnight_utc(300)  # the carried-over visitor is one visitor within a UTC day
    rng = random.Random(4)
    master = secrets.token_bytes(32)
    stack.env.update(
        MAYAK_IP_KEY=base64.b64encode(master).decode(),
        MAYAK_SINK_FLUSH_SECONDS="0.5",
        MAYAK_SINK_BATCH_SIZE="2000",
        # Faust's own settings: the killed member leaves the group in 10 s, not 60 s
        BROKER_SESSION_TIMEOUT="10",
        BROKER_HEARTBEAT_INTERVAL="1",
    )
    settings = stack.settings
    bootstrap, group = settings.kafka_bootstrap, settings.worker_id
    extra = random.Random(16)  # the issue-16 formats; rng's own sequence is as before
    known = _secrets_of_run(rng, extra)
    messages = _raw_events(master, known, rng, extra)
    half = len(messages) // 2

    # the first half arrives over a few seconds (as traffic does), so the kill below always
    # finds the worker mid-flight: a fast worker would otherwise land and commit a
    # pre-produced half within one commit interval and leave nothing to redeliver
    head = half // 5
    _produce(bootstrap, settings.topic_raw, messages[:head])
    # the worker SIGKILLs itself right after its 3rd insert into events returned: rows landed,
    # their offsets not yet committed, so the restarted sink must skip them (a kill from
    # outside at a random moment hit that window only now and then)
    stack.env["MAYAK_TEST_KILL_AFTER_INSERTS"] = "3"
    stack.start("worker", "worker", "--no-dashboards")
    del stack.env["MAYAK_TEST_KILL_AFTER_INSERTS"]
    trickle = threading.Thread(
        target=_produce_paced,
        daemon=True,
        args=(bootstrap, settings.topic_raw, messages[head:half]),
    )
    trickle.start()
    _wait(lambda: stack.procs["worker"].poll() is not None, 120, "the worker's self-kill", stack)
    assert stack.stop("worker") == -signal.SIGKILL
    trickle.join()
    _produce(bootstrap, settings.topic_raw, messages[half:])

    stack.start("worker", "worker", "--no-dashboards")
    started = time.monotonic()
    topics = [settings.topic_raw, settings.topic_events, settings.topic_failed]

    def drained() -> bool:
        committed, end = _lag(bootstrap, group, topics)
        return end >= len(messages) and committed == end

    try:
        _wait(drained, 150, "all offsets committed", stack)
    except AssertionError as exc:  # say which topic lags: the worker log alone does not
        lags = {t: _lag(bootstrap, group, [t]) for t in topics}
        # and what the worker is doing: mode's Worker dumps its threads and asyncio tasks
        stack.procs["worker"].send_signal(signal.SIGUSR1)
        time.sleep(3)
        dump = stack.log("worker")[-15_000:]
        raise AssertionError(
            f"(committed, end) per topic: {lags}\n{exc}\nworker threads and tasks:\n{dump}"
        ) from None
    stack.stop("worker")
    log = stack.log("worker")
    print(
        f"drained {time.monotonic() - started:.1f}s after the restart; "
        f"redelivery skipped: {'skipped' in log}, duplicates dropped: {'duplicate' in log}"
    )
    assert "skipped" in log and "duplicate" in log  # both exactly-once paths were exercised

    counts = stack.sql("SELECT count() AS n, uniqExact(event_id) AS ids FROM events")[0]
    assert counts == {"n": N_EVENTS, "ids": N_EVENTS}
    failed = {
        r["reason"]: r["n"]
        for r in stack.sql(
            "SELECT reason, uniqExact(event_id) AS n, count() AS rows FROM failed_events "
            "GROUP BY reason"
        )
    }
    assert failed == {"bot": N_BOTS, "schema": N_BROKEN}
    assert stack.sql("SELECT count() AS rows FROM failed_events")[0]["rows"] == N_BOTS + N_BROKEN
    assert stack.sql("SELECT sum(hits) AS hits FROM bot_hits")[0]["hits"] == N_BOTS
    sessions = stack.sql("SELECT count() AS n FROM events WHERE session_id = ''")[0]["n"]
    assert sessions == 0
    carried = stack.sql(
        "SELECT uniqExact(session_id) AS n, count() AS events FROM events "
        f"WHERE event_id IN ('{SESSION_IDS[0]}', '{SESSION_IDS[1]}')"
    )[0]
    assert carried == {"n": 1, "events": 2}  # restored from the table's changelog

    # --- the scan: topics, tables, the worker's log -------------------------------------------
    corpus = [stack.log("worker")]
    for topic in (settings.topic_events, settings.topic_failed, f"{group}-sessions-changelog"):
        values = _read_topic(bootstrap, topic)
        assert values, f"{topic} is empty"  # the session table did write its changelog
        corpus.append(b"\n".join(values).decode(errors="replace"))
    tables = [
        r["name"]
        for r in stack.sql(
            "SELECT name FROM system.tables WHERE database = currentDatabase() "
            "AND engine NOT IN ('MaterializedView', 'View') AND name != 'schema_migrations'"
        )
    ]
    for table in tables:
        corpus.append(
            json.dumps(stack.sql(f"SELECT formatRow('JSONEachRow', *) AS r FROM {table}"))
        )
    text = "\n".join(corpus)
    assert "events" in tables and "failed_events" in tables
    rollups = {"agg_site_hourly", "agg_dim_hourly", "agg_dim_daily", "sessions"}
    assert rollups <= set(tables)  # the rollups are scanned too (kept for years)
    dims = {r["value"] for r in stack.sql("SELECT DISTINCT value FROM agg_dim_daily")}
    assert "/kabinet/[customer]/services/{service}/apply" in dims and "[phone]" in dims
    assert not any(v.startswith("/POST") for v in dims)
    kinds = ("ips", "emails", "phones", "uids", "cids", "addrs", "campaigns")
    leaks = found_in(text, (s for kind in kinds for s in known[kind]))
    leaks += [ua for ua in UAS + [BOT_UA] if ua in text or ua.split(") ")[0] in text]
    leaks += ["MayakScan"] if "MayakScan" in text else []
    assert leaks == []

    # failed events can be replayed by reason (dry run: the worker is stopped)
    replay = spawn_mayak(
        ["replay-failed", "--reason", "schema", "--dry-run"], stack.home / "replay.log", stack.env
    )
    assert replay.wait(60) == 0
    assert f"would replay {N_BROKEN} event(s)" in stack.log("replay")
