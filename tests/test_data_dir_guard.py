"""A running worker whose key store vanishes stops; the next start refuses to mint new keys
beside the stored data until the store is restored or `--reset-keys` is given (issue 16).
Also: what the worker listens on, and the modes of what it and the broker wrote."""

from __future__ import annotations

import shutil
import time

import psutil
import pytest
from kafka import KafkaProducer

from anonymizer.keystore import KeyStore, keystore_path
from mayak.install import worker_offsets_evidence
from mayak.procs import wait_http_ok

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]


def _wait_exit(proc, timeout: float) -> int | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    return proc.poll()


def _others_can_read(root) -> list[str]:
    return [
        f"{p} {oct(p.stat().st_mode)}"
        for p in [root, *root.rglob("*")]
        if not p.is_symlink() and p.stat().st_mode & 0o077
    ]


def test_worker_stops_when_its_key_store_vanishes_and_restart_refuses(
    stack, kafka_broker, tmp_path
) -> None:
    stack.start_worker()
    settings = stack.settings
    worker = psutil.Process(stack.procs["worker"].pid)
    deadline, listening = time.monotonic() + 60, set()
    while time.monotonic() < deadline and len(listening) < 2:  # Faust's web server starts later
        listening = {
            (c.laddr.ip, c.laddr.port)
            for c in worker.net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN
        }
        time.sleep(0.3)
    assert ("127.0.0.1", settings.worker_web_port) in listening, stack.log("worker")[-2000:]
    assert {ip for ip, _ in listening} == {"127.0.0.1"}
    broker = psutil.Process(kafka_broker.pid())
    assert {
        c.laddr.ip.removeprefix("::ffff:")
        for c in broker.net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN
    } == {"127.0.0.1"}
    assert _others_can_read(settings.data_dir) == []  # chDB parts, key store, tokens
    assert _others_can_read(kafka_broker.home / "data") == []  # segments, offsets

    keys = keystore_path(settings)
    backup = tmp_path / "anonymizer.db.bak"
    shutil.copy(keys, backup)
    keys.unlink()  # the data directory's keys are deleted under the running worker
    code = _wait_exit(stack.procs["worker"], 60)
    assert code not in (None, 0), stack.log("worker")[-2000:]
    assert f"{keys} was removed or replaced while Mayak ran" in stack.log("worker")
    stack.procs.pop("worker")

    stack.start("worker", "worker", "--dashboards")
    assert _wait_exit(stack.procs["worker"], 60) == 2
    stack.procs.pop("worker")
    log = stack.log("worker")
    assert f"the key store {keys} is missing" in log and "--reset-keys" in log
    assert not keys.exists()  # no new keys were minted

    shutil.copy(backup, keys)  # restored from the backup: the worker starts again
    stack.start_worker()
    stack.stop("worker")
    KeyStore(tmp_path / "elsewhere.db").close()
    stack.env["MAYAK_KEYSTORE_PATH"] = str(tmp_path / "elsewhere.db")  # not this install's
    stack.start("worker", "worker", "--dashboards")
    assert _wait_exit(stack.procs["worker"], 60) == 2
    stack.procs.pop("worker")
    assert "belongs to another install" in stack.log("worker")
    del stack.env["MAYAK_KEYSTORE_PATH"]
    stack.start("worker", "worker", "--dashboards", "--reset-keys")  # deliberately new keys
    wait_http_ok(
        {"dashboards": f"{settings.dashboards_url}/healthz"},
        {"worker": stack.procs["worker"]},
        logs=stack.home,
    )

    # the whole data directory wiped: the broker still knows the worker's group had consumed
    settings = stack.settings
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    producer.send(settings.topic_raw, b'{"not": "an event"}').get(30)
    producer.close()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not worker_offsets_evidence(settings):
        time.sleep(0.5)
    stack.stop("worker")
    shutil.rmtree(settings.data_dir)
    stack.start("worker", "worker", "--dashboards")
    assert _wait_exit(stack.procs["worker"], 60) == 2
    stack.procs.pop("worker")
    assert f"committed Kafka offsets of consumer group {settings.worker_id!r}" in stack.log(
        "worker"
    )
    assert not keystore_path(settings).exists()
