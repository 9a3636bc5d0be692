"""Event details in reports (issue 12): sections read, custom events, their props, outbound.

The read path's dimensions and metric over the detail columns of ``events`` (migration 0008).
They read raw ``events``, except a question about ``section`` alone (besides a time bucket),
which the per-section rollup ``agg_section_hourly`` (0009) answers; every name is
whitelisted here and a prop key travels as a bound parameter, checked against the raw
contract's key pattern first.

Dimensions:
- ``section``: the sections a reader saw. Each engagement event reports the sections that were
  on screen with their dwell (``section_names`` / ``section_ms``); ``ARRAY JOIN`` makes one row
  per (event, section), so with this dimension (or a ``section`` filter) ``visitors`` counts
  the visitors who saw a section, ``sessions`` the visits that saw it, ``events`` the
  engagement reports naming it and ``section_seconds`` its dwell. An event that names one
  ``section`` itself (a portal's own JS) counts for that section with no dwell. Web events
  only: an e-mail open or a service request naming a section adds no reader.
  Events that saw no section are left out.
- ``event_name``: a custom event's name; ``outbound_url``: an outbound click's destination
  (origin + path); ``prop:<key>``: the value of one prop of custom events; ``prop_key``: the
  prop keys events carry (which ``prop:<key>`` breakdowns exist). Events without
  one are left out of that breakdown (no ``""`` row for every page view).

Metric ``section_seconds``: section dwell, rounded to whole seconds (per section with the
``section`` dimension or filter; otherwise every section's dwell of the rows asked about).

``sections_report``: per page and section, visitors, visits, total and average dwell, and
``reach``, the share of the page's readers who reached the section.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from warehouse.metrics import Metric

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

PROP = "prop:"
#: the raw contract's prop key (contract.schema.PropKey)
PROP_KEY_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,40}$")

#: dimension -> (expression over ARRAY-JOINed events, condition that the event carries it)
DIMENSIONS: dict[str, tuple[str, str | None]] = {
    "section": ("section_name", None),  # the ARRAY JOIN leaves out events with no section
    "event_name": ("toString(event_name)", "event_name != ''"),
    "outbound_url": ("outbound_url", "outbound_url != ''"),
    # the prop keys custom events carry (one row per key of each event)
    "prop_key": ("arrayJoin(mapKeys(props))", "notEmpty(props)"),
}
#: how the allowed-names message spells the prop dimension
PROP_HINT = "prop:<key>"

#: metric -> its expressions over agg_section_hourly and over raw events (warehouse.metrics)
METRICS: dict[str, Metric] = {
    "section_seconds": Metric(
        "toUInt64(round(sum(section_ms) / 1000))",
        "toUInt64(round(sum(arraySum(section_ms)) / 1000))",
        ("section_ms",),
        True,
        "section dwell (engagement reports), whole seconds",
    ),
}
#: the per-section rollup (migration 0009): answers questions whose only dimension or filter
#: besides a time bucket is `section` and whose metrics read only its columns (ORDER BY hour:
#: no daily companion needed, sections are few per site and hour). Web events only, so its
#: web_visitors / web_sessions mean what the web metrics of warehouse.metrics say.
SECTION_ROLLUP = "agg_section_hourly"
SECTION_ROLLUP_COLUMNS = frozenset(
    {"events", "pageviews", "engaged_ms", "section_ms", "web_visitors", "web_sessions"}
)
_JOINED_METRICS = {"section_seconds": "toUInt64(round(sum(section_dwell_ms) / 1000))"}

# The sections of one event: its reported ones, else the one section it names itself.
_OWN = "empty(section_names) AND section != ''"
SECTIONS_JOIN = (
    f" ARRAY JOIN if({_OWN}, [toString(section)], section_names) AS section_name, "
    f"if({_OWN}, [toUInt32(0)], section_ms) AS section_dwell_ms"
)


def is_dimension(name: str) -> bool:
    """A details dimension: one of ``DIMENSIONS`` or ``prop:<key>`` with a well-formed key."""
    if name in DIMENSIONS:
        return True
    return name.startswith(PROP) and bool(PROP_KEY_RE.match(name[len(PROP) :]))


def joins_sections(names: Collection[str]) -> bool:
    """Whether a query naming these dimensions/filters reads one row per (event, section)."""
    return "section" in names


def section_rollup_answers(names: Iterable[str], metrics: list[Metric]) -> bool:
    """Whether ``SECTION_ROLLUP`` answers a question with these dimensions and filters (time
    buckets left out) and metrics: ``section`` and nothing else, metrics of its columns."""
    return set(names) == {"section"} and all(
        m.rollup and set(m.columns) <= SECTION_ROLLUP_COLUMNS for m in metrics
    )


@dataclass
class Detail:
    """The SQL of one details dimension or filter: its expression and its presence check."""

    expression: str
    present: str | None


def detail(name: str, params: dict, slot: str) -> Detail:
    """``name``'s SQL; a prop key goes into ``params`` under ``pk_<slot>`` (bound, not text)."""
    if name in DIMENSIONS:
        return Detail(*DIMENSIONS[name])
    if not is_dimension(name):
        raise ValueError(f"not a details dimension: {name!r}")
    key = f"pk_{slot}"
    params[key] = name[len(PROP) :]
    return Detail(f"props[{{{key}:String}}]", f"mapContains(props, {{{key}:String}})")


