"""The shared key store on a real broker: races agree, erasure reaches every worker within a
bound, destroyed secrets' bytes leave the broker's files within a bound, and no plaintext
secret ever reaches them."""

from __future__ import annotations

import base64
import os
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from kafka import KafkaConsumer, TopicPartition

from anonymizer.keystore import SaltExpired
from anonymizer.keystore_kafka import KafkaKeyStore
from mayak.kafka_local import LocalBroker, free_port

pytestmark = pytest.mark.kafka

DAY = date(2026, 11, 28)
NOON = datetime(2026, 11, 28, 12, tzinfo=UTC)
#: erasure and opt-out written by one store are honoured by every other store within this
PROPAGATION_BOUND_S = 5.0
#: with these test settings (segment 2 s, heartbeat 0.5 s, the local broker's 1 s cleaner
#: back-off, file.delete.delay 1 s) destroyed bytes leave the files within ~5 s; the bound
#: leaves room for a busy 2-core machine
PURGE_BOUND_S = 60.0
SEGMENT_S = 2.0
HEARTBEAT_S = 0.5


@pytest.fixture
def topic() -> str:
    return f"t{uuid.uuid4().hex[:8]}.keys"


@pytest.fixture
def open_store(kafka_bootstrap: str, topic: str) -> Iterator[Callable[..., KafkaKeyStore]]:
    opened: list[KafkaKeyStore] = []
    master = secrets.token_bytes(32)

    def open_one(key: bytes | None = None) -> KafkaKeyStore:
        store = KafkaKeyStore(
            kafka_bootstrap,
            topic,
            key or master,
            segment_s=SEGMENT_S,
            heartbeat_s=HEARTBEAT_S,
        )
        opened.append(store)
        return store

    open_one.master = master  # type: ignore[attr-defined]
    yield open_one
    for store in opened:
        store.close()


