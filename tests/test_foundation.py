"""Settings, the local-broker manager and the CLI's error messages (no services needed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mayak import kafka_local
from mayak.errors import MayakError
from mayak.kafka_local import LocalBroker, broker_from_settings
from mayak.settings import Settings


def test_settings_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MAYAK_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MAYAK_KAFKA_BOOTSTRAP", "127.0.0.1:19092")
    settings = Settings()
    assert settings.kafka_bootstrap == "127.0.0.1:19092"
    assert settings.clickhouse_dsn == f"chdb://{tmp_path.resolve()}/clickhouse"
    assert settings.embedded_clickhouse


def test_a_server_dsn_is_not_embedded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAYAK_CLICKHOUSE_DSN", "http://ch:8123")
    assert not Settings().embedded_clickhouse


def test_missing_maven_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(kafka_local.shutil, "which", lambda name: None if name == "mvn" else "/x")
    with pytest.raises(MayakError, match="install maven"):
        kafka_local.ensure_jars(tmp_path, "3.9.2")


def test_missing_java_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(kafka_local.shutil, "which", lambda name: None if name == "java" else "/x")
    with pytest.raises(MayakError, match="install openjdk"):
        kafka_local.ensure_jars(tmp_path, "3.9.2")


def test_cli_prints_one_line_error_without_traceback(tmp_path: Path) -> None:
    env = {
        "PATH": "/nonexistent",
        "HOME": str(tmp_path),
        "MAYAK_DATA_DIR": str(tmp_path),
        "MAYAK_KAFKA_BOOTSTRAP": "127.0.0.1:1",
    }
    result = subprocess.run(
        [sys.executable, "-m", "mayak", "kafka", "fetch"], env=env, capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "install openjdk" in result.stderr
    assert "Traceback" not in result.stderr


def test_remote_bootstrap_is_not_managed_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAYAK_KAFKA_BOOTSTRAP", "kafka:9092")
    with pytest.raises(MayakError, match="not local"):
        broker_from_settings(Settings())


def test_stopped_broker_reports_stopped(tmp_path: Path) -> None:
    broker = LocalBroker(home=tmp_path, cache_dir=tmp_path)
    assert broker.status() == "stopped"
    assert broker.stop() is False


@pytest.mark.kafka
def test_broker_restarts_with_its_topics(kafka_broker: LocalBroker) -> None:
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    admin = KafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap)
    admin.create_topics([NewTopic("foundation.restart", 1, 1)])
    admin.close()
    kafka_broker.stop()
    assert kafka_broker.status() == "stopped"
    kafka_broker.start()
    assert kafka_broker.status().startswith("running")
    admin = KafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap)
    assert "foundation.restart" in admin.list_topics()
    admin.close()


def test_cluster_ids_never_look_like_options() -> None:
    ids = {kafka_local.new_cluster_id() for _ in range(2000)}
    assert len(ids) == 2000
    # about 1 in 64 raw ids starts with '-': 2000 draws would almost surely show one
    assert not any(i.startswith("-") for i in ids)
    assert all(len(i) == 22 for i in ids)
