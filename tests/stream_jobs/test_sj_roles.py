"""Worker roles (``mayak worker --role enrich|sink|all``, ``stream_jobs.roles``): which agents,
tables and clients each role's process sets up, and what it refuses. No broker: the Faust
worker is replaced before it would start."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any
from unittest.mock import MagicMock

import pytest
from typer.testing import CliRunner

from mayak.errors import MayakError
from mayak.kafka_local import free_port
from mayak.procs import settings_for
from mayak.settings import Settings
from stream_jobs import worker as worker_module
from stream_jobs.app import agents_of
from stream_jobs.roles import (
    Role,
    adopt_offsets_of_all,
    check_role,
    group_id,
    refuse_a_second_embedded_sink,
    retrying,
)


class Started:
    """What ``run_worker`` did instead of starting Faust: the app, the clients it opened."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.app: Any = None
        self.clients: list[MagicMock] = []
        self.migrated: list[Any] = []
        self.watched = False
        self.dashboards: list[Any] = []
        self.adopted: list[Settings] = []
        self.alone: list[Settings] = []  # checked to be the only embedded sink

        def client_from_settings(settings: Settings) -> MagicMock:
            client = MagicMock(name="clickhouse")
            client.command.return_value = 0  # EXISTS TABLE events: a fresh warehouse
            self.clients.append(client)
            return client

        def quiet_worker(app: Any, loglevel: str = "warn") -> Any:
            self.app = app
            return MagicMock(name="faust-worker")

        def watch(*args: Any) -> Any:
            self.watched = True
            return MagicMock(name="watch")

        monkeypatch.setattr(worker_module, "client_from_settings", client_from_settings)
        monkeypatch.setattr(worker_module, "migrate", lambda c, **k: self.migrated.append(c))
        monkeypatch.setattr(worker_module, "quiet_worker", quiet_worker)
        monkeypatch.setattr(worker_module, "KeyStoreWatch", watch)
        monkeypatch.setattr(worker_module, "worker_offsets_evidence", lambda settings: [])
        monkeypatch.setattr(worker_module, "adopt_offsets_of_all", self.adopted.append)
        monkeypatch.setattr(worker_module, "refuse_a_second_embedded_sink", self.alone.append)
        monkeypatch.setattr(
            worker_module,
            "serve_dashboards_in_thread",
            lambda settings, client, factory: self.dashboards.append(client),
        )

    def agent_names(self) -> set[str]:
        return {agent.name.rsplit(".", 1)[-1] for agent in self.app.agents.values()}


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> Started:
    return Started(monkeypatch)


def _settings(tmp_path: Path, **kwargs: Any) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        worker_id="roles-test",
        kafka_bootstrap="127.0.0.1:1",
        **kwargs,
    )


def test_enrich_role_runs_the_enrich_agent_only_and_opens_no_clickhouse(
    tmp_path: Path, started: Started
) -> None:
    settings = _settings(tmp_path, keystore_path=str(tmp_path / "shared" / "keys.db"))
    worker_module.run_worker(settings, None, role=Role.ENRICH)
    assert started.clients == [] and started.migrated == []  # no ClickHouse at all
    assert started.adopted == []
    assert started.agent_names() == {"enrich"}
    agents = agents_of(started.app)
    assert agents.sink_events is None and agents.sink_failed is None
    assert agents.pipeline is not None and agents.coordinator.buffers == (
        agents.intake,
        agents.publisher,
    )
    assert set(started.app.tables) == {"sessions"}
    assert started.app.conf.id == "roles-test"  # the group of `all`: offsets carry over
    assert started.watched  # the key store it uses is watched
    assert (tmp_path / "shared" / "keys.db").exists()
    assert not (tmp_path / "data" / "clickhouse").exists()


