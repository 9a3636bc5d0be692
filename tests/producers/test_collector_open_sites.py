"""`mayak collector` warns when it listens beyond this host with a site open to any Origin (the
default's demo site): on a network, any web page could fill the warehouse under that site."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import uvicorn
from typer.testing import CliRunner

from mayak.cli import app
from producers.collector.door import sites_open_to_any_origin


def _start(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **env: str) -> tuple[str, dict]:
    started: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda target, **kwargs: started.update(kwargs))
    monkeypatch.setenv("MAYAK_DATA_DIR", str(tmp_path))
    for name in ("MAYAK_COLLECTOR_HOST", "MAYAK_COLLECTOR_SITES"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(app, ["collector"])
    assert result.exit_code == 0, result.output
    return result.stderr, started


def test_the_default_demo_site_on_a_network_address_is_warned_about(monkeypatch, tmp_path) -> None:
    err, started = _start(monkeypatch, tmp_path, MAYAK_COLLECTOR_HOST="0.0.0.0")
    assert started["host"] == "0.0.0.0"  # it still starts: a warning, not a refusal
    assert "takes events for demo from any Origin" in err
    assert "MAYAK_COLLECTOR_SITES" in err


@pytest.mark.parametrize(
    "env",
    [
        {},  # the default host, 127.0.0.1: the local demo
        {
            "MAYAK_COLLECTOR_HOST": "0.0.0.0",
            "MAYAK_COLLECTOR_SITES": '{"elegal": ["https://e-legal.az"]}',
        },
    ],
)
def test_no_warning_on_this_host_or_with_the_sites_own_origins(monkeypatch, tmp_path, env) -> None:
    err, started = _start(monkeypatch, tmp_path, **env)
    assert started and "any Origin" not in err


def test_sites_open_to_any_origin() -> None:
    sites = {"demo": ["*"], "b": ["https://b.az", " * "], "c": ["https://*.c.az"], "d": []}
    assert sites_open_to_any_origin(sites) == ["b", "demo"]
