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
    assert {"collector", "worker", "dashboards"} <= set(_project_services(_compose()))


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
