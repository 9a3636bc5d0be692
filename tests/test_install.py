"""The data directory fails closed (issue 16): private modes, and no new keys minted beside
an earlier install's data (mayak/install.py)."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from anonymizer.keystore import KeyStore, keystore_path
from dashboards.auth import add_token, tokens_path
from mayak.errors import MayakError
from mayak.install import (
    KeyStoreWatch,
    check_install,
    marker_path,
    warehouse_evidence,
    worker_offsets_evidence,
)
from mayak.kafka_local import free_port
from mayak.settings import Settings


def _settings(tmp_path: Path, **kw) -> Settings:
    return Settings(data_dir=tmp_path / "data", **kw)


def test_fresh_data_dir_is_private_and_marked(tmp_path) -> None:
    settings = _settings(tmp_path)
    install_id = check_install(settings)
    assert stat.S_IMODE(settings.data_dir.stat().st_mode) == 0o700
    assert marker_path(settings).read_text().strip() == install_id
    assert stat.S_IMODE(marker_path(settings).stat().st_mode) == 0o600
    assert stat.S_IMODE(keystore_path(settings).stat().st_mode) == 0o600
    assert check_install(settings) == install_id  # the next start: same install


def test_world_readable_data_dir_is_tightened(tmp_path) -> None:
    settings = _settings(tmp_path)
    settings.data_dir.mkdir(mode=0o755)
    settings.data_dir.chmod(0o755)
    check_install(settings)
    assert stat.S_IMODE(settings.data_dir.stat().st_mode) == 0o700


@pytest.mark.parametrize("left", ["marker", "warehouse", "offsets"])
def test_missing_key_store_beside_earlier_data_refuses_to_start(tmp_path, left) -> None:
    settings = _settings(tmp_path)
    settings.data_dir.mkdir()
    extra = []
    if left == "marker":
        check_install(settings)
        keystore_path(settings).unlink()
    elif left == "warehouse":
        extra = ["events in the warehouse (database x)"]
    else:
        extra = ["committed Kafka offsets of consumer group 'w'"]
    with pytest.raises(MayakError) as refused:
        check_install(settings, sources=[lambda: extra])
    message = str(refused.value)
    assert f"the key store {keystore_path(settings)} is missing" in message
    assert "MAYAK_KEYSTORE_PATH" in message and "mayak up --reset-keys" in message
    assert not keystore_path(settings).exists()  # nothing was minted
    new_id = check_install(settings, reset_keys=True, sources=[lambda: extra])  # deliberately
    assert keystore_path(settings).exists() and marker_path(settings).read_text().strip() == new_id


def test_tokens_made_before_the_first_start_are_no_evidence(tmp_path) -> None:
    settings = _settings(tmp_path)
    settings.data_dir.mkdir()
    add_token(tokens_path(settings), "ana", "product")  # `mayak token add` before `mayak up`
    check_install(settings)
    assert keystore_path(settings).exists()


def test_key_store_of_another_install_is_refused(tmp_path) -> None:
    settings = _settings(tmp_path)
    first = check_install(settings)
    other = tmp_path / "other.db"
    KeyStore(other).close()
    moved = _settings(tmp_path, keystore_path=str(other))
    with pytest.raises(MayakError, match="belongs to another install"):
        check_install(moved)
    assert marker_path(settings).read_text().strip() == first


def test_watch_notices_the_key_store_vanishing(tmp_path) -> None:
    settings = _settings(tmp_path)
    check_install(settings)
    lost: list[str] = []
    seen = threading.Event()
    watch = KeyStoreWatch(settings, lambda m: (lost.append(m), seen.set()), interval=0.05).start()
    try:
        assert not seen.wait(0.3)  # nothing happened yet
        os.unlink(keystore_path(settings))
        assert seen.wait(5)
    finally:
        watch.stop()
    assert f"{keystore_path(settings)} was removed or replaced" in lost[0]
    assert "--reset-keys" in lost[0]


@pytest.mark.clickhouse
def test_events_in_the_warehouse_count_as_an_earlier_install(ch) -> None:
    from tests.warehouse.samples import insert_events, synthetic_events
    from warehouse.migrate import migrate

    assert warehouse_evidence(ch) == []  # nothing yet
    migrate(ch)
    assert warehouse_evidence(ch) == []  # `mayak migrate` before the first start is fine
    insert_events(ch, synthetic_events(3))
    assert warehouse_evidence(ch) == [f"events in the warehouse (database {ch.database})"]


def test_cli_key_store_users_refuse_a_lost_store(tmp_path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from mayak.cli import app

    settings = _settings(tmp_path)
    check_install(settings)
    keystore_path(settings).unlink()
    monkeypatch.setenv("MAYAK_DATA_DIR", str(settings.data_dir))
    result = CliRunner().invoke(app, ["opt-out", "customer-1"])
    assert result.exit_code != 0 and "is missing" in str(result.exception)
    assert not keystore_path(settings).exists()


def test_evidence_is_gathered_only_when_the_key_store_is_missing(tmp_path) -> None:
    """A Kafka admin client and an events count cost seconds at every start: they are asked
    only when there is no key store (and then the cheapest first)."""
    settings = _settings(tmp_path)
    asked = []

    def source(name: str, found: list[str]):
        return lambda: asked.append(name) or found

    check_install(settings, sources=[source("warehouse", []), source("kafka", [])])
    assert asked == ["warehouse", "kafka"]  # fresh: both asked, nothing found, keys created
    asked.clear()
    check_install(settings, sources=[source("warehouse", ["x"]), source("kafka", ["y"])])
    assert asked == []  # the key store is there: nothing to ask
    keystore_path(settings).unlink()
    marker_path(settings).unlink()
    with pytest.raises(MayakError, match="is missing, but events"):
        check_install(
            settings,
            sources=[
                source("warehouse", ["events in the warehouse"]),
                source("kafka", ["offsets"]),
            ],
        )
    assert asked == ["warehouse"]  # found: Kafka is not asked


@pytest.mark.kafka  # a Kafka client connects (to a socket that never answers)
def test_a_broker_that_cannot_answer_fails_closed(tmp_path) -> None:
    """Key store missing, broker down: a clear error saying to start it; no new keys."""
    settings = _settings(tmp_path, kafka_bootstrap=f"127.0.0.1:{free_port()}")
    with pytest.raises(MayakError) as refused:
        check_install(settings, sources=[lambda: worker_offsets_evidence(settings)])
    message = str(refused.value)
    assert f"Kafka at {settings.kafka_bootstrap} cannot say" in message
    assert "start the broker" in message and "mayak up --reset-keys" in message
    assert not keystore_path(settings).exists()  # nothing was minted
    check_install(
        settings,
        reset_keys=True,  # deliberately new keys: Kafka is not asked
        sources=[lambda: worker_offsets_evidence(settings)],
    )
    assert keystore_path(settings).exists()


class _Admin:
    """A fake kafka-python admin client answering ``list_group_offsets`` with ``error``."""

    error: Exception | None = None
    calls = 0

    def __init__(self, **_) -> None:
        pass

    def list_group_offsets(self, groups: dict) -> dict:
        _Admin.calls += 1
        raise _Admin.error

    def close(self) -> None:
        pass


def test_offsets_evidence_fails_closed_unless_the_group_is_unknown(tmp_path, monkeypatch) -> None:
    """A group the broker does not know is "never consumed"; a coordinator that stays
    unavailable (retriable) past the wait, or any other error, stops the start."""
    import kafka
    from kafka.errors import (
        CoordinatorNotAvailableError,
        GroupAuthorizationFailedError,
        GroupIdNotFoundError,
    )

    monkeypatch.setattr(kafka, "KafkaAdminClient", _Admin)
    settings = _settings(tmp_path)
    _Admin.error = GroupIdNotFoundError()
    assert worker_offsets_evidence(settings) == []
    _Admin.error, _Admin.calls = GroupAuthorizationFailedError(), 0
    with pytest.raises(MayakError, match="start the broker"):
        worker_offsets_evidence(settings, wait_seconds=0.6)
    assert _Admin.calls == 1  # not retriable: at once
    _Admin.error, _Admin.calls = CoordinatorNotAvailableError(), 0
    with pytest.raises(MayakError, match="start the broker"):
        worker_offsets_evidence(settings, wait_seconds=0.6)
    assert _Admin.calls >= 2  # retriable: retried until the wait ran out
