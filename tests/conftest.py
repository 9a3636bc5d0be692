"""Shared fixtures: a real throw-away Kafka broker, and stacks of real Mayak child processes.

Tests that need the broker are marked ``kafka``, those that open chDB ``clickhouse`` and the
browser ones ``browser``; every other test is a unit test, marked ``unit`` and kept from Kafka
and chDB by ``tests/tiers.py``; ``scripts/fast`` (``pytest -m unit``) runs those only. One
pytest process can open one chDB path: tests that read what a worker wrote go through
``mayak sql`` in a child process, after the worker has stopped.
"""

from __future__ import annotations

import signal
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from mayak.kafka_local import LocalBroker, free_port
from mayak.procs import mayak_sql, settings_for, spawn_mayak, stop_process, wait_http_ok
from mayak.settings import Settings
from stream_jobs.topics import ensure_topics
from tests.brokers import private_broker
from tests.lanes import pytest_xdist_make_scheduler  # noqa: F401 - the suite's two lanes under -n 2
from tests.tiers import (  # noqa: F401 - the test tiers' hooks and guard, active for every test
    pytest_collection_modifyitems,
    pytest_runtest_setup,
    unit_tier_guard,
)
from tests.warehouse.samples import drop, fresh_database
from warehouse.migrate import migrate


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    """A real single-node Kafka broker on free ports for the whole session, always stopped."""
    with private_broker(tmp_path_factory.mktemp("kafka"), heap_mb=512, timeout=120) as broker:
        yield broker


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_broker: LocalBroker) -> str:
    return kafka_broker.bootstrap


@dataclass
class StackProcs:
    """Settings (as env) and child processes of one test's private Mayak stack."""

    env: dict[str, str]
    home: Path
    procs: dict = field(default_factory=dict)

    @property
    def settings(self) -> Settings:
        return settings_for(self.env)

    def start(self, name: str, *args: str) -> None:
        self.procs[name] = spawn_mayak(list(args or [name]), self.home / f"{name}.log", self.env)

    def start_worker(self) -> None:
        self.start("worker", "worker", "--dashboards")
        wait_http_ok(
            {"dashboards": f"{self.settings.dashboards_url}/healthz"},
            {"worker": self.procs["worker"]},
            logs=self.home,
        )

    def start_collector(self) -> None:
        self.start("collector")
        wait_http_ok(
            {"collector": f"{self.settings.collector_url}/healthz"},
            {"collector": self.procs["collector"]},
            logs=self.home,
        )

    @property
    def api_headers(self) -> dict[str, str]:
        """The CLI's admin token (the worker creates it): the API has no anonymous access."""
        from dashboards.auth import cli_token_path

        return {"Authorization": f"Bearer {cli_token_path(self.settings).read_text().strip()}"}

    def stop(self, name: str, timeout: float = 30.0, sig: int = signal.SIGTERM) -> int:
        return stop_process(self.procs.pop(name), timeout, sig)

    def sql(self, query: str) -> list[dict]:
        """Read ClickHouse through a child process; the worker must be stopped first."""
        assert "worker" not in self.procs, "stop the worker before reading its chDB path"
        return mayak_sql(query, self.env)

    def log(self, name: str) -> str:
        path = self.home / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""


@pytest.fixture
def stack(tmp_path: Path, kafka_bootstrap: str) -> Iterator[StackProcs]:
    """A private stack: own data dir, topics, ports and consumer group on the shared broker."""
    tag = uuid.uuid4().hex[:8]
    env = {
        "MAYAK_DATA_DIR": str(tmp_path / "data"),
        "MAYAK_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "MAYAK_TOPIC_RAW": f"t{tag}.raw",
        "MAYAK_TOPIC_EVENTS": f"t{tag}.events",
        "MAYAK_TOPIC_FAILED": f"t{tag}.failed",
        "MAYAK_WORKER_ID": f"worker-{tag}",
        "MAYAK_COLLECTOR_PORT": str(free_port()),
        "MAYAK_DASHBOARDS_PORT": str(free_port()),
        "MAYAK_WORKER_WEB_PORT": str(free_port()),
    }
    procs = StackProcs(env=env, home=tmp_path)
    ensure_topics(procs.settings)
    try:
        yield procs
    finally:
        for name in list(procs.procs):
            procs.stop(name)


@pytest.fixture
def ch() -> Iterator[Client]:
    """An empty database of its own in this process's one chDB path (a process opens one)."""
    client = fresh_database()
    try:
        yield client
    finally:
        drop(client)


@pytest.fixture
def wh(ch: Client) -> Client:
    """A database of its own with every migration applied."""
    migrate(ch)
    return ch
