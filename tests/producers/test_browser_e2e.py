"""The beacon in real headless Chromium, through the whole pipeline.

A page on localhost loads /t.js from the collector (a `mayak collector` child process); the
browser scrolls through three sections, dwelling on each while the "reader" moves the mouse,
then navigates away. The page view and the engagement event must arrive in Kafka with every
section's dwell, and in ClickHouse (through `mayak worker`) with engaged_ms within 25 % of the
real dwell.
"""

from __future__ import annotations

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

from mayak.kafka_local import free_port
from producers.raw_frames import events_of
from tests.producers.chromium import Chromium, chromium_path

pytestmark = [pytest.mark.browser, pytest.mark.kafka, pytest.mark.clickhouse,
              pytest.mark.skipif(chromium_path() is None, reason="apt-get install chromium")]

SECTIONS = ["intro", "pricing", "faq"]
# headless Chromium says "HeadlessChrome", which the pipeline rightly counts as a bot
DESKTOP_UA = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/156.0.0.0 Safari/537.36")
DWELL_S = 2.5


def _article(collector: str) -> str:
    blocks = "".join(f'<section data-section="{s}" style="height:1400px">{s}</section>'
                     for s in SECTIONS)
    return f"""<!doctype html><html><head><title>Article</title>
<script>window.mayak=window.mayak||function(){{(mayak.q=mayak.q||[]).push(arguments)}}</script>
<script defer src="{collector}/t.js" data-site="elegal"></script></head>
<body style="margin:0"><div style="height:300px">top</div>{blocks}
<div style="height:2000px">bottom</div></body></html>"""


class PageServer:
    """Serves the test portal pages on a free localhost port (a different origin)."""

    def __init__(self, collector_url: str) -> None:
        async def article(request):
            return HTMLResponse(_article(collector_url))

        async def bye(request):
            return HTMLResponse("<!doctype html><p>bye</p>")

        app = Starlette(routes=[Route("/xidmetler/notarius", article), Route("/bye", bye)])
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port,
                                                    log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> "PageServer":
        self.thread.start()
        while not self.server.started:
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def _raw_events(bootstrap: str, topic: str, want: set[str], timeout: float = 30.0) -> list[dict]:
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             group_id=None, consumer_timeout_ms=500)
    got: list[dict] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and not want <= {e["type"] for e in got}:
            got += [json.loads(e) if isinstance(e, bytes) else e  # a frame's events are dicts
                    for m in consumer for e in events_of(m.value)]
    finally:
        consumer.close()
    return got


def _read_the_article(browser: Chromium, url: str) -> float:
    """Load, scroll through the sections with some mouse input, leave; returns the dwell (s)."""
    browser.send("Page.enable")
    browser.send("Emulation.setFocusEmulationEnabled", enabled=True)
    browser.navigate(url)
    start = time.monotonic()
    for name in SECTIONS:
        browser.eval(f"document.querySelector('[data-section={name}]')"
                     ".scrollIntoView({block: 'center'})")
        until = time.monotonic() + DWELL_S
        x = 10
        while time.monotonic() < until:
            x = 30 if x == 10 else 10
            browser.mouse_move(x, 200)
            time.sleep(0.4)
    dwell = time.monotonic() - start
    browser.navigate(url.rsplit("/", 2)[0] + "/bye")
    return dwell


def test_chromium_engaged_time_reaches_clickhouse(stack) -> None:
    stack.start_worker()
    stack.start_collector()
    settings = stack.settings
    browser = Chromium(user_agent=DESKTOP_UA)
    try:
        with PageServer(settings.collector_url) as pages:
            dwell = _read_the_article(
                browser, f"http://127.0.0.1:{pages.port}/xidmetler/notarius?name=Aysel#faq")
    finally:
        browser.close()

    raw = _raw_events(settings.kafka_bootstrap, settings.topic_raw, {"pageview", "engagement"})
    pageview = next(e for e in raw if e["type"] == "pageview")
    engagements = [e for e in raw if e["type"] == "engagement"]
    assert engagements, f"no engagement event in mayak.raw: {raw}"
    assert pageview["url"].endswith("/xidmetler/notarius")  # query value and fragment dropped
    assert pageview["ua"] == DESKTOP_UA and pageview["ip_enc"] and "ip" not in pageview
    raw_engaged = sum(e["engaged_ms"] for e in engagements)
    assert abs(raw_engaged - dwell * 1000) <= 0.25 * dwell * 1000, (raw_engaged, dwell)
    seen = {}
    for e in engagements:
        for name, ms in (e.get("sections") or {}).items():
            seen[name] = seen.get(name, 0) + ms
    assert set(SECTIONS) <= set(seen), seen
    assert all(seen[s] >= 0.5 * DWELL_S * 1000 for s in SECTIONS), seen

    # ... and through the stream worker into ClickHouse
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        summary = httpx.get(f"{settings.dashboards_url}/api/stats/summary?site=elegal",
                            timeout=5, headers=stack.api_headers).json()
        if summary.get("pageviews", 0) >= 1:
            break
        time.sleep(0.5)
    time.sleep(3 * settings.sink_flush_seconds + 2)  # the engagement came with the page view
    stack.stop("worker")
    rows = stack.sql("SELECT event_type, path, engaged_ms FROM events WHERE site_id = 'elegal'")
    assert {"event_type": "pageview", "path": "/xidmetler/notarius", "engaged_ms": 0} in rows, rows
    engaged = sum(r["engaged_ms"] for r in rows if r["event_type"] == "engagement")
    assert abs(engaged - dwell * 1000) <= 0.25 * dwell * 1000, (engaged, dwell, rows)