def test_sink_role_lands_only_in_its_own_group_and_opens_no_key_store(
    tmp_path: Path, started: Started
) -> None:
    settings = _settings(tmp_path, clickhouse_dsn="http://127.0.0.1:1")
    worker_module.run_worker(settings, lambda s, c: None, role=Role.SINK)
    assert len(started.clients) == 1 and started.migrated == started.clients
    assert started.dashboards == started.clients  # the dashboards share its client
    assert started.agent_names() == {"sink_events", "sink_failed"}
    agents = agents_of(started.app)
    assert agents.enrich is None and agents.pipeline is None and agents.publisher is None
    assert len(agents.coordinator.buffers) == 2  # the two landing buffers, nothing else
    assert not started.app.tables  # no session table, so no changelog
    assert started.app.conf.id == "roles-test-sink" == group_id(settings, Role.SINK)
    assert not started.watched
    assert not (tmp_path / "data" / "keys").exists()  # mints nothing: no key store
    assert started.adopted == [settings]  # resumes where a worker of role all stopped
    assert started.alone == [settings]


def test_role_all_is_what_the_worker_always_was(tmp_path: Path, started: Started) -> None:
    settings = _settings(tmp_path, clickhouse_dsn="http://127.0.0.1:1")
    worker_module.run_worker(settings, None)  # the default role
    assert started.agent_names() == {"enrich", "sink_events", "sink_failed"}
    assert len(agents_of(started.app).coordinator.buffers) == 4
    assert set(started.app.tables) == {"sessions"}
    assert started.app.conf.id == "roles-test" and started.watched and started.adopted == []
    assert (tmp_path / "data" / "keys" / "anonymizer.db").exists()  # the local key store
    started.clients[0].command.assert_called_with("EXISTS TABLE events")  # asked for evidence


def test_enrich_role_refuses_a_key_store_of_its_own(tmp_path: Path, started: Started) -> None:
    with pytest.raises(MayakError, match=r"MAYAK_KEY_STORE=kafka.*MAYAK_KEYSTORE_PATH"):
        worker_module.run_worker(_settings(tmp_path), None, role=Role.ENRICH)
    assert started.app is None and not (tmp_path / "data" / "keys").exists()
    # `all` keeps the local key store of its data dir
    check_role(_settings(tmp_path), Role.ALL, dashboards=True)


def test_enrich_role_cannot_serve_the_dashboards(tmp_path: Path) -> None:
    settings = _settings(tmp_path, keystore_path=str(tmp_path / "keys.db"))
    with pytest.raises(MayakError, match="drop --dashboards"):
        check_role(settings, Role.ENRICH, dashboards=True)


@pytest.fixture
def cli_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []

    def run_worker(settings: Settings, dashboards: Any, loglevel: str, **kwargs: Any) -> None:
        calls.append({"dashboards": dashboards is not None, **kwargs})

    monkeypatch.setattr(worker_module, "run_worker", run_worker)
    return calls


def test_cli_role_choices_and_dashboards_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli_calls: list[dict[str, Any]]
) -> None:
    from mayak.cli import app

    monkeypatch.setenv("MAYAK_DATA_DIR", str(tmp_path))  # embedded ClickHouse
    runner = CliRunner()
    for args in ([], ["--role", "enrich"], ["--role", "sink"], ["--role", "all"]):
        assert runner.invoke(app, ["worker", *args]).exit_code == 0
    assert [(c["role"], c["dashboards"]) for c in cli_calls] == [
        (Role.ALL, True),
        (Role.ENRICH, False),  # it has no ClickHouse client to serve them from
        (Role.SINK, True),  # the one process that opens the chDB path
        (Role.ALL, True),
    ]


def test_cli_refuses_an_unknown_role(cli_calls: list[dict[str, Any]]) -> None:
    from mayak.cli import app

    result = CliRunner().invoke(app, ["worker", "--role", "bogus"])
    assert result.exit_code == 2 and cli_calls == []
    said = re.sub(r"[\s│]+", " ", result.output)  # rich wraps it in a box
    assert "Invalid value for '--role'" in said
    assert "'bogus' is not one of 'all', 'enrich', 'sink'" in said