def metric(name: str, sections_joined: bool) -> str:
    """The raw-events expression of a details metric."""
    return _JOINED_METRICS[name] if sections_joined else METRICS[name].raw


REPORT_COLUMNS = [
    "path",
    "section",
    "visitors",
    "visits",
    "section_seconds",
    "avg_seconds",
    "readers",
    "reach",
]


def sections_sql(
    site: str, start: datetime, end: datetime, path: str | None = None, limit: int = 100
) -> tuple[str, dict]:
    """Per (page, section): ``visitors`` who saw it, ``visits`` (sessions) that saw it, its
    dwell in (rounded) whole seconds (``section_seconds``) and per visit (``avg_seconds``, one
    decimal), the page's ``readers`` (visitors with a page view of that path in the range) and
    ``reach``
    = visitors / readers (0..1, three decimals; a reader whose page view fell before the
    range still counts as one, so reach never exceeds 1). Exact counts: reach is a ratio.
    ``start``/``end``: the UTC range [start, end)."""
    params: dict = {"site": site, "start": start, "end": end}
    keep = (
        "site_id = {site:String} AND ts >= {start:DateTime('UTC')} AND ts < {end:DateTime('UTC')}"
    )
    if path is not None:
        params["path"] = path
        keep += " AND path = {path:String}"
    seen = (
        f"SELECT path, section_name AS section, uniqExact(visitor_id) AS visitors, "
        f"uniqExact(session_id) AS visits, sum(section_dwell_ms) AS dwell_ms "
        f"FROM events{SECTIONS_JOIN} WHERE {keep} GROUP BY path, section"
    )
    readers = (
        f"SELECT path, uniqExact(visitor_id) AS readers FROM events "
        f"WHERE {keep} AND event_type = 'pageview' GROUP BY path"
    )
    text = (
        f"SELECT s.path AS path, s.section AS section, s.visitors AS visitors, "
        f"s.visits AS visits, toUInt64(round(s.dwell_ms / 1000)) AS section_seconds, "
        f"round(s.dwell_ms / 1000 / greatest(s.visits, 1), 1) AS avg_seconds, "
        f"greatest(p.readers, s.visitors) AS readers, "
        f"round(s.visitors / greatest(p.readers, s.visitors), 3) AS reach "
        f"FROM ({seen}) AS s LEFT JOIN ({readers}) AS p ON p.path = s.path "
        f"ORDER BY path, visitors DESC, section LIMIT {int(limit)}"
    )
    return text, params


def sections_report(
    client: Client,
    site: str,
    start: datetime,
    end: datetime,
    path: str | None = None,
    limit: int = 100,
) -> list[dict]:
    """``sections_sql`` run: one dict per (page, section)."""
    text, params = sections_sql(site, start, end, path, limit)
    rows = client.query(text, parameters=params).result_rows
    return [dict(zip(REPORT_COLUMNS, row)) for row in rows]
