"""Metric definitions: the ONE place that says what each number on a dashboard counts.

Web metrics count web traffic only: the event types a browser sends (``WEB_TYPES``). E-mail
opens (``email_open``) and service requests (``service_request``, from the portal's server
hooks) carry a visitor and a session too, but they have metrics of their own and never add a
visitor, a visit, a pageview or a bounce to the web ones.

- a *visit* is a session with at least one web event;
- a *bounce* is a visit with exactly one pageview and no custom event or outbound click;
- *visit duration* and *time on page* are engaged time (``engaged_ms`` of engagement events,
  the beacon's foreground clock), never the span between timestamps;
- *scroll depth* is the average, over pages viewed, of the deepest point reached on the page
  (the highest ``scroll_pct`` of the engagement events of one page in one visit).

Each ``Metric`` gives the SQL over the hourly rollups (``agg_site_hourly`` / ``agg_dim_*``,
web-only columns from migration 0010) and over raw ``events``; the two agree exactly. A
metric with no rollup expression is answered from raw events only. Visit-level figures
(bounce rate, visit duration, entry and exit pages) come from the ``sessions`` table: see
``VISIT`` and ``BOUNCE`` below and ``warehouse.reports``.
"""

from __future__ import annotations

from dataclasses import dataclass

WEB_TYPES = ("pageview", "engagement", "custom", "outbound")
WEB = f"event_type IN ({', '.join(repr(t) for t in WEB_TYPES)})"
INTERACTION = "event_type IN ('custom', 'outbound')"


@dataclass(frozen=True)
class Metric:
    """One metric: its expressions, the rollup columns it reads, and what it means."""

    rollup: str | None  # over a rollup table; None: only raw events answer it
    raw: str  # over raw events
    columns: tuple[str, ...]  # rollup columns read (top-N ranking and the daily split)
    additive: bool  # a plain sum of rollup columns: a top-N may rank by it first
    meaning: str

    def expression(self, rollup: bool) -> str:
        return self.rollup if rollup and self.rollup else self.raw


def _ratio(numerator: str, denominator: str, scale: str = "1") -> str:
    # NULL (JSON null) rather than NaN when nothing was seen
    return f"round({numerator} / {scale} / nullIf({denominator}, 0), 2)"


_WEB_VISITORS = "uniqCombinedIf(12)(visitor_id, " + WEB + ")"
_WEB_VISITS = "uniqCombinedIf(12)(session_id, session_id != '' AND " + WEB + ")"
_ENGAGED = "sumIf(engaged_ms, event_type = 'engagement')"
_PAGEVIEWS = "countIf(event_type = 'pageview')"
# the deepest point of each (visit, page), then their average: one value per page viewed
_SCROLL = (
    "arrayAvg((maxMapIf([concat(session_id, ' ', path)], [toUInt16(scroll_pct)], "
    "event_type = 'engagement')).2)"
)

METRICS: dict[str, Metric] = {
    "visitors": Metric(
        "uniqCombinedMerge(12)(web_visitors)",
        _WEB_VISITORS,
        ("web_visitors",),
        False,
        "distinct visitors with at least one web event",
    ),
    "visits": Metric(
        "uniqCombinedMerge(12)(web_sessions)",
        _WEB_VISITS,
        ("web_sessions",),
        False,
        "sessions with at least one web event",
    ),
    "pageviews": Metric("sum(pageviews)", _PAGEVIEWS, ("pageviews",), True, "pageview events"),
    "views_per_visit": Metric(
        _ratio("sum(pageviews)", "uniqCombinedMerge(12)(web_sessions)"),
        _ratio(_PAGEVIEWS, _WEB_VISITS),
        ("pageviews", "web_sessions"),
        False,
        "pageviews / visits",
    ),
    "engaged_seconds": Metric(
        "intDiv(sum(engaged_ms), 1000)",
        f"intDiv({_ENGAGED}, 1000)",
        ("engaged_ms",),
        True,
        "total engaged time (engagement events), whole seconds",
    ),
    "visit_duration": Metric(
        _ratio("sum(engaged_ms)", "uniqCombinedMerge(12)(web_sessions)", "1000"),
        _ratio(_ENGAGED, _WEB_VISITS, "1000"),
        ("engaged_ms", "web_sessions"),
        False,
        "engaged seconds per visit",
    ),
    "time_on_page": Metric(
        _ratio("sum(engaged_ms)", "sum(pageviews)", "1000"),
        _ratio(_ENGAGED, _PAGEVIEWS, "1000"),
        ("engaged_ms", "pageviews"),
        False,
        "engaged seconds per pageview (break down by path for per-page time)",
    ),
    "scroll_depth": Metric(
        None,
        f"if(countIf(event_type = 'engagement') = 0, NULL, round({_SCROLL}, 1))",
        (),
        False,
        "average deepest scroll point (%) per page viewed",
    ),
    "custom_events": Metric(
        "sum(custom_events)",
        "countIf(event_type = 'custom')",
        ("custom_events",),
        True,
        "custom events",
    ),
    "outbound_clicks": Metric(
        "sum(outbound_clicks)",
        "countIf(event_type = 'outbound')",
        ("outbound_clicks",),
        True,
        "clicks on outbound links",
    ),
    "email_opens": Metric(
        "sum(email_opens)",
        "countIf(event_type = 'email_open')",
        ("email_opens",),
        True,
        "e-mail open pixel fetches",
    ),
    "openers": Metric(
        "uniqCombinedMerge(12)(openers)",
        "uniqCombinedIf(12)(visitor_id, event_type = 'email_open')",
        ("openers",),
        False,
        "distinct recipients who opened (per campaign)",
    ),
    "service_requests": Metric(
        "sum(service_requests)",
        "countIf(event_type = 'service_request')",
        ("service_requests",),
        True,
        "service requests made through the portal",
    ),
    "events": Metric(
        "sum(events)", "count()", ("events",), True, "every accepted event, of every type"
    ),
}
# `sessions` was the name of `visits` before web-only metrics; kept so old links still work
METRICS["sessions"] = METRICS["visits"]

# Visit-level conditions over the ``sessions`` table, per session (after GROUP BY session_id)
VISIT = "web_events > 0"
BOUNCE = "web_events > 0 AND pageviews = 1 AND interactions = 0"