def _race(a: KafkaKeyStore, b: KafkaKeyStore, job: Callable[[KafkaKeyStore], bytes]) -> list:
    start = threading.Barrier(2)
    got: list = [None, None]

    def run(i: int, store: KafkaKeyStore) -> None:
        start.wait()
        got[i] = job(store)

    threads = [threading.Thread(target=run, args=(i, s)) for i, s in enumerate((a, b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return got


def test_racing_stores_agree_on_one_salt_and_key_also_after_restart(
    open_store, kafka_bootstrap: str, topic: str
) -> None:
    a, b = open_store(), open_store()
    for n in range(5):  # several rounds: each a fresh slot both create at the same moment
        day = DAY + timedelta(days=n)
        salts = _race(a, b, lambda s, d=day: s.salt_for(d, NOON))
        keys = _race(a, b, lambda s, n=n: s.customer_key(f"cust-{n}"))
        assert salts[0] == salts[1] and len(salts[0]) == 32
        assert keys[0] == keys[1] and len(keys[0]) == 32
    assert a.visitor_key == b.visitor_key and a.install_id == b.install_id
    # the race did happen: more candidates were written than there are slots (the losers
    # were tombstoned by their writers)
    raw = _raw_values(kafka_bootstrap, topic)
    assert sum(k.startswith((b"salt/", b"cust/")) for k in raw) > 10
    wanted = (a.salt_for(DAY, NOON), a.customer_key("cust-0"), a.install_id)
    a.close()
    b.close()
    c, d = open_store(), open_store()  # both restarted: read back from the topic
    for store in (c, d):
        assert (store.salt_for(DAY, NOON), store.customer_key("cust-0"), store.install_id) == (
            wanted
        )


def _until(check: Callable[[], bool], bound: float, began: float | None = None) -> float:
    began = time.monotonic() if began is None else began
    while not check():
        if time.monotonic() - began > bound:
            raise AssertionError(f"not within {bound}s")
        time.sleep(0.01)
    return time.monotonic() - began


def test_erasure_and_opt_out_reach_the_other_store_within_the_bound(open_store) -> None:
    a, b = open_store(), open_store()
    old = b.customer_key("cust-9")
    assert a.customer_key("cust-9") == old
    began = time.monotonic()  # from the call on A until B answers without the key
    assert a.forget_customer("cust-9") is True
    took = _until(lambda: not b.has_customer("cust-9"), PROPAGATION_BOUND_S, began)
    print(f"erasure reached the other store in {took:.3f}s")
    new = b.customer_key("cust-9")
    assert new != old and a.customer_key("cust-9") == new
    assert a.forget_customer("nobody") is False

    began = time.monotonic()
    a.opt_out("cust-7")
    took = _until(lambda: b.is_opted_out("cust-7"), PROPAGATION_BOUND_S, began)
    print(f"opt-out reached the other store in {took:.3f}s")
    assert b.opt_in("cust-7") is True
    _until(lambda: not a.is_opted_out("cust-7"), PROPAGATION_BOUND_S)


def _raw_values(bootstrap: str, topic: str) -> dict[bytes, bytes]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    tp = TopicPartition(topic, 0)
    consumer.assign([tp])
    consumer.seek_to_beginning(tp)
    end = consumer.end_offsets([tp])[tp]
    values: dict[bytes, bytes] = {}
    while consumer.position(tp) < end:
        for records in consumer.poll(timeout_ms=500).values():
            values.update({r.key: r.value for r in records if r.value is not None})
    consumer.close()
    return values


def _log_bytes(directory: Path) -> bytes:
    out = b""
    for name in os.listdir(directory):
        try:
            out += (directory / name).read_bytes()
        except OSError:  # the cleaner deleted it meanwhile
            pass
    return out


def test_destroyed_secrets_leave_the_brokers_files_within_the_bound(
    open_store, kafka_broker: LocalBroker, topic: str
) -> None:
    store = open_store()
    key = store.customer_key("cust-gone")
    salt = store.salt_for(DAY, NOON)
    kept = store.customer_key("cust-kept")
    raw = _raw_values(kafka_broker.bootstrap, topic)
    cust_value = next(
        v for k, v in raw.items() if k.startswith(b"cust/" + store.mac("cust-gone").encode())
    )
    salt_value = next(v for k, v in raw.items() if k.startswith(b"salt/"))
    log_dir = kafka_broker.log_dir / f"{topic}-0"
    files = _log_bytes(log_dir)
    assert cust_value in files and salt_value in files  # the scan can see a value
    assert key not in files and salt not in files and kept not in files  # never in clear

    assert store.forget_customer("cust-gone") is True
    assert store.purge_expired(NOON + timedelta(days=2)) == [DAY]
    with pytest.raises(SaltExpired):
        store.salt_for(DAY, NOON)
    took = _until(
        lambda: not {cust_value, salt_value}
        & _present(_log_bytes(log_dir), cust_value, salt_value),
        PURGE_BOUND_S,
    )
    print(f"destroyed secrets left the broker's files in {took:.1f}s")
    files = _log_bytes(log_dir)
    for secret in (key, salt, kept, store.visitor_key):
        assert secret not in files  # only ciphertext ever reaches the broker
    assert store.customer_key("cust-kept") == kept  # compaction kept what lives


def _present(data: bytes, *needles: bytes) -> set[bytes]:
    return {n for n in needles if n in data}


def test_cli_backup_restore_to_an_empty_topic_never_resurrects(
    kafka_bootstrap: str, topic: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from anonymizer.keystore import keystore_from_settings
    from mayak.cli import app
    from mayak.settings import Settings

    master = secrets.token_bytes(32)
    env = {
        "MAYAK_DATA_DIR": str(tmp_path / "data"),
        "MAYAK_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "MAYAK_KEY_STORE": "kafka",
        "MAYAK_TOPIC_KEYS": topic,
        "MAYAK_IP_KEY": base64.b64encode(master).decode(),
        "MAYAK_KEY_STORE_SEGMENT_S": str(SEGMENT_S),
        "MAYAK_KEY_STORE_HEARTBEAT_S": str(HEARTBEAT_S),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    now = datetime.now(UTC)
    store = keystore_from_settings(Settings())
    wanted = (
        store.install_id,
        store.visitor_key,
        store.salt_for(now.date(), now),
        store.customer_key("kept"),
    )
    erased = store.customer_key("erased")
    store.opt_out("objector")
    file = tmp_path / "keys.backup"
    runner = CliRunner()
    done = runner.invoke(app, ["keys", "backup", str(file)])
    assert done.exit_code == 0, done.output
    for secret in (*wanted[1:], erased):
        assert secret not in file.read_bytes()
    assert store.forget_customer("erased")
    store.close()

    # into the same topic: the key erased after the backup stays erased
    done = runner.invoke(app, ["keys", "restore", str(file)])
    assert done.exit_code == 0, done.output
    again = keystore_from_settings(Settings())
    assert not again.has_customer("erased") and again.customer_key("kept") == wanted[3]
    assert again.customer_key("erased") != erased
    later = tmp_path / "later.backup"
    assert runner.invoke(app, ["keys", "backup", str(later)]).exit_code == 0
    again.close()

    # into an empty topic (the broker's disk lost): everything back, the same install
    monkeypatch.setenv("MAYAK_TOPIC_KEYS", topic + ".new")
    done = runner.invoke(app, ["keys", "restore", str(later)])
    assert done.exit_code == 0, done.output
    fresh = keystore_from_settings(Settings())
    got = (fresh.install_id, fresh.visitor_key, fresh.salt_for(now.date(), now))
    assert got == wanted[:3] and fresh.customer_key("kept") == wanted[3]
    assert fresh.is_opted_out("objector") and fresh.customer_key("erased") != erased
    fresh.close()
    # a restore into a non-empty store of the same install changes nothing
    done = runner.invoke(app, ["keys", "restore", str(later)])
    assert done.exit_code == 0 and "'restored'" not in done.output

    monkeypatch.setenv("MAYAK_IP_KEY", base64.b64encode(secrets.token_bytes(32)).decode())
    done = runner.invoke(app, ["keys", "restore", str(later)])
    assert "does not decrypt with this master secret" in str(done.exception)
    monkeypatch.setenv("MAYAK_KAFKA_BOOTSTRAP", f"127.0.0.1:{free_port()}")
    monkeypatch.setenv("MAYAK_IP_KEY", env["MAYAK_IP_KEY"])
    done = runner.invoke(app, ["keys", "restore", str(later)])
    assert "cannot reach Kafka" in str(done.exception) and "mayak kafka start" in str(
        done.exception
    )


def test_mayak_topics_creates_the_compacted_keys_topic(kafka_bootstrap: str, topic: str) -> None:
    from kafka import KafkaAdminClient
    from kafka.admin import ConfigResource, ConfigResourceType

    from mayak.settings import Settings
    from stream_jobs.topics import ensure_topics

    tag = topic.split(".")[0]
    settings = Settings(
        kafka_bootstrap=kafka_bootstrap,
        key_store="kafka",
        topic_keys=topic,
        topic_raw=f"{tag}.raw",
        topic_events=f"{tag}.events",
        topic_failed=f"{tag}.failed",
    )
    assert topic in ensure_topics(settings)
    assert topic not in ensure_topics(settings)
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        (described,) = admin.describe_topics([topic])
        assert len(described["partitions"]) == 1
        resource = ConfigResource(ConfigResourceType.TOPIC, topic)
        described_configs = admin.describe_configs([resource])
        configs = next(iter(described_configs.values()))[topic]
    finally:
        admin.close()
    values = {name: configs[name]["value"] for name in configs}
    assert values["cleanup.policy"] == "compact"
    assert values["segment.ms"] == values["max.compaction.lag.ms"] == "600000"
    assert values["file.delete.delay.ms"] == "1000"


def test_a_deleted_keys_topic_stops_the_store_instead_of_minting_new_keys(
    open_store, kafka_bootstrap: str, topic: str, tmp_path: Path
) -> None:
    from kafka import KafkaAdminClient

    from mayak.errors import MayakError
    from mayak.install import KeyStoreWatch
    from mayak.settings import Settings

    store = open_store()
    store.customer_key("c")
    stopped: list[str] = []  # what the worker's watch hands to stop_worker
    watch = KeyStoreWatch(Settings(data_dir=tmp_path, key_store="kafka"), stopped.append)
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    admin.delete_topics([topic])
    admin.close()

    def refused() -> bool:
        try:
            store.is_opted_out("c")
        except MayakError as exc:
            assert "lost its records" in str(exc) and "mayak keys restore" in str(exc)
            return True
        return False

    took = _until(refused, 60)
    print(f"the store refused {took:.1f}s after its topic was deleted")
    assert len(stopped) == 1 and "lost its records" in stopped[0]
    watch.stop()


def test_a_store_with_another_master_secret_is_refused_at_start(open_store) -> None:
    from anonymizer.keyrecords import WrongMasterKey

    open_store().customer_key("c")
    with pytest.raises(WrongMasterKey, match="every worker must use the same MAYAK_IP_KEY"):
        open_store(secrets.token_bytes(32))
