"""docker-compose.yml cannot run here (no Docker engine), so check it against the code instead."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.main import get_command

from mayak.cli import app
from mayak.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _project_services(compose: dict) -> dict:
    return {name: svc for name, svc in compose["services"].items() if "build" in svc}


def test_compose_has_the_production_stack() -> None:
    services = _compose()["services"]
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert services["clickhouse"]["image"].startswith("clickhouse/clickhouse-server:")
    assert {"collector", "enrich", "sink", "dashboards"} <= set(_project_services(_compose()))


def test_every_mayak_setting_in_compose_exists_in_settings() -> None:
    fields = set(Settings.model_fields)
    for name, service in _project_services(_compose()).items():
        for key in service["environment"]:
            assert key.startswith("MAYAK_"), f"{name}: {key} is not a Mayak setting"
            assert key.removeprefix("MAYAK_").lower() in fields, f"{name}: unknown setting {key}"


def test_every_compose_command_is_a_mayak_command() -> None:
    commands = get_command(app).commands  # type: ignore[attr-defined]
    for name, service in _project_services(_compose()).items():
        assert service["command"][0] in commands, f"{name}: `mayak {service['command'][0]}` missing"


def test_production_compose_points_at_a_clickhouse_server() -> None:
    for service in _project_services(_compose()).values():
        assert service["environment"]["MAYAK_CLICKHOUSE_DSN"].startswith("http://")


def test_collector_and_workers_share_one_ip_key_and_the_read_side_its_data() -> None:
    compose = _compose()
    services = _project_services(compose)
    # the collector encrypts IPs, the enrich workers decrypt them: one key from the environment
    for name in ("collector", "enrich"):
        assert services[name]["environment"]["MAYAK_IP_KEY"].startswith("${MAYAK_IP_KEY:?"), name
    # every enrich replica and the dashboards (erasure destroys keys there) open one key
    # store, on any host: the shared one in Kafka (a local file would be one per container)
    for name in ("enrich", "dashboards"):
        env = services[name]["environment"]
        assert env.get("MAYAK_KEY_STORE") == "kafka" and "MAYAK_KEYSTORE_PATH" not in env, name
    assert "volumes" not in services["enrich"]  # stateless apart from Kafka
    # and the dashboards need the tokens file (they fail closed without it) in their data dir
    data_dir = services["dashboards"]["environment"]["MAYAK_DATA_DIR"]
    assert any(v.endswith(":" + data_dir) for v in services["dashboards"]["volumes"])


def test_compose_splits_the_stream_work_by_role() -> None:
    services = _project_services(_compose())
    assert services["enrich"]["command"] == ["worker", "--role", "enrich"]
    assert services["enrich"]["deploy"]["replicas"] >= 2  # several, one consumer group
    assert services["sink"]["command"][:3] == ["worker", "--role", "sink"]
    assert "deploy" not in services["sink"]  # one sink
    # enrich and sink derive their groups from one worker id (mayak-worker, mayak-worker-sink)
    ids = {services[n]["environment"]["MAYAK_WORKER_ID"] for n in ("enrich", "sink")}
    assert len(ids) == 1


def test_every_long_running_service_restarts_and_the_one_shots_do_not() -> None:
    # a worker that stops on purpose (nothing committed) must come back by itself
    services = _compose()["services"]
    long_running = {"kafka", "clickhouse", "collector", "enrich", "sink", "dashboards"}
    assert long_running | {"init", "migrate"} == set(services)
    for name in long_running:
        assert services[name].get("restart") == "unless-stopped", name
    for name in ("init", "migrate"):  # depended on as "completed successfully"
        assert "restart" not in services[name], name


def test_the_production_collector_takes_only_the_portals_origins(monkeypatch) -> None:
    """The default sites include ``demo``, open to any Origin for ``mayak up --demo``: in
    production anyone could fill the warehouse under it."""
    env = _project_services(_compose())["collector"]["environment"]
    monkeypatch.setenv("MAYAK_COLLECTOR_SITES", env["MAYAK_COLLECTOR_SITES"])
    sites = Settings().collector_sites
    assert list(sites) == ["elegal"]
    assert all(glob.startswith("https://") and "e-legal.az" in glob for glob in sites["elegal"])
