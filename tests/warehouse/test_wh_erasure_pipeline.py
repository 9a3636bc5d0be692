"""Erasure end to end: a customer's events go through the real broker and Faust worker into
chDB, `mayak export` / `mayak erase` reach the running worker's admin API, and afterwards
nothing of that customer is left and their key is gone."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import subprocess
import sys
import time

import httpx
import pytest

from anonymizer.keystore import keystore_from_settings, keystore_path
from anonymizer.master import keystore_index_key, load_master_secret
from mayak.kafka_local import LocalBroker
from mayak.settings import Settings
from producers.hooks.tracker import Tracker

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]
UA = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"


def _mayak(env: dict, *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "-m", "mayak", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done


def _wait_for(url: str, key: str, at_least: int, headers: dict, timeout: float = 90.0) -> dict:
    deadline, body = time.monotonic() + timeout, {}
    while time.monotonic() < deadline:
        body = httpx.get(url, timeout=5, headers=headers).json()
        if (body.get(key) or 0) >= at_least:
            return body
        time.sleep(0.5)
    raise AssertionError(f"{key} never reached {at_least}: {body}")


@pytest.mark.parametrize("key_store", ["local", "kafka"])
def test_erase_a_customer_through_the_running_pipeline(
    stack, key_store: str, kafka_broker: LocalBroker
) -> None:
    if key_store == "kafka":  # the shared key store: worker, CLI and check all read the topic
        stack.env["MAYAK_KEY_STORE"] = "kafka"
        stack.env["MAYAK_TOPIC_KEYS"] = stack.env["MAYAK_TOPIC_RAW"].replace(".raw", ".keys")
        stack.env["MAYAK_IP_KEY"] = base64.b64encode(secrets.token_bytes(32)).decode()
        stack.env["MAYAK_KEY_STORE_SEGMENT_S"] = "2"  # destroyed bytes gone within seconds
        stack.env["MAYAK_KEY_STORE_HEARTBEAT_S"] = "0.5"
    stack.start_worker()
    settings = stack.settings
    tracker = Tracker.from_settings(settings)
    for i in range(3):
        tracker.track(
            "service_request",
            uid="cust-erase-me",
            service_type="notary",
            url=f"https://e-legal.az/services/notary?step={i}",
            ua=UA,
        )
    for _ in range(2):
        tracker.track("service_request", uid="cust-keep-me", service_type="court", ua=UA)
    tracker.close()
    _wait_for(
        f"{settings.dashboards_url}/api/stats/summary?site={settings.hooks_site}",
        "service_requests",
        5,
        stack.api_headers,
    )

    held = _key_record(stack.settings, "cust-erase-me") if key_store == "kafka" else b""
    log_dir = kafka_broker.log_dir / f"{settings.topic_keys}-0"
    assert key_store == "local" or held in _files(log_dir)  # the scan below can see it
    exported = [
        json.loads(line)
        for line in _mayak(stack.env, "export", "--customer", "cust-erase-me").stdout.splitlines()
    ]
    assert len(exported) == 3
    pid = exported[0]["customer_pid"]
    assert pid and {e["customer_pid"] for e in exported} == {pid}
    assert "cust-erase-me" not in json.dumps(exported)

    done = json.loads(_mayak(stack.env, "erase", "--customer", "cust-erase-me", "--opt-out").stdout)
    assert done["subject"] == pid and done["rows_deleted"]["events"] == 3
    assert done["key_destroyed"] and done["opted_out"]
    assert _mayak(stack.env, "export", "--customer", "cust-erase-me").stdout == ""
    assert "0 late event(s) deleted" in _mayak(stack.env, "erase-sweep").stderr

    if key_store == "kafka":  # the key's (encrypted) bytes leave the broker's files
        deadline = time.monotonic() + 60
        while held in _files(log_dir):
            assert time.monotonic() < deadline, "the erased key's bytes stayed on the broker"
            time.sleep(0.5)
    stack.stop("worker")
    assert stack.sql(f"SELECT count() AS n FROM events WHERE customer_pid = '{pid}'") == [{"n": 0}]
    kept = stack.sql(
        "SELECT uniqExact(customer_pid) AS c, count() AS n FROM events "
        "WHERE event_type = 'service_request'"
    )
    assert kept == [{"c": 1, "n": 2}]
    log = stack.sql("SELECT subject, via, actor, key_destroyed FROM erasure_log")
    assert log == [{"subject": pid, "via": "api", "actor": "cli", "key_destroyed": 1}]
    audit = stack.sql(
        "SELECT endpoint, request FROM query_audit WHERE role = 'admin' "
        "AND endpoint LIKE 'admin/%' ORDER BY ts"
    )  # not the summary polls
    assert [a["endpoint"] for a in audit] == [
        "admin/export",
        "admin/erase",
        "admin/export",
        "admin/sweep",
    ]
    assert "cust-erase-me" not in json.dumps(audit)
    assert keystore_path(settings).exists() == (key_store == "local")
    keys = keystore_from_settings(settings)
    try:
        assert not keys.has_customer("cust-erase-me") and keys.is_opted_out("cust-erase-me")
        assert keys.has_customer("cust-keep-me")
    finally:
        keys.close()


def _key_record(settings: Settings, uid: str) -> bytes:
    """The encrypted value of the customer's key record in the shared key store's topic."""
    from kafka import KafkaConsumer, TopicPartition

    master = load_master_secret(settings.ip_key, settings.data_dir)
    mac = hmac.new(keystore_index_key(master), uid.encode(), hashlib.sha256).hexdigest()
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None)
    tp = TopicPartition(settings.topic_keys, 0)
    consumer.assign([tp])
    consumer.seek_to_beginning(tp)
    end, found = consumer.end_offsets([tp])[tp], b""
    while consumer.position(tp) < end:
        for records in consumer.poll(timeout_ms=500).values():
            for r in records:
                if r.key.startswith(f"cust/{mac}/".encode()) and r.value:
                    found = r.value
    consumer.close()
    assert found, "the customer's key is not in the topic"
    return found


def _files(directory) -> bytes:
    out = b""
    for path in directory.iterdir():
        try:
            out += path.read_bytes()
        except OSError:  # the log cleaner deleted it meanwhile
            pass
    return out
