"""Test helpers for code that opens chDB: one chDB path per process, one database per test.

A process can open only one chDB path, so every fixture in a pytest process must share it;
the path is a process-wide singleton here (whatever conftest asks for it) and each test
isolates itself in a fresh database.
"""

from __future__ import annotations

import atexit
import random
import shutil
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from clickhouse_connect.driver.client import Client

from warehouse.client import make_client

COLUMNS = [
    "event_id",
    "event_type",
    "site_id",
    "ts",
    "visitor_id",
    "session_id",
    "customer_pid",
    "path",
    "section",
    "country",
    "isp",
    "device_type",
    "browser",
    "browser_major",
    "os",
    "os_major",
    "engaged_ms",
    "scroll_pct",
    "service_type",
    "campaign_id",
    "event_name",
]
_NUMBERS = {"engaged_ms", "scroll_pct"}

# recent enough that no retention rule (shortest: 90 days) has removed any of them yet
START = (datetime.now(UTC) - timedelta(days=7)).replace(hour=0, minute=0, second=0, microsecond=0)


def synthetic_events(n: int = 400, site: str = "s1", seed: int = 1) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        kind = rng.choice(["pageview"] * 6 + ["engagement", "service_request", "email_open"])
        visitor = f"v{rng.randrange(60)}"
        rows.append(
            {
                "event_id": uuid.UUID(int=rng.getrandbits(128)),
                "event_type": kind,
                "site_id": site,
                "ts": START + timedelta(minutes=rng.randrange(3 * 24 * 60)),
                "visitor_id": visitor,
                "session_id": f"{visitor}-{rng.randrange(3)}",
                "customer_pid": f"c{rng.randrange(10)}" if kind == "service_request" else "",
                "path": rng.choice(["/", "/services/notary", "/lawyers", "/faq"]),
                "section": rng.choice(["home", "services", "lawyers"]),
                "country": rng.choice(["AZ", "AZ", "AZ", "TR", "GE", "RU"]),
                "isp": rng.choice(["Azercell", "Bakcell", "AzTelekom"]),
                "device_type": rng.choice(["desktop", "mobile", "mobile", "tablet"]),
                "browser": rng.choice(["Chrome", "Safari", "Firefox"]),
                "browser_major": "131",
                "os": rng.choice(["Windows", "iOS", "Android"]),
                "os_major": "14",
                "engaged_ms": rng.randrange(60_000),
                "service_type": rng.choice(["notary", "court"])
                if kind == "service_request"
                else "",
                "campaign_id": rng.choice(["spring", "news-12"]) if kind == "email_open" else "",
            }
        )
    return rows


def insert_rows(
    client: Client,
    rows: list[dict[str, Any]],
    table: str = "events",
    settings: dict[str, Any] | None = None,
) -> None:
    """Insert ``rows`` (dicts naming the same columns; ClickHouse gives the others their
    defaults) into ``table`` in one insert, through its materialized views."""
    columns = list(rows[0])
    for row in rows:
        if list(row) != columns:
            raise ValueError(f"a row names {sorted(row)}, the first one {sorted(columns)}")
    client.insert(
        table, [list(row.values()) for row in rows], column_names=columns, settings=settings
    )


def insert_events(client: Client, rows: list[dict]) -> None:
    """Insert synthetic events: the ``COLUMNS`` each names, the others 0 or empty."""
    insert_rows(client, [{c: r.get(c, 0 if c in _NUMBERS else "") for c in COLUMNS} for r in rows])


class WithSettings:
    """A client whose every read carries the given query settings (for example projections
    forced or turned off), so one test can compare the same answers read two ways."""

    def __init__(self, client: Client, settings: dict) -> None:
        self.client, self.settings = client, settings

    def query(self, sql: str, parameters: dict | None = None) -> Any:
        return self.client.query(sql, parameters=parameters, settings=self.settings)


def fixed_visits(site: str = "m", day_offset: int = 1) -> tuple[list[dict], list[dict]]:
    """A small, fixed event set whose metrics tests compute by hand: (web, non_web) events.

    Web, five visitors with one visit each, all on START + ``day_offset`` days, 10:00-10:20 UTC:
      A  pageview /; engagement / 30 s scroll 40; engagement / 10 s scroll 80 (10 min later)
      B  pageview /; engagement / 20 s scroll 50; pageview /services/notary;
         engagement /services/notary 60 s scroll 100
      C  pageview /services/notary; custom `signup`; engagement /services/notary 30 s scroll 30
      D  pageview /faq; outbound click; engagement /faq 10 s scroll 20
      E  pageview / (nothing else)
    Non-web: three e-mail opens (landing on `/`, like the pixel's) and two service requests,
    each from a visitor and session of its own, at the same hour.
    """
    base = START + timedelta(days=day_offset, hours=10)
    web_plan = {
        "A": [
            ("pageview", "/", 0, 0, ""),
            ("engagement", "/", 30_000, 40, ""),
            ("engagement", "/", 10_000, 80, ""),
        ],
        "B": [
            ("pageview", "/", 0, 0, ""),
            ("engagement", "/", 20_000, 50, ""),
            ("pageview", "/services/notary", 0, 0, ""),
            ("engagement", "/services/notary", 60_000, 100, ""),
        ],
        "C": [
            ("pageview", "/services/notary", 0, 0, ""),
            ("custom", "/services/notary", 0, 0, "signup"),
            ("engagement", "/services/notary", 30_000, 30, ""),
        ],
        "D": [
            ("pageview", "/faq", 0, 0, ""),
            ("outbound", "/faq", 0, 0, ""),
            ("engagement", "/faq", 10_000, 20, ""),
        ],
        "E": [("pageview", "/", 0, 0, "")],
    }
    web = []
    for who, steps in web_plan.items():
        for i, (kind, path, engaged, scroll, name) in enumerate(steps):
            web.append(
                _fixed(
                    site,
                    kind,
                    f"v{who}",
                    base + timedelta(minutes=5 * i),
                    path,
                    engaged_ms=engaged,
                    scroll_pct=scroll,
                    event_name=name,
                )
            )
    non_web = [
        _fixed(site, "email_open", f"o{i}", base, "/", campaign_id="spring") for i in range(3)
    ]
    non_web += [
        _fixed(
            site,
            "service_request",
            f"s{i}",
            base,
            "/services/notary/apply",
            service_type="notary",
            customer_pid=f"c{i}",
        )
        for i in range(2)
    ]
    return web, non_web


def _fixed(site: str, kind: str, visitor: str, ts: datetime, path: str, **extra: Any) -> dict:
    return {
        "event_id": uuid.uuid4(),
        "event_type": kind,
        "site_id": site,
        "ts": ts,
        "visitor_id": visitor,
        "session_id": f"{visitor}-1",
        "path": path,
        "country": "AZ",
        "device_type": "desktop",
        **extra,
    }


_dsn: str | None = None


def process_chdb_dsn() -> str:
    """The one ``chdb://`` DSN of this process (created on first use, removed at exit)."""
    global _dsn
    if _dsn is None:
        path = tempfile.mkdtemp(prefix="mayak-chdb-")
        atexit.register(shutil.rmtree, path, True)
        _dsn = f"chdb://{path}"
    return _dsn


def fresh_database(dsn: str | None = None) -> Client:
    """A client on a new, empty database of the process chDB (or ``dsn``)."""
    return make_client(dsn or process_chdb_dsn(), f"t_{uuid.uuid4().hex[:16]}")


def drop(client: Client) -> None:
    client.command(f"DROP DATABASE IF EXISTS `{client.database}`")
