"""The dashboards API against chDB: roles, audit of every call, reports, research suppression,
admin erasure/export, campaign sends."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from starlette.testclient import TestClient

from anonymizer.keystore import KeyStore
from anonymizer.pseudonym import customer_pid
from dashboards.app import create_app
from dashboards.auth import add_token, tokens_path
from mayak.settings import Settings
from tests.warehouse.samples import START, insert_events, insert_rows, synthetic_events
from warehouse.metrics import WEB_TYPES

pytestmark = pytest.mark.clickhouse
RANGE = {"site": "s1", "from": str(START.date()), "to": str(START.date() + timedelta(days=3))}


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path, dashboards_host="127.0.0.1")


@pytest.fixture
def keys(tmp_path):
    store = KeyStore(tmp_path / "keys.db")
    yield store
    store.close()


@pytest.fixture
def rows(wh) -> list[dict]:
    data = synthetic_events()
    insert_events(wh, data)
    return data


def _client(settings, wh, keys=None) -> TestClient:
    return TestClient(create_app(settings, wh, keys))


def _audit(wh) -> list[tuple]:
    return wh.query(
        "SELECT actor, role, endpoint, cells, status FROM query_audit ORDER BY ts"
    ).result_rows


def test_product_access_needs_a_token(settings, wh, rows) -> None:
    token = add_token(tokens_path(settings), "ana.product", "product")
    api = _client(settings, wh)
    auth = {"Authorization": f"Bearer {token}"}
    summary = api.get("/api/stats/summary", params=RANGE, headers=auth).json()
    assert summary["pageviews"] == sum(r["event_type"] == "pageview" for r in rows)
    # web visitors only: e-mail openers and service requesters are not visitors of the site
    assert summary["visitors"] == len(
        {r["visitor_id"] for r in rows if r["event_type"] in WEB_TYPES}
    )
    assert api.get("/api/stats/summary", headers=auth).status_code == 400  # no site
    assert api.get("/api/stats/summary", params=RANGE).status_code == 401  # no anonymous access
    assert api.get("/api/research/query", params=RANGE, headers=auth).status_code == 403
    assert api.post("/api/admin/erase", json={"customer": "x"}, headers=auth).status_code == 403
    assert [(a, r, e, s) for a, r, e, _, s in _audit(wh)] == [
        ("ana.product", "product", "stats/summary", 200),
        ("ana.product", "product", "stats/summary", 400),
        ("unauthenticated", "", "stats/summary", 401),
        ("ana.product", "product", "research/query", 403),
        ("ana.product", "product", "admin/erase", 403),
    ]


def test_tokens_and_roles(settings, wh, rows) -> None:
    product = add_token(tokens_path(settings), "ana.product", "product")
    researcher = add_token(tokens_path(settings), "rza.research", "researcher")
    assert "ana.product" in tokens_path(settings).read_text()
    assert product not in tokens_path(settings).read_text()  # only digests are stored
    api = _client(settings, wh)
    assert api.get("/api/stats/summary", params=RANGE).status_code == 401
    assert (
        api.get(
            "/api/stats/summary", params=RANGE, headers={"Authorization": "Bearer wrong"}
        ).status_code
        == 401
    )
    as_product = {"Authorization": f"Bearer {product}"}
    as_researcher = {"Authorization": f"Bearer {researcher}"}
    breakdown = api.get(
        "/api/stats/breakdown",
        headers=as_product,
        params={**RANGE, "dimensions": "country", "metrics": "pageviews"},
    ).json()
    assert breakdown["source"] == "agg_dim_hourly"
    assert {r["country"] for r in breakdown["rows"]} == {r["country"] for r in rows}
    assert api.get("/api/research/query", headers=as_product, params=RANGE).status_code == 403
    assert api.get("/api/stats/summary", headers=as_researcher, params=RANGE).status_code == 403
    bad = api.get(
        "/api/stats/breakdown", headers=as_product, params={**RANGE, "dimensions": "visitor_id"}
    )
    assert bad.status_code == 400 and "unknown dimension" in bad.json()["error"]
    audit = _audit(wh)
    assert [(a, s) for a, _, _, _, s in audit] == [
        ("unauthenticated", 401),
        ("unauthenticated", 401),
        ("ana.product", 200),
        ("ana.product", 403),
        ("rza.research", 403),
        ("ana.product", 400),
    ]
    assert audit[2][3] == 2 * len(breakdown["rows"])  # cells: columns x rows


def test_research_publishes_no_small_cell_and_no_suppressed_count(settings, wh, rows) -> None:
    token = add_token(tokens_path(settings), "rza", "researcher")
    api = _client(settings, wh)
    got = api.get(
        "/api/research/query",
        headers={"Authorization": f"Bearer {token}"},
        params={**RANGE, "dimensions": "country,device_type", "metrics": "pageviews"},
    ).json()
    # 60 visitors over 18 cells: none comes near the private threshold, and the answer does
    # not say how many cells exist (the old `suppressed_cells` was an oracle)
    threshold = got["privacy"]["noise"]["visitors"]["threshold"]
    assert threshold > 40 and got["rows"] == []
    assert "suppressed_cells" not in got and "total" not in str(got)
    assert got["cost"]["epsilon"] == 1.0 and got["budget"]["left_epsilon"] == 4.0


def test_campaign_sends_and_open_rates(settings, wh, rows) -> None:
    token = add_token(tokens_path(settings), "mia.marketing", "marketing")
    auth = {"Authorization": f"Bearer {token}"}
    api = _client(settings, wh)
    posted = api.post(
        "/api/marketing/campaigns/spring/sends",
        headers=auth,
        json={"site": "s1", "sent": 120, "sent_on": str(START.date())},
    )
    assert posted.status_code == 200 and posted.json()["sent"] == 120
    assert (
        api.post(
            "/api/marketing/campaigns/spring/sends", headers=auth, json={"site": "s1", "sent": -3}
        ).status_code
        == 400
    )
    report = api.get("/api/marketing/campaigns", headers=auth, params=RANGE).json()
    spring = next(c for c in report["campaigns"] if c["campaign_id"] == "spring")
    assert spring["sent"] == 120 and spring["open_rate"] == round(spring["unique_opens"] / 120, 4)
    assert api.get("/api/stats/breakdown", headers=auth, params=RANGE).status_code == 403


def test_admin_erase_and_export_over_the_api(settings, wh, keys) -> None:
    uid = "customer-881"
    pid = customer_pid(keys.customer_key(uid), uid)
    insert_events(
        wh,
        [
            {
                "event_id": uuid.uuid4(),
                "event_type": "service_request",
                "site_id": "s1",
                "ts": START,
                "customer_pid": pid,
                "visitor_id": "v9",
                "session_id": "x9",
            }
        ],
    )
    token = add_token(tokens_path(settings), "root", "admin")
    auth = {"Authorization": f"Bearer {token}"}
    api = _client(settings, wh, keys)
    exported = api.post("/api/admin/export", headers=auth, json={"customer": uid}).json()
    assert [e["customer_pid"] for e in exported["events"]] == [pid]
    done = api.post("/api/admin/erase", headers=auth, json={"customer": uid, "opt_out": True})
    assert done.json() == {
        "subject": pid,
        "rows_deleted": {"events": 1, "sessions": 1, "failed_events": 0},
        "key_destroyed": True,
        "opted_out": True,
    }
    assert api.post("/api/admin/export", headers=auth, json={"customer": uid}).json() == {
        "events": []
    }
    assert api.post("/api/admin/erase", headers=auth, json={}).status_code == 400
    audit_rows = api.get("/api/admin/audit", headers=auth).json()["queries"]
    assert uid not in str(audit_rows) and uid not in str(
        wh.query("SELECT * FROM erasure_log").result_rows
    )
    assert {q["endpoint"] for q in audit_rows} == {"admin/export", "admin/erase"}


def test_cli_token_is_admin_and_page_is_served(settings, wh) -> None:
    api = _client(settings, wh)
    token = (settings.data_dir / "keys" / "cli-admin.token").read_text()
    assert oct((settings.data_dir / "keys" / "cli-admin.token").stat().st_mode)[-3:] == "600"
    assert (
        api.get("/api/admin/audit", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    )
    page = api.get("/")
    assert page.status_code == 200 and "/static/product.js" in page.text
    assert "stats/breakdown" in api.get("/static/product.js").text


def test_event_details_over_the_api(settings, wh) -> None:
    at = START + timedelta(hours=12)

    def event(kind: str, visitor: str, **fields) -> dict:
        return {
            "event_id": uuid.uuid4(),
            "event_type": kind,
            "site_id": "s1",
            "ts": at,
            "visitor_id": visitor,
            "session_id": f"s-{visitor[1:]}",
            "path": "/a",
            "event_name": "",
            "props": {},
            "outbound_url": "",
            "section_names": [],
            "section_ms": [],
            **fields,
        }

    insert_rows(
        wh,
        [
            event("pageview", "v1"),
            event("pageview", "v2"),
            event("engagement", "v1", section_names=["intro", "fees"], section_ms=[4114, 3002]),
            event("custom", "v1", event_name="download", props={"format": "pdf"}),
            event("outbound", "v2", outbound_url="https://gov.az/x"),
        ],
    )
    api = _client(settings, wh)
    api.headers["Authorization"] = f"Bearer {add_token(tokens_path(settings), 'pm', 'product')}"

    def get(endpoint: str, **params) -> dict:
        answer = api.get(f"/api/stats/{endpoint}", params={**RANGE, **params})
        assert answer.status_code == 200, answer.text
        return answer.json()

    secs = get("breakdown", dimensions="section", metrics="visitors,section_seconds")["rows"]
    assert sorted(secs, key=lambda r: r["section"]) == [
        {"section": "fees", "visitors": 1, "section_seconds": 3},
        {"section": "intro", "visitors": 1, "section_seconds": 4},
    ]
    assert get("breakdown", dimensions="event_name", metrics="events,visitors")["rows"] == [
        {"event_name": "download", "events": 1, "visitors": 1}
    ]
    assert get("breakdown", dimensions="prop:format", metrics="events")["rows"] == [
        {"prop:format": "pdf", "events": 1}
    ]
    assert get("breakdown", dimensions="outbound_url", metrics="events")["rows"] == [
        {"outbound_url": "https://gov.az/x", "events": 1}
    ]
    report = {r["section"]: r for r in get("sections", path="/a")["rows"]}
    assert (report["intro"]["reach"], report["intro"]["readers"]) == (0.5, 2)
    bad = api.get("/api/stats/breakdown", params={**RANGE, "dimensions": "prop:a b"})
    assert bad.status_code == 400 and "prop:<key>" in bad.json()["error"]
