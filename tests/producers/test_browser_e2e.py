"""The beacon in real headless Chromium, through the whole pipeline, read back over the API.

A page on localhost loads /t.js from the collector (a `mayak collector` child process). The
"reader" reads three `data-section` blocks for about 3.5 s each while moving the mouse,
grants analytics consent half-way, clicks a `data-mayak-event` button with two props and an
outbound link, then the page navigates once as a single-page app (`history.pushState`) and
the browser leaves. The events must reach Kafka `mayak.raw`, and through `mayak worker`
ClickHouse; everything is then read back THROUGH THE DASHBOARDS API (HTTP, with a product
token): two page views, one visitor and one visit (consent mid-visit), each section's dwell
within 25 % of the time it was really on screen, the custom event with its props, the
outbound destination (origin + path) and the engaged time within 25 %.
"""

from __future__ import annotations

import itertools
import json
import threading
import time

import httpx
import pytest
import uvicorn
from kafka import KafkaConsumer
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from contract import raw_seal
from contract.raw_frames import events_of
from dashboards.auth import add_token, tokens_path
from mayak.kafka_local import free_port
from mayak.settings import Settings
from tests.clock import clear_of_midnight_utc
from tests.producers.chromium import Chromium, chromium_path

pytestmark = [
    pytest.mark.browser,
    pytest.mark.kafka,
    pytest.mark.clickhouse,
    pytest.mark.skipif(chromium_path() is None, reason="apt-get install chromium"),
]

SECTIONS = ["intro", "fees", "contact"]
# headless Chromium says "HeadlessChrome", which the pipeline rightly counts as a bot
DESKTOP_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/156.0.0.0 Safari/537.36"
)
DWELL_S = 3.5
ARTICLE, SPA_PAGE = "/xidmetler/notarius", "/xidmetler/elaqe"
# another origin (so an outbound link) that is never contacted: the page cancels the click
PARTNER = "http://localhost:9/partner/offer"
MIDDLE = '<div style="height:640px"></div>'  # puts a control in the middle of its section


def _article(collector: str) -> str:
    inner = {
        "intro": "",
        "fees": f'{MIDDLE}<button id="download" data-mayak-event="download" '
        'data-mayak-format="pdf" data-mayak-lang="az">Download the fee table</button>',
        "contact": f'{MIDDLE}<a id="partner" href="{PARTNER}?ref=elegal#top">Our partner</a>',
    }
    blocks = "".join(
        f'<section data-section="{s}" style="height:1400px">{inner[s]}</section>' for s in SECTIONS
    )
    return f"""<!doctype html><html><head><title>Article</title>
<script>window.mayak=window.mayak||function(){{(mayak.q=mayak.q||[]).push(arguments)}}</script>
<script defer src="{collector}/t.js" data-site="elegal"></script></head>
<body style="margin:0"><div style="height:300px">top</div>{blocks}
<div style="height:2000px">bottom</div>
<script>document.getElementById('partner').addEventListener('click',
  (e) => e.preventDefault())</script></body></html>"""


class PageServer:
    """Serves the test portal pages on a free localhost port (a different origin)."""

    def __init__(self, collector_url: str) -> None:
        async def article(request):
            return HTMLResponse(_article(collector_url))

        async def bye(request):
            return HTMLResponse("<!doctype html><p>bye</p>")

        app = Starlette(routes=[Route(ARTICLE, article), Route("/bye", bye)])
        self.port = free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> PageServer:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def _raw_events(settings: Settings, want: set[str], timeout: float = 30.0) -> list[dict]:
    """The raw events on ``settings.topic_raw`` (opened: the collector seals them), once the
    types ``want`` and both page views are there."""
    open_raw = raw_seal.opener(raw_seal.key_of(settings))
    consumer = KafkaConsumer(
        settings.topic_raw,
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        group_id=None,
        consumer_timeout_ms=500,
    )
    got: list[dict] = []
    deadline = time.monotonic() + timeout
    try:
        # both page views: the article's and the SPA page's may sit on different partitions
        while time.monotonic() < deadline and not (
            want <= {e["type"] for e in got} and sum(e["type"] == "pageview" for e in got) >= 2
        ):
            got += [
                json.loads(e) if isinstance(e, bytes) else e  # a frame's events are dicts
                for m in consumer
                for e in events_of(open_raw(m.value))
            ]
    finally:
        consumer.close()
    return got


def _linger(browser: Chromium, seconds: float) -> None:
    """Stay, moving the mouse now and then (an engaged reader, not an idle tab)."""
    until = time.monotonic() + seconds
    x = 10
    while time.monotonic() < until:
        x = 30 if x == 10 else 10
        browser.mouse_move(x, 200)
        time.sleep(min(0.4, max(0.0, until - time.monotonic())))


