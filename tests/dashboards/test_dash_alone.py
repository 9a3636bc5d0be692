"""`mayak dashboards`: the dashboards apart from the workers, against a ClickHouse server (the
scale-out layout: enrich workers, a sink, the dashboards). No server runs here: the client is
replaced, so this checks the command's wiring, not a real server."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from unittest.mock import MagicMock

import pytest
import uvicorn
from starlette.testclient import TestClient
from typer.testing import CliRunner

import warehouse.client
from mayak.cli import app
from mayak.settings import Settings


def test_dashboards_alone_serve_from_a_clickhouse_server_dsn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[Settings] = []
    served: dict[str, Any] = {}

    def client_from_settings(settings: Settings) -> MagicMock:
        opened.append(settings)
        return MagicMock(name="clickhouse", database="mayak")

    monkeypatch.setattr(warehouse.client, "client_from_settings", client_from_settings)
    monkeypatch.setattr(uvicorn, "run", lambda asgi, **kwargs: served.update(app=asgi, **kwargs))
    monkeypatch.setenv("MAYAK_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MAYAK_CLICKHOUSE_DSN", "http://mayak:secret@clickhouse:8123")
    monkeypatch.setenv("MAYAK_DASHBOARDS_HOST", "0.0.0.0")
    result = CliRunner().invoke(app, ["dashboards"])
    assert result.exit_code == 0, result.output
    assert [s.clickhouse_dsn for s in opened] == ["http://mayak:secret@clickhouse:8123"]
    assert (served["host"], served["port"]) == ("0.0.0.0", 8401)
    # the app reads the client's address itself (dashboards_trusted_proxies), not uvicorn
    assert served["proxy_headers"] is False
    assert TestClient(served["app"]).get("/healthz").text == "ok"
    # no token file: the API fails closed (503), it does not answer anonymously
    refused = TestClient(served["app"]).get("/api/stats/summary?site=elegal")
    assert refused.status_code == 503 and "no API tokens configured" in refused.text


def test_dashboards_alone_refuse_embedded_clickhouse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAYAK_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("MAYAK_CLICKHOUSE_DSN", raising=False)
    result = CliRunner().invoke(app, ["dashboards"])
    assert result.exit_code != 0
    assert "MAYAK_CLICKHOUSE_DSN=http://" in str(result.exception)
