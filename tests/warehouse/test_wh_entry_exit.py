"""Entry and exit pages: the faster SQL answers exactly what the first definition answered.

The reference below is the first version of ``reports.entry_exit`` (two passes, one per
kind, over the ``sessions`` aggregates), kept here verbatim as the definition. A seeded
dataset with the awkward visits (crossing hour boundaries, UTC and Baku midnight; consent
given mid-visit; starting with an engagement or a service request; no page view at all;
e-mail opens; several sites; landed in several inserts so one visit's rows sit in several
parts) is asked both ways, for several ranges, limits and filters.
"""

from __future__ import annotations

import random
import uuid
from datetime import date, timedelta

import pytest

from tests.warehouse.samples import COLUMNS, START
from warehouse import product, reports
from warehouse.metrics import BOUNCE, VISIT
from warehouse.question import Query

pytestmark = pytest.mark.clickhouse

_REF_PER_SESSION = """
    SELECT session_id, sum(pageviews) AS pageviews, sum(web_events) AS web_events,
           sum(interactions) AS interactions, sum(engaged_ms) AS engaged_ms EXTRA
    FROM sessions
    WHERE site_id = {site:String} AND day >= {from:Date} AND day <= {to:Date}
    GROUP BY session_id
    HAVING min(started) >= {start:DateTime64(3, 'UTC')}
       AND min(started) < {end:DateTime64(3, 'UTC')}
"""
_REF_PAGES = f"""
SELECT page, count() AS visits, countIf({BOUNCE}) AS bounces
FROM ({_REF_PER_SESSION})
WHERE {VISIT} AND page != ''
GROUP BY page ORDER BY visits DESC, page LIMIT {{limit:UInt32}}
"""
_REF_STATES = {
    "entry_pages": ", argMinMerge(entry_path) AS page",
    "exit_pages": ", argMaxMerge(exit_path) AS page",
}


def reference(client, site: str, date_from: date, date_to: date, tz: str, limit: int) -> dict:
    query = Query(
        site=site, metrics=("visits",), date_from=date_from, date_to=date_to, tz=tz, limit=limit
    )
    params = {**reports._session_days(query), "limit": limit}
    # below the sample threshold every visit is read: the answer says it is not sampled
    data: dict = {"site": site, "from": str(date_from), "to": str(date_to), "sampled": None}
    for key, state in _REF_STATES.items():
        rows = client.query(_REF_PAGES.replace("EXTRA", state), parameters=params).result_rows
        data[key] = [{"path": p, "visits": v, "bounce_rate": round(b / v, 4)} for p, v, b in rows]
    return data


PATHS = ["/", "/faq", "/services/notary", "/services/court", "/lawyers", "/blog/1", "/blog/2"]
TYPES = (
    ["pageview"] * 5 + ["engagement"] * 3 + ["custom", "outbound", "service_request", "email_open"]
)


def seeded_visits(seed: int = 7, visits: int = 600) -> list[list[dict]]:
    """Events of ``visits`` visits, in three insert batches (a visit's events may land in
    different batches). Timestamps are distinct within a visit (ties have no first page)."""
    rng = random.Random(seed)
    batches: list[list[dict]] = [[], [], []]
    for n in range(visits):
        site = rng.choice(["a", "a", "a", "b"])
        visitor = f"v{rng.randrange(visits // 3)}"
        # starts spread over four days, many within minutes of an hour, of UTC midnight and
        # of Baku midnight (20:00 UTC)
        day = START + timedelta(days=rng.randrange(4))
        anchor = rng.choice([0, 20, 24, rng.randrange(24), rng.randrange(24)])
        start = day + timedelta(
            hours=anchor,
            minutes=rng.randrange(-25, 25),
            seconds=rng.randrange(60),
            milliseconds=rng.randrange(1000),
        )
        length = rng.choice([1, 1, 2, 3, 4, 6, 9])
        kinds = [rng.choice(TYPES) for _ in range(length)]
        if rng.random() < 0.7:
            kinds[0] = "pageview"
        consent = rng.choice(["none", "analytics"])
        switch = rng.randrange(length + 1)  # consent given mid-visit from this event on
        country, device = rng.choice(["AZ", "TR", "GE"]), rng.choice(["mobile", "desktop"])
        offset = timedelta(0)
        for i, kind in enumerate(kinds):
            offset += timedelta(seconds=rng.randrange(1, 1500), milliseconds=rng.randrange(1000))
            batches[rng.randrange(3)].append(
                {
                    "event_id": uuid.UUID(int=rng.getrandbits(128)),
                    "event_type": kind,
                    "site_id": site,
                    "ts": start + offset,
                    "visitor_id": visitor,
                    "session_id": f"{visitor}-{n}",
                    "path": rng.choice(PATHS),
                    "country": country,
                    "device_type": device,
                    "consent": "analytics" if i >= switch else consent,
                    "engaged_ms": rng.randrange(60_000) if kind == "engagement" else 0,
                    "event_name": "signup" if kind == "custom" else "",
                    "campaign_id": "spring" if kind == "email_open" else "",
                }
            )
    return batches


