"""Issue 13 (migration 0013): channel, source and open_class are report dimensions, answered
from the rollup exactly as from raw events; bot_hits splits `category:family`."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from tests.warehouse.samples import START, insert_rows
from warehouse.query import run
from warehouse.question import Query

pytestmark = pytest.mark.clickhouse
D1 = START.date()
CHANNELS = [
    ("organic_search", "Google"),
    ("organic_search", "Yandex"),
    ("social", "Telegram"),
    ("email", "newsletter"),
    ("direct", ""),
    ("referral", "news.az"),
]


def _events(n: int = 300) -> list[dict]:
    rng = random.Random(13)
    rows = []
    for i in range(n):
        kind = rng.choice(["pageview"] * 5 + ["email_open"])
        channel, source = ("email", "Gmail") if kind == "email_open" else rng.choice(CHANNELS)
        rows.append(
            {
                "event_id": f"00000000-0000-4000-8000-{i:012d}",
                "event_type": kind,
                "site_id": "s1",
                "ts": START + timedelta(minutes=rng.randrange(2 * 24 * 60)),
                "visitor_id": f"v{rng.randrange(40)}",
                "session_id": f"s{rng.randrange(80)}",
                "channel": channel,
                "source": source,
                "open_class": rng.choice(["human", "image_proxy", "scanner"])
                if kind == "email_open"
                else "",
            }
        )
    return rows


@pytest.mark.parametrize(
    "kw",
    [
        {"metrics": ("pageviews", "visitors", "visits"), "dimensions": ("channel",)},
        {"metrics": ("pageviews", "visitors"), "dimensions": ("source",), "limit": 3},
        {"metrics": ("email_opens", "openers"), "dimensions": ("open_class",)},
        {"metrics": ("pageviews",), "dimensions": ("day", "channel"), "limit": 1000},
    ],
)
def test_new_dimensions_roll_up_like_raw_events(wh, kw) -> None:
    insert_rows(wh, _events())
    query = Query(site="s1", date_from=D1, date_to=D1 + timedelta(days=3), **kw)
    rolled, raw = run(wh, query), run(wh, query, source="events")
    assert rolled.source != "events" and raw.source == "events"
    assert rolled.rows and rolled.rows == raw.rows


def test_bot_hits_category_and_family(wh) -> None:
    wh.insert(
        "bot_hits",
        [[D1, "s1", "search:Googlebot", 3], [D1, "s1", "Googlebot", 2]],
        column_names=["day", "site_id", "bot", "hits"],
    )
    rows = wh.query(
        "SELECT category, family, sum(hits) FROM bot_hits GROUP BY category, family "
        "ORDER BY category"
    ).result_rows
    # rows counted before 0013 carry the family alone: category 'other'
    assert rows == [("other", "Googlebot", 2), ("search", "Googlebot", 3)]
