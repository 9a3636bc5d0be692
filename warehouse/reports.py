"""Composite reports built on the read path: the site summary and e-mail campaign open rates.

Each function returns plain data and the number of cells it read out, for the audit log.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from clickhouse_connect.driver.client import Client

from mayak.settings import REPORT_TIMEZONE
from warehouse.metrics import VISIT
from warehouse.query import run
from warehouse.question import Query, utc_bounds
from warehouse.visit_sample import (
    SAMPLED,
    SITE,
    cut,
    pages_sql,
    per_session,
    sample_of,
    sampled_visits,
    visits_sql,
)

SUMMARY_METRICS = (
    "pageviews",
    "visitors",
    "visits",
    "views_per_visit",
    "engaged_seconds",
    "custom_events",
    "outbound_clicks",
    "events",
    "service_requests",
    "email_opens",
    "openers",
)

# the web visits that started in the range, of the sampled ones (`visit_sample`)
_SAMPLED_VISITS = f"SELECT countIf({VISIT}) FROM ({per_session(sample=SAMPLED)})"
PAGE_KINDS = ("entry_pages", "exit_pages")

_SENDS = """
SELECT campaign_id, sum(sent) AS sent FROM campaign_sends
WHERE site_id = {site:String} AND sent_on >= {from:Date} AND sent_on <= {to:Date}
GROUP BY campaign_id
"""


# e-mail opens by class (issue 13, stream_jobs/email_opens.py). A reader opened the message
# when the open is `human` or `image_proxy` (a mail provider's proxy fetches the image when
# the reader opens it); `privacy_proxy` (Apple MPP prefetch) and `scanner` are machine opens.
# Opens written before migration 0013 have no class ('') and count as reader opens, as then.
READER_CLASSES = ("human", "image_proxy", "")
MACHINE_CLASSES = ("privacy_proxy", "scanner")
#: the classes ``stream_jobs.email_opens`` gives (its docstring defines them), in the order of
#: ``opens_by_class``
OPEN_CLASSES = ("human", "image_proxy", "privacy_proxy", "scanner")
# bounds in UTC like every other range here: a bare DateTime64(3) is read in the server's (or
# the embedding process's) time zone, which shifted this window against the other columns
_OPENS = (
    """
SELECT campaign_id,
       countIf(open_class IN {readers:Array(String)}) AS human_opens,
       uniqExactIf(visitor_id, open_class IN {readers:Array(String)}) AS human_openers,
       countIf(open_class IN {machines:Array(String)}) AS machine_opens,
       ["""
    + ", ".join(f"countIf(open_class = '{c}')" for c in OPEN_CLASSES)
    + """] AS by_class
FROM events
WHERE site_id = {site:String} AND event_type = 'email_open' AND campaign_id != ''
  AND ts >= {start:DateTime64(3, 'UTC')} AND ts < {end:DateTime64(3, 'UTC')}
