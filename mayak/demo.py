"""Synthetic E-LEGAL portal traffic for ``mayak up --demo``: sends hits through the collector.

Visitors get public-looking addresses in X-Forwarded-For; ``mayak up --demo`` makes the
collector trust 127.0.0.1 as a proxy so that they reach the geo enrichment.
"""

from __future__ import annotations

import random
import threading
import uuid

import httpx
import orjson
from rich.console import Console

from mayak.clock import SYSTEM_CLOCK, Clock, epoch_ms
from mayak.settings import Settings
from producers.hooks.tracker import Tracker

SITE = "demo"
PAGES = [
    ("/", "home"),
    ("/services/notary", "services"),
    ("/services/court-representation", "services"),
    ("/services/company-registration", "services"),
    ("/lawyers", "lawyers"),
    ("/lawyers/family-law", "lawyers"),
    ("/blog/new-labour-code-2026", "blog"),
    ("/faq", "faq"),
    ("/contact", "contact"),
    ("/cases/48213", "cabinet"),
]
USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.6 Mobile/15E148 Safari/604.1",
]
REFERRERS = [
    "",
    "",
    "https://www.google.com/search?q=notarius",
    "https://www.facebook.com/",
    "https://e-gov.az/",
]


# the [data-section] blocks of each part of the portal (per-section dwell of the beacon)
PAGE_SECTIONS = {
    "home": ["hero", "services-grid", "testimonials"],
    "services": ["overview", "pricing", "documents", "apply-form"],
    "lawyers": ["profiles", "reviews"],
    "blog": ["article", "related"],
    "faq": ["questions"],
    "contact": ["map", "contact-form"],
    "cabinet": ["case-files"],
}
# goals the portal tracks with mayak('event', name, props), by the page they happen on
GOALS = {
    "services": (
        "consultation_request",
        lambda rng, path: {
            "service": path.rsplit("/", 1)[-1],
            "channel": rng.choice(["form", "callback"]),
        },
    ),
    "lawyers": (
        "lawyer_contact",
        lambda rng, path: {"practice": rng.choice(["family", "labour", "commercial"])},
    ),
    "blog": (
        "newsletter_signup",
        lambda rng, path: {"placement": rng.choice(["footer", "inline"])},
    ),
    "contact": (
        "contact_form_sent",
        lambda rng, path: {"topic": rng.choice(["pricing", "appointment"])},
    ),
}
OUTBOUND = [
    "https://e-gov.az/az/services",
    "https://www.taxes.gov.az/az",
    "https://courts.gov.az/az",
    "https://asan.gov.az/az",
]


