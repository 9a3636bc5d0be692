"""The product page in real headless Chromium (Debian's, over CDP: no browser is downloaded)
against the real app and chDB with demo-like data: the top line and the chart show what the
API answers, a row click filters every panel, a period shortcut and the compare toggle change
the figures as the API says, CSV downloads parse, the language switch works. Screenshots are
saved under build/test-artifacts/ (git-ignored)."""

from __future__ import annotations

import base64
import csv
import io
import json
import threading
import time
import uuid
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlparse
from zoneinfo import ZoneInfo

import pytest
import uvicorn
from starlette.testclient import TestClient

from dashboards.app import create_app
from dashboards.auth import add_token, tokens_path
from dashboards.serve import server_options
from mayak.kafka_local import free_port
from mayak.settings import REPORT_TIMEZONE, Settings
from tests.producers.chromium import Chromium, chromium_path
from tests.warehouse.samples import (
    START,
    fixed_visits,
    insert_events,
    insert_rows,
    synthetic_events,
)
from warehouse import visit_sample

pytestmark = [
    pytest.mark.clickhouse,
    pytest.mark.browser,
    pytest.mark.skipif(chromium_path() is None, reason="apt-get install chromium"),
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "build" / "test-artifacts"


class Served:
    """The dashboards app on a free local port (uvicorn in a thread of this process), with the
    server options every Mayak process serves them with (``dashboards.serve``)."""

    def __init__(self, app) -> None:
        self.port = free_port()
        options = {**server_options(Settings()), "host": "127.0.0.1", "port": self.port}
        self.server = uvicorn.Server(uvicorn.Config(app, **options))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def served(tmp_path, wh):
    rows = synthetic_events(600, site="demo")
    earlier = [
        {**r, "ts": r["ts"] - timedelta(days=7), "session_id": r["session_id"] + "-w"}
        for r in synthetic_events(300, site="demo", seed=2)
    ]
    web, non_web = fixed_visits("demo", day_offset=2)
    now = datetime.now(UTC).replace(tzinfo=None)
    live = [
        {**r, "ts": now - timedelta(minutes=1), "session_id": f"live-{i}", "visitor_id": f"l{i}"}
        for i, r in enumerate(web[:4])
    ]  # readers of the last minutes
    insert_events(wh, rows + earlier + web + non_web + live)
    signup = next(e for e in web if e["event_type"] == "custom")
    insert_rows(
        wh,
        [
            {
                "event_id": uuid.uuid4(),
                "event_type": "custom",
                "site_id": "demo",
                "ts": signup["ts"],
                "visitor_id": "vC",
                "session_id": "vC-1",
                "path": signup["path"],
                "event_name": "signup",
                "props": {"plan": "pro"},
                "country": "AZ",
                "device_type": "desktop",
            }
        ],
    )
    settings = Settings(data_dir=tmp_path, dashboards_host="127.0.0.1")
    token = add_token(tokens_path(settings), "pm", "product")
    app = create_app(settings, wh)
    server = Served(app)
    yield server, token, TestClient(app, headers={"Authorization": f"Bearer {token}"})
    server.stop()


@pytest.fixture
def browser():
    chrome = Chromium()
    chrome.send("Page.enable")
    yield chrome
    chrome.close()


def _wait_ready(chrome: Chromium, after: str = "", timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready = chrome.eval("document.body.dataset.ready || ''")
        if ready and ready != after:
            return ready
        time.sleep(0.1)
    raise TimeoutError(f"the page did not finish loading (after {after!r})")


def _click(chrome: Chromium, selector: str) -> None:
    assert chrome.eval(f"!!document.querySelector({json.dumps(selector)})"), selector
    chrome.eval(
        f"document.querySelector({json.dumps(selector)}).scrollIntoView({{block: 'center'}})"
    )
    chrome.click(selector)


def _act(chrome: Chromium, selector: str) -> None:
    """Click and wait for the page to load the new view."""
    before = chrome.eval("document.body.dataset.ready")
    _click(chrome, selector)
    _wait_ready(chrome, before)


def _screenshot(chrome: Chromium, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = chrome.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
    (ARTIFACTS / f"{name}.png").write_bytes(base64.b64decode(shot["data"]))


def _view(chrome: Chromium) -> list[tuple[str, str]]:
    """The page's API question (site, from, to, filters) from its own URL."""
    q = parse_qs(urlparse(chrome.eval("location.href")).query)
    view = chrome.eval("JSON.stringify(window.mayak.state)")
    state = json.loads(view)
    return [
        ("site", q["site"][0]),
        ("from", state["from"]),
        ("to", state["to"]),
        *(("filter", f) for f in q.get("filter", [])),
    ]


def _kpi(chrome: Chromium, name: str, part: str = "value") -> str:
    return chrome.eval(f"document.querySelector('[data-kpi={name}] .{part}').textContent")


def _panel(chrome: Chromium, panel: str) -> dict[str, str]:
    return chrome.eval(
        f"Object.fromEntries([...document.querySelectorAll('#{panel} .rows .row')]"
        ".map(r => [r.dataset.value, r.querySelector('.num').textContent]))"
    )


def _en(n: int) -> str:
    return f"{n:,}"


def test_product_page_in_chromium(served, browser, wh, monkeypatch) -> None:
    server, token, api = served
    base = f"http://127.0.0.1:{server.port}"
    browser.navigate(f"{base}/?site=demo&period=30d&lang=en")
    _wait_ready(browser)
    assert "mayak token add" in browser.eval("document.querySelector('#message').textContent")
    browser.eval(f"localStorage.setItem('mayak-token', {json.dumps(token)})")
    browser.navigate(f"{base}/?site=demo&period=30d&lang=en")
    ready = _wait_ready(browser)
    assert browser.eval("document.querySelector('#message').hidden")

    # the top line and the chart are the API's answers
    view = _view(browser)
    summary = api.get("/api/stats/summary", params=view).json()
    assert summary["visitors"] > 0 and _kpi(browser, "visitors") == _en(summary["visitors"])
    assert _kpi(browser, "pageviews") == _en(summary["pageviews"])
    series = api.get(
        "/api/stats/series",
        params=[*view, ("dimensions", "day"), ("metrics", "visitors"), ("limit", "1000")],
    )
    chart = browser.eval("window.mayak.chart.data[1]")
    assert sum(chart) == sum(r["visitors"] for r in series.json()["rows"]) > 0
    assert browser.eval("!!document.querySelector('#chart canvas')")
    assert browser.eval(
        "[...document.querySelectorAll('#heat [data-value]')].some(c => +c.dataset.value > 0)"
    )
    places = _panel(browser, "places")
    assert set(places) == {"AZ", "TR", "GE", "RU"}
    live = api.get("/api/stats/realtime", params={"site": "demo"}).json()
    assert live["visitors"] > 0
    assert browser.eval("document.querySelector('#live').textContent") == _en(live["visitors"])
    assert set(_panel(browser, "realtime")) == {p["path"] for p in live["pages"]}
    # ... and refreshes by itself (every 30 s)
    insert_events(
        wh,
        [
            {
                "event_id": uuid.uuid4(),
                "event_type": "pageview",
                "site_id": "demo",
                "ts": datetime.now(UTC).replace(tzinfo=None),
                "path": "/late",
                "visitor_id": "late",
                "session_id": "late-1",
                "country": "AZ",
            }
        ],
    )
    deadline = time.monotonic() + 45
    while (
        browser.eval("document.querySelector('#live').textContent") == _en(live["visitors"])
        and time.monotonic() < deadline
    ):
        time.sleep(0.2)
    assert browser.eval("document.querySelector('#live').textContent") == _en(live["visitors"] + 1)
    assert "/late" in _panel(browser, "realtime")

    # a funnel: the steps typed in, the visits per step as the API counts them
    browser.eval(
        "document.querySelector('#funnel textarea').value = 'page:/services/*\\nevent:signup'"
    )
    _act(browser, "#funnel button")
    view = _view(browser)
    funnel = api.get(
        "/api/stats/funnel", params=[*view, ("step", "page:/services/*"), ("step", "event:signup")]
    ).json()
    assert funnel["steps"][1]["visits"] == 1  # visitor C of the fixed visits
    assert browser.eval(
        "[...document.querySelectorAll('#funnel .step .num:nth-child(2)')].map(e => e.textContent)"
    ) == [_en(s["visits"]) for s in funnel["steps"]]
    assert "step=event%3Asignup" in browser.eval("location.search")
    assert not browser.eval("!!document.querySelector('#funnel .sampled')")  # exact
    assert not browser.eval("!!document.querySelector('#kpis .sampled')")
    _screenshot(browser, "product-30d")

    # a busy period (here: a threshold of one visit) is estimated from a sample, and says so
    monkeypatch.setattr(visit_sample, "SAMPLE_VISITS", 1)
    _act(browser, "#funnel button")
    share = api.get(
        "/api/stats/funnel", params=[*view, ("step", "page:/services/*"), ("step", "event:signup")]
    ).json()["sampled"]
    note = browser.eval("document.querySelector('#funnel .sampled').textContent")
    assert share and f"{share * 100:g}% sample" in note, note
    # ... the top line's bounce rate and visit duration too (a fresh load of the same view)
    url = browser.eval("location.href")
    browser.navigate(url)
    _wait_ready(browser)
    top = api.get("/api/stats/summary", params=view).json()
    assert top["sampled"] == share
    # the page shows the sampled answer (formatted by the page's own I18N.percent)
    shown = browser.eval(f"I18N.percent({json.dumps(top['bounce_rate'])})")
    assert _kpi(browser, "bounce_rate") == shown
    note = browser.eval("document.querySelector('#kpis .sampled').textContent")
    assert f"{share * 100:g}% sample" in note, note
    monkeypatch.undo()
    browser.navigate(url)
    _wait_ready(browser)
    assert not browser.eval("!!document.querySelector('#kpis .sampled')")
    _act(browser, "#funnel button")
    assert not browser.eval("!!document.querySelector('#funnel .sampled')")

    # a row click filters every panel, and the URL
    _act(browser, '#places .row[data-value="TR"]')
    assert "filter=country%3ATR" in browser.eval("location.search")
    view = _view(browser)
    assert ("filter", "country:TR") in view
    filtered = api.get("/api/stats/summary", params=view).json()
    assert filtered["visitors"] < summary["visitors"]
    assert _kpi(browser, "visitors") == _en(filtered["visitors"])
    devices = api.get(
        "/api/stats/breakdown",
        params=[*view, ("dimensions", "device_type"), ("metrics", "visitors,pageviews")],
    ).json()
    assert {k: v.split(" · ")[0] for k, v in _panel(browser, "devices").items()} == {
        r["device_type"]: _en(r["visitors"]) for r in devices["rows"]
    }
    assert set(_panel(browser, "places")) == {"TR"}
    series = api.get(
        "/api/stats/series",
        params=[*view, ("dimensions", "day"), ("metrics", "visitors"), ("limit", "1000")],
    )
    assert sum(browser.eval("window.mayak.chart.data[1]")) == sum(
        r["visitors"] for r in series.json()["rows"]
    )

    # a period shortcut, then the compare toggle
    before = datetime.now(ZoneInfo(REPORT_TIMEZONE)).date()
    _act(browser, '[data-period="7d"]')
    view = _view(browser)
    after = datetime.now(ZoneInfo(REPORT_TIMEZONE)).date()  # the click may cross Baku midnight
    assert dict(view)["from"] in {str(day - timedelta(days=6)) for day in (before, after)}
    week = api.get("/api/stats/summary", params=[*view, ("compare", "previous")]).json()
    assert _kpi(browser, "visitors") == _en(week["visitors"])
    assert _kpi(browser, "visitors", "change") == ""
    _act(browser, "#compare")
    assert "compare=previous" in browser.eval("location.search")
    change = week["change"]["visitors"]
    assert change is not None and week["previous"]["visitors"] > 0
    shown = _kpi(browser, "visitors", "change")
    assert shown == ("+" if change > 0 else "−") + f"{round(abs(change) * 100, 1):g}%"
    assert browser.eval("window.mayak.chart.data.length") == 3  # the previous period beside
    _screenshot(browser, "product-7d-compare")

    # the state is in the URL: a fresh load of it shows the same view
    url = browser.eval("location.href")
    browser.navigate(url)
    _wait_ready(browser)
    assert _kpi(browser, "visitors") == _en(week["visitors"])
    assert browser.eval("document.querySelector('#compare').checked")

    # a panel's CSV downloads and parses
    downloads = ARTIFACTS / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    for old in downloads.glob("*"):
        old.unlink()
    browser.send("Browser.setDownloadBehavior", behavior="allow", downloadPath=str(downloads))
    _click(browser, "#devices .csv")
    deadline = time.monotonic() + 30
    while not list(downloads.glob("*.csv")) and time.monotonic() < deadline:
        time.sleep(0.2)
    (got,) = downloads.glob("*.csv")
    table = list(csv.DictReader(io.StringIO(got.read_text())))
    devices = api.get(
        "/api/stats/breakdown",
        params=[*view, ("dimensions", "device_type"), ("metrics", "visitors,pageviews")],
    ).json()
    assert {r["device_type"]: int(r["visitors"]) for r in table} == {
        r["device_type"]: r["visitors"] for r in devices["rows"]
    }

    # the whole view as one archive
    _click(browser, "#archive")
    deadline = time.monotonic() + 30
    while not list(downloads.glob("*.zip")) and time.monotonic() < deadline:
        time.sleep(0.2)
    (archive,) = downloads.glob("*.zip")
    members = zipfile.ZipFile(archive).namelist()
    assert {"summary.csv", "series.csv", "devices.csv", "countries.csv"} <= set(members)

    # the language switch: words and number formats
    before = browser.eval("document.body.dataset.ready")
    browser.eval(
        "const s = document.querySelector('#lang'); s.value = 'az';"
        " s.dispatchEvent(new Event('change'))"
    )
    _wait_ready(browser, before)
    assert browser.eval("document.documentElement.lang") == "az"
    assert (
        browser.eval("document.querySelector('[data-kpi=visitors] span').textContent")
        == "Ziyarətçilər"
    )
    assert "lang=az" in browser.eval("location.search")
    _screenshot(browser, "product-az")
    assert ready

    # a goal row filters the page by its event
    browser.navigate(f"{base}/?site=demo&period=30d&lang=en")
    _wait_ready(browser)
    _act(browser, '#events .row[data-value="event:signup"]')
    assert "filter=event_name%3Asignup" in browser.eval("location.search")
    signed = api.get("/api/stats/summary", params=_view(browser)).json()
    assert signed["visitors"] == 1 and _kpi(browser, "visitors") == "1"
    _act(browser, '#events .row[data-dim="prop_key"][data-value="plan"]')  # its props
    assert "prop=plan" in browser.eval("location.search")
    _act(browser, '#events .row[data-dim="prop:plan"][data-value="pro"]')
    assert "filter=prop%3Aplan%3Apro" in browser.eval("location.search")
    assert _kpi(browser, "visitors") == "1"
    assert _kpi(browser, "pageviews") == _en(
        api.get("/api/stats/summary", params=_view(browser)).json()["pageviews"]
    )

    # up to two days the chart is hourly (Baku hours)
    day = (START + timedelta(days=2)).date()
    browser.navigate(f"{base}/?site=demo&period=custom&from={day}&to={day + timedelta(days=1)}")
    _wait_ready(browser)
    hourly = browser.eval("window.mayak.chart.data[1]")
    hours = api.get(
        "/api/stats/series",
        params=[
            *_view(browser),
            ("dimensions", "hour"),
            ("metrics", "visitors"),
            ("limit", "1000"),
        ],
    )
    assert len(hourly) == 48 and sum(hourly) == sum(r["visitors"] for r in hours.json()["rows"]) > 0
    _screenshot(browser, "product-two-days")

    # empty states say what to do
    browser.navigate(f"{base}/?site=demo&period=custom&from=2021-01-01&to=2021-01-31&lang=en")
    _wait_ready(browser)
    assert "No data in this period" in browser.eval(
        "document.querySelector('#message').textContent"
    )
    browser.navigate(f"{base}/?site=nope&period=30d&lang=en")
    _wait_ready(browser)
    shown = browser.eval("document.querySelector('#message').textContent")
    assert "Unknown site" in shown and "sites with data: demo" in shown


def test_pages_take_the_time_zone_from_the_api_and_show_a_busy_server_as_it_is(
    tmp_path, wh, browser
) -> None:
    """Another report time zone than Baku's: the heat map names it, the hourly chart's 48
    buckets are its hours and hold what the API answers. A 503 for want of tokens asks for
    one (WWW-Authenticate); a busy warehouse's 503 shows the server's words."""
    insert_events(wh, synthetic_events(600, site="demo"))
    settings = Settings(
        data_dir=tmp_path, dashboards_host="127.0.0.1", report_timezone="America/Sao_Paulo"
    )  # UTC-3, no DST
    token = add_token(tokens_path(settings), "pm", "product")
    app = create_app(settings, wh)
    server = Served(app)
    api = TestClient(app, headers={"Authorization": f"Bearer {token}"})
    try:
        assert api.get("/api/me").json()["timezone"] == "America/Sao_Paulo"
        base = f"http://127.0.0.1:{server.port}"
        browser.navigate(f"{base}/?lang=en")
        browser.eval("localStorage.clear()")
        browser.eval(f"localStorage.setItem('mayak-token', {json.dumps(token)})")
        day = (START + timedelta(days=1)).date()
        browser.navigate(
            f"{base}/?site=demo&period=custom&from={day}&to={day + timedelta(days=1)}&lang=en"
        )
        _wait_ready(browser)
        assert "America/Sao_Paulo" in browser.eval("document.querySelector('#heat h2').textContent")
        xs = browser.eval("window.mayak.chart.data[0]")
        hourly = browser.eval("window.mayak.chart.data[1]")
        first = datetime.fromtimestamp(xs[0], ZoneInfo("America/Sao_Paulo"))
        assert len(xs) == 48 and (first.date(), first.hour) == (day, 0)
        hours = api.get(
            "/api/stats/series",
            params=[
                ("site", "demo"),
                ("from", str(day)),
                ("to", str(day + timedelta(days=1))),
                ("dimensions", "hour"),
                ("metrics", "visitors"),
                ("limit", "1000"),
            ],
        ).json()["rows"]
        assert hours[0]["hour"].endswith("-03:00")
        assert (
            hourly
            == [
                next(
                    (
                        r["visitors"]
                        for r in hours
                        if datetime.fromisoformat(r["hour"]).timestamp() == x
                    ),
                    0,
                )
                for x in xs
            ]
            and sum(hourly) > 0
        )
        explain = (
            "Mayak.failure(new Response(JSON.stringify({error: %s}), {status: 503, "
            "headers: %s})).then((e) => Mayak.explain(e))"
        )
        busy = browser.eval(
            explain % ('"the warehouse is busy with other queries: retry shortly"', "{}")
        )
        assert busy == "the warehouse is busy with other queries: retry shortly"
        refused = api.get("/api/me", headers={"Authorization": "Bearer wrong"})
        no_tokens = browser.eval(
            explain
            % (
                '"no API tokens configured"',
                json.dumps({"WWW-Authenticate": refused.headers["www-authenticate"]}),
            )
        )
        assert no_tokens.startswith("Paste an API token")
        assert "no API tokens configured" in no_tokens
    finally:
        server.stop()
