"""The one OpenAPI description: every route of the dashboards and of the collector is in it,
with the roles the app enforces; it and its docs page are served without a token."""

from __future__ import annotations

import gzip
import re
from importlib import resources

import pytest
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from dashboards import openapi
from dashboards.app import create_app
from dashboards.auth import add_token, tokens_path
from mayak.settings import Settings
from producers.collector.app import create_app as create_collector

pytestmark = pytest.mark.clickhouse
METHODS = {"GET", "POST", "OPTIONS"}  # HEAD comes with GET


def _operations(app) -> dict[tuple[str, str], set[str] | None]:
    """(path, method) -> roles the route enforces (None: a public route)."""
    found = {}
    for route in app.routes:
        if isinstance(route, Mount):
            found[(f"{route.path}/{{asset}}", "get")] = None
        elif isinstance(route, Route):
            for method in route.methods & METHODS:
                found[(route.path, method.lower())] = getattr(route.endpoint, "roles", None)
    return found


def test_every_route_is_described_with_its_roles(tmp_path, wh) -> None:
    settings = Settings(data_dir=tmp_path, dashboards_host="127.0.0.1")
    spec = openapi.description()
    described = {
        (path, method): op
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
        if method != "servers"
    }
    dashboards = _operations(create_app(settings, wh))
    collector = create_collector(settings, outbox=object())
    served = {**_operations(collector.app), ("/e", "post"): None}  # POST /e bypasses routing
    for (path, method), roles in {**served, **dashboards}.items():
        assert (path, method) in described, f"{method.upper()} {path} is not described"
        op = described[(path, method)]
        assert set(op["x-roles"]) == (roles or set()), path
        assert op["responses"]["200"] and op["summary"]
        if roles:
            assert op["responses"]["401"] and op["responses"]["403"] and op["responses"]["429"]
            if any(p["name"] == "site" for p in op["parameters"]):  # unknown site, too heavy
                assert op["responses"]["404"] and op["responses"]["422"]
            assert "security" not in op  # the document's default: a bearer token
        else:
            assert op["security"] == []
    assert set(described) == set(served) | set(dashboards)  # and nothing that is not served
    for path in openapi.COLLECTOR_PATHS:
        assert spec["paths"][path]["servers"][0]["url"].endswith(":8400")
    research = spec["paths"]["/api/research/query"]["get"]
    assert next(p for p in research["parameters"] if p["name"] == "format")["schema"]["enum"] == [
        "json",
        "csv",
        "parquet",
    ]
    assert "application/vnd.apache.parquet" in research["responses"]["200"]["content"]
    export = spec["paths"]["/api/stats/export"]["get"]
    assert "requestBody" not in export
    assert "application/zip" in export["responses"]["200"]["content"]
    assert spec["openapi"].startswith("3.")
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_description_docs_and_assets_need_no_token(tmp_path, wh) -> None:
    settings = Settings(data_dir=tmp_path, dashboards_host="127.0.0.1")
    add_token(tokens_path(settings), "pm", "product")
    api = TestClient(create_app(settings, wh))
    spec = api.get("/openapi.json")
    assert spec.status_code == 200
    assert spec.json()["paths"]["/api/stats/funnel"]["get"]["x-roles"] == ["product", "admin"]
    docs = api.get("/docs")
    assert docs.status_code == 200 and "/openapi.json" in docs.text
    chart = api.get("/static/vendor/uPlot.iife.min.js", headers={"Accept-Encoding": "gzip"})
    assert chart.status_code == 200 and "uPlot" in chart.text
    assert chart.headers["content-encoding"] == "gzip"  # served compressed
    assert api.get("/api/stats/funnel", params={"site": "s1"}).status_code == 401


def test_pages_load_nothing_from_the_internet_and_stay_small() -> None:
    """Every page's scripts and styles are Mayak's own /static files (no CDN, no web font),
    and each page's assets stay small gzipped (the figures are in the README)."""
    static = resources.files("dashboards").joinpath("static")
    for page in ("index.html", "marketing.html", "research.html", "admin.html", "docs.html"):
        html = static.joinpath(page).read_text()
        assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', html)
        assert not re.search(r'(?:src|href)="(?:https?:)?//', html), page
        total = len(gzip.compress(html.encode(), 9))
        for asset in assets:
            body = static.joinpath(asset.removeprefix("/static/")).read_bytes()
            assert b"https://cdn" not in body and b"fonts.googleapis" not in body, asset
            total += len(gzip.compress(body, 9))
        assert total < 40_000, (page, total)  # the product page with uPlot: about 35 kB