def visit_events(rng: random.Random, now_ms: int) -> list[dict]:
    """One visit on the demo site: pageviews, engagement pings with per-section dwell and
    scroll depth, sometimes a goal (custom event with props) or an outbound click; about a
    third of the visits are one page with nothing else (bounces)."""
    events = []
    pages = 1 if rng.random() < 0.4 else rng.randint(2, 5)
    for step in range(pages):
        path, section = rng.choice(PAGES)
        ts = now_ms - (pages - step) * 40_000  # the visit just ended: no future times
        url = f"https://e-legal.az{path}?utm_source=demo&phone=0501234567"
        base = {"v": 1, "site": SITE, "url": url, "section": section}
        events.append(
            {
                **base,
                "id": str(uuid.uuid4()),
                "type": "pageview",
                "ts": ts,
                "ref": rng.choice(REFERRERS) if step == 0 else "https://e-legal.az/",
            }
        )
        engaged = rng.randint(2_000, 90_000)
        seen = rng.sample(PAGE_SECTIONS[section], rng.randint(1, len(PAGE_SECTIONS[section])))
        dwell = {name: rng.randint(500, max(600, engaged // len(seen))) for name in seen}
        events.append(
            {
                **base,
                "id": str(uuid.uuid4()),
                "type": "engagement",
                "ts": ts + 30_000,
                "engaged_ms": engaged,
                "scroll_pct": rng.randint(10, 100),
                "sections": dwell,
            }
        )
        if section in GOALS and rng.random() < 0.35:
            name, props = GOALS[section]
            events.append(
                {
                    **base,
                    "id": str(uuid.uuid4()),
                    "type": "custom",
                    "ts": ts + 20_000,
                    "name": name,
                    "props": props(rng, path),
                }
            )
        if pages == 1 and rng.random() < 0.5:
            continue  # a plain bounce: one page, no interaction
        if rng.random() < 0.12:
            events.append(
                {
                    **base,
                    "id": str(uuid.uuid4()),
                    "type": "outbound",
                    "ts": ts + 25_000,
                    "props": {"to": rng.choice(OUTBOUND)},
                }
            )
    return events


def send_visit(
    client: httpx.Client, settings: Settings, rng: random.Random, clock: Clock = SYSTEM_CLOCK
) -> int:
    headers = {
        "User-Agent": rng.choice(USER_AGENTS),
        "Content-Type": "text/plain",
        "X-Forwarded-For": f"{rng.choice([5, 31, 37, 46, 62, 85, 94, 185])}."
        f"{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
        "Origin": "https://e-legal.az",
    }
    events = visit_events(rng, epoch_ms(clock))
    # one beacon request per visit, as the real beacon batches on pagehide
    response = client.post(
        f"{settings.collector_url}/e", content=orjson.dumps(events), headers=headers
    )
    return len(events) if response.status_code < 300 else 0


CAMPAIGN = "newsletter-2026-11"
CAMPAIGN_SENT = 400
# route templates as the server hooks emit them: the method is a field of its own
SERVICES = [
    ("/services/{service}/apply", "notary"),
    ("/services/{service}/apply", "company_registration"),
    ("/cabinet/cases/{case_id}/documents", "court_representation"),
]


def open_email(client: httpx.Client, settings: Settings, rng: random.Random) -> bool:
    """The campaign pixel as a mail client fetches it (recipient = an opaque token)."""
    token = f"r{rng.randint(0, CAMPAIGN_SENT - 1):08d}"
    response = client.get(
        f"{settings.collector_url}/o/{CAMPAIGN}/{token}.gif",
        headers={"User-Agent": rng.choice(USER_AGENTS)},
    )
    return response.status_code == 200


def request_service(tracker: Tracker, rng: random.Random) -> None:
    """What the portal's server hooks emit when a customer applies for a service."""
    route, service = rng.choice(SERVICES)
    tracker.track(
        "service_request",
        site=SITE,
        uid=f"demo-customer-{rng.randint(1, 40)}",
        service_type=service,
        route=route,
        method="POST",
        status=200,
        duration_ms=round(rng.uniform(40, 400), 1),
        ua=rng.choice(USER_AGENTS),
    )


def register_campaign(settings: Settings) -> None:
    """Marketing registers how many e-mails went out (base of the open rate)."""
    import subprocess
    import sys

    subprocess.run(
        [
            sys.executable,
            "-m",
            "mayak",
            "campaign",
            "send",
            CAMPAIGN,
            "--sent",
            str(CAMPAIGN_SENT),
            "--site",
            SITE,
        ],
        capture_output=True,
        timeout=60,
    )


def start_demo(settings: Settings, stop: threading.Event, console: Console) -> threading.Thread:
    """Send a first burst of visits, e-mail opens and service requests, then a little of each
    every couple of seconds until ``stop``."""

    def one_round(client: httpx.Client, tracker: Tracker, rng: random.Random) -> int:
        sent = send_visit(client, settings, rng)
        if rng.random() < 0.5:
            sent += open_email(client, settings, rng)
        if rng.random() < 0.2:
            request_service(tracker, rng)
            sent += 1
        return sent

    def loop() -> None:
        rng = random.Random(7)
        tracker = Tracker.from_settings(settings)
        try:
            register_campaign(settings)
            with httpx.Client(timeout=10) as client:
                sent = sum(one_round(client, tracker, rng) for _ in range(60))
                tracker.flush()
                console.print(
                    f"demo: sent {sent} events; open {settings.dashboards_url}/ (site {SITE})"
                )
                while not stop.wait(2.0):
                    try:
                        one_round(client, tracker, rng)
                    except httpx.HTTPError:
                        pass
        finally:
            tracker.close()

    thread = threading.Thread(target=loop, name="demo", daemon=True)
    thread.start()
    return thread