def _insert(wh, batches: list[list[dict]]) -> None:
    columns = [*COLUMNS, "consent"]
    for batch in batches:
        rows = [
            [r.get(c, 0 if c in ("engaged_ms", "scroll_pct") else "") for c in columns]
            for r in batch
        ]
        wh.insert("events", rows, column_names=columns)


def _reference_filtered(client, query: Query) -> dict:
    """The first ``product.entry_exit`` with filters the sessions table answers."""
    params = {**reports._session_days(query), "limit": query.limit}
    where = ["WHERE site_id = {site:String}"]
    for i, (name, value) in enumerate(query.filters):
        params[f"sf{i}"] = value
        where.append(f"{name} = {{sf{i}:String}}")
    data: dict = {
        "site": query.site,
        "from": str(query.date_from),
        "to": str(query.date_to),
        "sampled": None,
    }
    for key, state in _REF_STATES.items():
        sql = _REF_PAGES.replace("EXTRA", state).replace(
            "WHERE site_id = {site:String}", " AND ".join(where)
        )
        data[key] = [
            {"path": p, "visits": v, "bounce_rate": round(b / v, 4)}
            for p, v, b in client.query(sql, parameters=params).result_rows
        ]
    return data


def _ranges() -> list[tuple[date, date, str]]:
    first = START.date()
    return [
        (first, first + timedelta(days=4), "Asia/Baku"),
        (first + timedelta(days=1), first + timedelta(days=1), "Asia/Baku"),
        (first + timedelta(days=1), first + timedelta(days=2), "UTC"),
        (first + timedelta(days=2), first + timedelta(days=2), "UTC"),
    ]


def test_entry_exit_equals_the_first_definition(wh) -> None:
    _insert(wh, seeded_visits())
    # the awkward visits are there: over midnight (a sessions row per day), over an hour,
    # consent given mid-visit
    ((two_days,),) = wh.query(
        "SELECT countIf(days > 1) FROM (SELECT uniqExact(day) AS days "
        "FROM sessions GROUP BY session_id)"
    ).result_rows
    ((hours, consents),) = wh.query(
        "SELECT countIf(h > 1), countIf(c > 1) FROM (SELECT uniqExact(toStartOfHour(ts)) AS h, "
        "uniqExact(consent) AS c FROM events GROUP BY session_id)"
    ).result_rows
    assert two_days >= 5 and hours >= 50 and consents >= 50
    asked = 0
    for site in ("a", "b"):
        for date_from, date_to, tz in _ranges():
            for limit in (1000, 3):
                want = reference(wh, site, date_from, date_to, tz, limit)
                got = reports.entry_exit(wh, site, date_from, date_to, tz, limit).data
                assert got == want, (site, date_from, date_to, tz, limit)
                asked += bool(want["entry_pages"])
    assert asked >= 12  # the ranges hold visits: the comparison compared something


def test_filtered_entry_exit_by_visit_constants_equals_the_first_definition(wh) -> None:
    _insert(wh, seeded_visits(seed=11))
    first = START.date()
    for filters in ((("country", "AZ"),), (("country", "TR"), ("device_type", "mobile"))):
        query = Query(
            site="a",
            metrics=("visits",),
            date_from=first,
            date_to=first + timedelta(days=4),
            filters=filters,
            limit=1000,
        )
        want = _reference_filtered(wh, query)
        assert want["entry_pages"] and product.entry_exit(wh, query) == want


def _reference_raw(client, query: Query) -> dict:
    """The first ``product.entry_exit`` with other filters: each visit's matching events."""
    per_visit, params = product._visits_sql(query)
    data: dict = {
        "site": query.site,
        "from": str(query.date_from),
        "to": str(query.date_to),
        "sampled": None,
    }
    for key, column in (("entry_pages", "entry"), ("exit_pages", "exit")):
        rows = client.query(
            f"SELECT {column} AS page, count() AS visits, "
            f"countIf(pageviews = 1 AND interactions = 0) AS bounces FROM ({per_visit}) "
            f"WHERE page != '' GROUP BY page ORDER BY visits DESC, page "
            f"LIMIT {int(query.limit)}",
            parameters=params,
        ).result_rows
        data[key] = [{"path": p, "visits": v, "bounce_rate": round(b / v, 4)} for p, v, b in rows]
    return data


def test_entry_exit_filtered_by_raw_events_equals_the_first_definition(wh) -> None:
    _insert(wh, seeded_visits(seed=13))
    first = START.date()
    for filters in (
        (("path", "/faq"),),
        (("path", "/"), ("country", "AZ")),
        (("event_type", "pageview"),),
    ):
        for limit in (1000, 2):
            query = Query(
                site="a",
                metrics=("visits",),
                date_from=first,
                date_to=first + timedelta(days=4),
                filters=filters,
                limit=limit,
            )
            want = _reference_raw(wh, query)
            assert want["entry_pages"] and product.entry_exit(wh, query) == want