@pytest.mark.kafka
def test_a_first_sink_resumes_where_the_worker_of_role_all_stopped(stack) -> None:
    from kafka import KafkaAdminClient, TopicPartition
    from kafka.structs import OffsetAndMetadata

    settings = stack.settings
    events, failed, raw = settings.topic_events, settings.topic_failed, settings.topic_raw
    legacy = {
        TopicPartition(events, 0): 5,
        TopicPartition(events, 1): 7,
        TopicPartition(failed, 0): 2,
        TopicPartition(raw, 0): 9,  # the enrich workers' (they keep the group of all)
    }
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    try:
        moved = {tp: OffsetAndMetadata(o, "", -1) for tp, o in legacy.items()}
        retrying(lambda: admin.alter_group_offsets(settings.worker_id, moved))  # a fresh broker
        said: list[str] = []
        adopted = adopt_offsets_of_all(settings, log=said.append)
        sink = group_id(settings, Role.SINK)
        landed = {tp: o for tp, o in legacy.items() if tp.topic != raw}
        assert adopted == landed
        committed = admin.list_group_offsets({sink: None})[sink]
        assert {tp: m.offset for tp, m in committed.items()} == landed
        assert said and "starts where" in said[0]
        # later starts keep the sink's own offsets, even once the group of all moved on
        admin.alter_group_offsets(
            settings.worker_id, {TopicPartition(events, 0): OffsetAndMetadata(50, "", -1)}
        )
        assert adopt_offsets_of_all(settings, log=said.append) == {}
        assert admin.list_group_offsets({sink: None})[sink][TopicPartition(events, 0)].offset == 5
    finally:
        admin.close()
    # a fresh install: no group of all, nothing to adopt (the sink reads from the start)
    fresh = settings.model_copy(update={"worker_id": f"{settings.worker_id}-fresh"})
    assert adopt_offsets_of_all(fresh, log=said.append) == {}


@pytest.mark.kafka
@pytest.mark.clickhouse
def test_a_second_embedded_sink_is_refused_while_the_first_runs(stack) -> None:
    from mayak.procs import spawn_mayak, wait_http_ok

    # the one embedded sink serves the dashboards too (by default: one process per chDB path)
    stack.start("sink", "worker", "--role", "sink", "--loglevel", "info")
    wait_http_ok({"dashboards": f"{stack.settings.dashboards_url}/healthz"}, stack.procs)
    second = {
        **stack.env,
        "MAYAK_DATA_DIR": str(stack.home / "other"),
        "MAYAK_DASHBOARDS_PORT": str(free_port()),
    }
    deadline = time.monotonic() + 120
    while "took partitions" not in stack.log("sink"):  # in the group
        assert time.monotonic() < deadline and stack.procs["sink"].poll() is None, stack.log("sink")
        time.sleep(0.3)
    with pytest.raises(MayakError, match="another sink is running in consumer group"):
        refuse_a_second_embedded_sink(settings_for(second), wait_seconds=0)
    proc = spawn_mayak(
        ["worker", "--role", "sink", "--loglevel", "info"], stack.home / "second.log", second
    )
    assert proc.wait(90) == 2  # after the killed-member grace: session timeout + 5 s
    said = re.sub(r"\s+", " ", stack.log("second"))
    assert "another sink is running" in said and "MAYAK_CLICKHOUSE_DSN=http://" in said
    assert not (stack.home / "other" / "clickhouse").exists()  # refused before opening one
    assert stack.procs["sink"].poll() is None  # the first one goes on
    stack.stop("sink")  # leaves the group: a sink may start again
    refuse_a_second_embedded_sink(settings_for(second), wait_seconds=15)
    # against a ClickHouse server several sinks share the group
    server = settings_for({**second, "MAYAK_CLICKHOUSE_DSN": "http://127.0.0.1:1"})
    refuse_a_second_embedded_sink(server, wait_seconds=0)