GROUP BY campaign_id
"""
)


@dataclass
class Report:
    data: dict
    cells: int


def summary(
    client: Client, site: str, date_from: date, date_to: date, tz: str = REPORT_TIMEZONE
) -> Report:
    """Totals for one site plus bounce rate and visit duration (web visits only, from the
    session aggregates); definitions in ``warehouse.metrics``. On a busy range those two are
    estimated from a sample of whole visits (``visit_sample``; ``sampled`` names its share)."""
    query = Query(site=site, metrics=SUMMARY_METRICS, date_from=date_from, date_to=date_to, tz=tz)
    totals = run(client, query).records()
    data = totals[0] if totals else dict.fromkeys(SUMMARY_METRICS, 0)
    params = _session_days(query)
    data.update(
        {
            "site": site,
            "from": str(date_from),
            "to": str(date_to),
            **visit_figures(client, params, sampled_visits(client, params)),
        }
    )
    return Report(data, len(data))


def visit_figures(client: Client, params: dict, share: float = 1.0, where: str = SITE) -> dict:
    """Bounce rate and visit duration of the web visits that started in the range
    (``_session_days`` params, ``where``: the session rows' conditions); with a ``share``
    below 1 (``sampled_visits``) estimated from the sampled visits, and ``sampled`` says so."""
    if share < 1:
        params = {**params, "cut": cut(share)}
    sql = visits_sql(sample_of(share), where)
    count, bounces, avg_seconds = client.query(sql, parameters=params).result_rows[0]
    return {
        "bounce_rate": round(bounces / count, 4) if count else None,
        "visit_duration": round(avg_seconds, 1) if count else None,
        "sampled": share if share < 1 else None,
    }


def entry_exit(
    client: Client,
    site: str,
    date_from: date,
    date_to: date,
    tz: str = REPORT_TIMEZONE,
    limit: int = 10,
) -> Report:
    """Top entry pages (first pageview of a visit, with the visits' bounce rate) and exit
    pages (last pageview) of the web visits that started in the range: exact, or estimated
    from a sample of whole visits on a busy range (``sampled`` names its share)."""
    query = Query(
        site=site, metrics=("visits",), date_from=date_from, date_to=date_to, tz=tz, limit=limit
    )
    params = _session_days(query)
    share = sampled_visits(client, params)
    data: dict = {
        "site": site,
        "from": str(date_from),
        "to": str(date_to),
        **pages(client, pages_sql(sample_of(share)), {**params, "limit": limit}, share),
    }
    return Report(data, 3 * (len(data["entry_pages"]) + len(data["exit_pages"])))


def pages(client: Client, sql: str, params: dict, share: float = 1.0) -> dict:
    """Run a ``pages_sql`` query: entry and exit pages, each with visits and bounce rate. With
    a ``share`` below 1 (``sampled_visits``; ``sql`` built with its ``sample_of``), of the
    sampled visits only, visits scaled up."""
    found: dict = {kind: [] for kind in PAGE_KINDS}
    if share < 1:
        params = {**params, "cut": cut(share)}
    for kind, page, visits, bounced in client.query(sql, parameters=params).result_rows:
        found[kind].append(
            {
                "path": page,
                "visits": round(visits / share),
                "bounce_rate": round(bounced / visits, 4),
            }
        )
    return {**found, "sampled": share if share < 1 else None}


def visits_of_sample(client: Client, params: dict, share: float) -> int:
    """The web visits that started in the range, estimated from the sample of ``share``."""
    sql = _SAMPLED_VISITS
    ((visits,),) = client.query(sql, parameters={**params, "cut": cut(share)}).result_rows
    return round(visits / share)


def _session_days(query: Query) -> dict:
    # sessions are keyed by UTC day: take every UTC day the local range overlaps
    start, end = utc_bounds(query)
    return {"site": query.site, "from": start.date(), "to": end.date(), "start": start, "end": end}


def campaigns(
    client: Client, site: str, date_from: date, date_to: date, tz: str = REPORT_TIMEZONE
) -> Report:
    """Per e-mail campaign: messages sent (registered by marketing), opens, unique openers, rate;
    and side by side, opens by readers (``human_opens``, ``human_unique_opens``,
    ``human_open_rate``) and by machines (``machine_opens``), with ``opens_by_class``."""
    query = Query(
        site=site,
        metrics=("email_opens", "openers"),
        dimensions=("campaign_id",),
        date_from=date_from,
        date_to=date_to,
        tz=tz,
        limit=1000,
    )
    opened = {r["campaign_id"]: r for r in run(client, query).records() if r["campaign_id"]}
    sent = {
        row[0]: row[1]
        for row in client.query(
            _SENDS, parameters={"site": site, "from": date_from, "to": date_to}
        ).result_rows
    }
    start, end = utc_bounds(query)
    by_class = {
        row[0]: row[1:]
        for row in client.query(
            _OPENS,
            parameters={
                "site": site,
                "start": start,
                "end": end,
                "readers": list(READER_CLASSES),
                "machines": list(MACHINE_CLASSES),
            },
        ).result_rows
    }
    rows = []
    for campaign in sorted(set(opened) | set(sent)):
        opens = opened.get(campaign, {})
        openers = opens.get("openers", 0)
        total = sent.get(campaign, 0)
        human_opens, human_openers, machine_opens, classes = by_class.get(
            campaign, (0, 0, 0, [0] * len(OPEN_CLASSES))
        )
        rows.append(
            {
                "campaign_id": campaign,
                "sent": total,
                "opens": opens.get("email_opens", 0),
                "unique_opens": openers,
                "open_rate": round(openers / total, 4) if total else None,
                "human_opens": human_opens,
                "human_unique_opens": human_openers,
                "human_open_rate": round(human_openers / total, 4) if total else None,
                "machine_opens": machine_opens,
                "opens_by_class": dict(zip(OPEN_CLASSES, classes)),
            }
        )
    return Report({"site": site, "campaigns": rows}, 9 * len(rows))


_BOTS = """
SELECT category, family, sum(hits) AS hits FROM bot_hits
WHERE site_id = {site:String} AND day >= {from:Date} AND day <= {to:Date}
GROUP BY category, family ORDER BY hits DESC, category, family LIMIT 1000
"""


def bots(
    client: Client, site: str, date_from: date, date_to: date, tz: str = REPORT_TIMEZONE
) -> Report:
    """Bot hits kept apart from the numbers (``bot_hits``, migration 0013): per category
    (search, seo, ai, monitoring, preview, library, headless, ...) and family, with totals per
    category. Days are UTC days (``bot_hits`` counts per UTC day); ``tz`` is accepted for the
    common report signature."""
    rows = client.query(
        _BOTS, parameters={"site": site, "from": date_from, "to": date_to}
    ).result_rows
    families = [{"category": c, "family": f, "hits": h} for c, f, h in rows]
    totals: dict[str, int] = {}
    for c, _, h in rows:
        totals[c] = totals.get(c, 0) + h
    return Report(
        {
            "site": site,
            "from": str(date_from),
            "to": str(date_to),
            "categories": totals,
            "bots": families,
        },
        3 * len(families) + len(totals),
    )