def _read_the_article(browser: Chromium, url: str) -> dict[str, float]:
    """The visit; returns how long (s) each section was on screen and the engaged time."""
    browser.send("Page.enable")
    browser.send("Emulation.setFocusEmulationEnabled", enabled=True)
    browser.navigate(url)
    start = time.monotonic()
    shown: dict[str, float] = {}
    for name in SECTIONS:
        browser.eval(
            f"document.querySelector('[data-section={name}]').scrollIntoView({{block: 'center'}})"
        )
        shown[name] = time.monotonic()
        if name == "intro":
            _linger(browser, DWELL_S)
            continue
        _linger(browser, DWELL_S / 2)
        if name == "fees":
            browser.eval("mayak('consent', 'analytics')")  # granted mid-visit
            browser.click("#download")
        else:
            browser.click("#partner")
        _linger(browser, DWELL_S / 2)
    for name, following in itertools.pairwise(SECTIONS):
        shown[name] = shown[following] - shown[name]
    # one SPA navigation; the contact section stays on screen until the reader leaves
    browser.eval(f"history.pushState({{}}, '', '{SPA_PAGE}')")
    _linger(browser, 1.0)
    end = time.monotonic()
    shown["contact"] = end - shown["contact"]
    shown["engaged"] = end - start
    browser.navigate(url.split("/xidmetler", 1)[0] + "/bye")
    return shown


class Api:
    """The dashboards API over HTTP with a product token."""

    def __init__(self, base: str, token: str) -> None:
        self.http = httpx.Client(
            base_url=base, timeout=10, headers={"Authorization": f"Bearer {token}"}
        )

    def get(self, endpoint: str, **params: str) -> dict:
        answer = self.http.get(f"/api/stats/{endpoint}", params={"site": "elegal", **params})
        assert answer.status_code == 200, answer.text
        return answer.json()

    def rows(self, dimension: str, metrics: str, **params: str) -> dict[str, dict]:
        got = self.get("breakdown", dimensions=dimension, metrics=metrics, **params)["rows"]
        return {r.pop(dimension): r for r in got}


def _within(got: float, want: float, share: float = 0.25) -> bool:
    return abs(got - want) <= share * want


def test_chromium_visit_lands_and_reads_back_through_the_api(stack) -> None:
    clear_of_midnight_utc(120)  # one visitor and one visit: a daily salt splits them at 00:00
    settings = stack.settings
    stack.start_worker()
    token = add_token(tokens_path(settings), "e2e.product", "product")
    stack.start_collector()
    browser = Chromium(user_agent=DESKTOP_UA)
    try:
        with PageServer(settings.collector_url) as pages:
            shown = _read_the_article(
                browser, f"http://127.0.0.1:{pages.port}{ARTICLE}?name=Aysel#fees"
            )
    finally:
        browser.close()

    raw = _raw_events(settings, {"pageview", "engagement", "custom", "outbound"})
    # the two partitions of mayak.raw are read in no particular order: find the article's
    pageview = next(e for e in raw if e["type"] == "pageview" and ARTICLE in e["url"])
    assert pageview["url"].endswith(ARTICLE)  # query value and fragment dropped
    assert pageview["ua"] == DESKTOP_UA and pageview["ip_enc"] and "ip" not in pageview

    # ... through the stream worker into ClickHouse, read back over the dashboards API
    api = Api(settings.dashboards_url, token)
    want_events = 6  # 2 page views, 2 engagement reports (SPA navigation, leaving), 1 + 1 clicks
    deadline = time.monotonic() + 60
    summary: dict = {}
    while time.monotonic() < deadline:
        summary = api.get("summary")
        if summary.get("events", 0) >= want_events:
            break
        time.sleep(0.5)
    assert summary.get("events") == want_events, (summary, raw)
    assert (summary["pageviews"], summary["visitors"], summary["visits"]) == (2, 1, 1), summary

    pages = api.rows("path", "pageviews,engaged_seconds")
    assert {p for p, r in pages.items() if r["pageviews"]} == {ARTICLE, SPA_PAGE}
    engaged = sum(r["engaged_seconds"] for r in pages.values())
    assert _within(engaged, shown["engaged"]), (engaged, shown)

    sections = api.rows("section", "visitors,section_seconds")
    assert set(sections) == set(SECTIONS), sections
    report = api.get("sections")["rows"]  # per page and section, dwell to 0.1 s
    for name in SECTIONS:
        dwell = sum(r["avg_seconds"] * r["visits"] for r in report if r["section"] == name)
        assert _within(dwell, shown[name]), (name, dwell, shown, report)
        assert sections[name]["visitors"] == 1
        assert abs(sections[name]["section_seconds"] - dwell) <= 1, (sections, report)
    fees = next(r for r in report if r["section"] == "fees")
    assert (fees["path"], fees["readers"], fees["reach"]) == (ARTICLE, 1, 1.0)

    assert api.rows("event_name", "events,visitors") == {"download": {"events": 1, "visitors": 1}}
    assert api.rows("prop:format", "events") == {"pdf": {"events": 1}}
    assert api.rows("prop:lang", "events", filter="event_name:download") == {"az": {"events": 1}}
    assert api.rows("outbound_url", "events") == {PARTNER: {"events": 1}}
