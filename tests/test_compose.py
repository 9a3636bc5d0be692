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


def _keystore_file(service: dict, compose: dict) -> tuple[str, str]:
    """(volume, path inside it) of the key store a service opens (the settings' rule:
    MAYAK_KEYSTORE_PATH, else data_dir/keys/anonymizer.db)."""
    env = service["environment"]
    path = env.get("MAYAK_KEYSTORE_PATH") or f"{env['MAYAK_DATA_DIR']}/keys/anonymizer.db"
    for volume in service.get("volumes", []):
        name, mount = volume.split(":")[:2]
        if name in compose["volumes"] and path.startswith(mount.rstrip("/") + "/"):
            return name, path.removeprefix(mount.rstrip("/") + "/")
    raise AssertionError(f"the key store {path} is on no named volume")


def test_collector_and_workers_share_one_ip_key_and_the_read_side_its_data() -> None:
    compose = _compose()
    services = _project_services(compose)
    # the collector encrypts IPs, the enrich workers decrypt them: one key from the environment
    for name in ("collector", "enrich"):
        assert services[name]["environment"]["MAYAK_IP_KEY"].startswith("${MAYAK_IP_KEY:?"), name
    # every enrich replica and the dashboards (erasure destroys keys there) open one key store
    assert _keystore_file(services["enrich"], compose) == _keystore_file(
        services["dashboards"], compose
    )
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
