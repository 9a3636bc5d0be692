"""The product endpoints' work: summary, breakdown, series, entry/exit (each with filters,
``compare=previous`` where it applies and ``format=csv``), realtime, funnel, and the whole
view as one ZIP of CSV files.

Responsible for turning a checked ``Call`` into an ``Answer``; every figure comes from
``warehouse.query`` / ``warehouse.product``, so the page computes nothing the API does not
also answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from dashboards import export
from dashboards import params as qp
from dashboards.calls import Answer, Call
from mayak.clock import Clock
from warehouse import details, goals, product
from warehouse.query import run
from warehouse.question import DIMENSIONS, TIME_BUCKETS, Query, QueryError

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

COMPARE = ("previous",)
# the panels of the product page, in the archive of the whole view: (file, dimension, metrics)
PANELS = [
    ("pages", "path", "visitors,pageviews,time_on_page,scroll_depth"),
    ("sections", "section", "visitors,section_seconds"),
    ("channels", "channel", "visitors,visits"),
    ("sources", "source", "visitors,visits"),
    ("referrers", "referrer_domain", "visitors,visits"),
    ("utm_sources", "utm_source", "visitors,visits"),
    ("utm_mediums", "utm_medium", "visitors,visits"),
    ("utm_campaigns", "utm_campaign", "visitors,visits"),
    ("countries", "country", "visitors,pageviews"),
    ("isps", "isp", "visitors,pageviews"),
    ("devices", "device_type", "visitors,pageviews"),
    ("browsers", "browser", "visitors,pageviews"),
    ("browser_versions", "browser_version", "visitors,pageviews"),
    ("oses", "os", "visitors,pageviews"),
    ("os_versions", "os_version", "visitors,pageviews"),
    ("events", "event_name", "events,visitors"),
    ("outbound", "outbound_url", "events,visitors"),
    ("services", "service_type", "service_requests"),
]
_NOT_FIGURES = ("site", "from", "to")
GOAL_COLUMNS = ["goal", "conversions", "visitors", "completions", "conversion_rate"]


def _sampled(data: dict, key: str) -> list[dict]:
    """The rows of ``data[key]`` with the answer's sample share (empty when exact), so that a
    CSV file says it holds estimates."""
    return [{**row, "sampled": data["sampled"]} for row in data[key]]


def _compare(call: Call) -> bool:
    asked = call.params.get("compare", "")
    if asked and asked not in COMPARE:
        raise QueryError(f"compare must be one of {', '.join(COMPARE)}, got {asked[:20]!r}")
    return bool(asked)


def _name(query: Query, panel: str) -> str:
    return export.filename(query.site, panel, str(query.date_from), str(query.date_to))


def handlers(reader: Client, tz: str, clock: Clock) -> dict[str, Callable]:
    """The work functions of the product endpoints, by endpoint name."""

    def summary(call: Call) -> Answer:
        fmt = export.wanted(call.params)
        query = qp.query_from(call.params, tz, clock=clock, metrics=("visitors",))
        compare = _compare(call)
        data = (
            product.compared_summary(reader, query) if compare else product.summary(reader, query)
        )
        answer = Answer(data, len(data), {**query.describe(), "compare": compare})
        if fmt == "csv":
            figures = [k for k in data if k not in (*_NOT_FIGURES, "previous", "change")]
            rows = [{"period": "current", **data}]
            if compare:
                rows.append({"period": "previous", **data["previous"]})
            answer.response = export.csv_response(
                ["period", "from", "to", *figures], rows, _name(query, "summary")
            )
        return answer

    def breakdown(call: Call) -> Answer:
        fmt = export.wanted(call.params)
        query = qp.query_from(call.params, tz, clock=clock, metrics=("pageviews", "visitors"))
        if not query.plain_dimensions:
            raise QueryError("name a dimension, e.g. dimensions=country")
        result = run(reader, query)
        answer = Answer(
            {"columns": result.columns, "rows": result.records(), "source": result.source},
            result.cells,
            query.describe(),
        )
        if fmt == "csv":
            answer.response = export.csv_response(
                result.columns, result.records(), _name(query, "-".join(query.dimensions))
            )
        return answer

    def series(call: Call) -> Answer:
        fmt = export.wanted(call.params)
        query = qp.query_from(
            call.params, tz, clock=clock, metrics=("pageviews", "visitors"), dimensions=("day",)
        )
        if not any(d in TIME_BUCKETS for d in query.dimensions):
            raise QueryError(f"a series needs a time bucket: {', '.join(TIME_BUCKETS)}")
        compare = _compare(call)
        result = run(reader, query)
        payload: dict[str, Any] = {
            "columns": result.columns,
            "rows": result.records(),
            "source": result.source,
        }
        cells = result.cells
        if compare:
            before = product.previous(query)
            earlier = run(reader, before)
            payload["previous"] = {
                "from": str(before.date_from),
                "to": str(before.date_to),
                "rows": earlier.records(),
            }
            cells += earlier.cells
        answer = Answer(payload, cells, {**query.describe(), "compare": compare})
        if fmt == "csv":
            rows = [{"period": "current", **r} for r in payload["rows"]]
            rows += [
                {"period": "previous", **r} for r in payload.get("previous", {}).get("rows", [])
            ]
            answer.response = export.csv_response(
                ["period", *result.columns], rows, _name(query, "series")
            )
        return answer

    def entry_exit(call: Call) -> Answer:
        fmt = export.wanted(call.params)
        query = qp.query_from(call.params, tz, clock=clock, metrics=("visits",))
        query = replace(query, limit=qp.int_param(call.params, "limit", 10, 1, 1000))
        data = product.entry_exit(reader, query)
        answer = Answer(
            data, 3 * (len(data["entry_pages"]) + len(data["exit_pages"])), query.describe()
        )
        if fmt == "csv":
            rows = [
                {"kind": kind.split("_")[0], **r, "sampled": data["sampled"]}
                for kind in ("entry_pages", "exit_pages")
                for r in data[kind]
            ]
            answer.response = export.csv_response(
                ["kind", "path", "visits", "bounce_rate", "sampled"],
                rows,
                _name(query, "entry-exit"),
            )
        return answer

    def goal_conversions(call: Call) -> Answer:
        fmt = export.wanted(call.params)
        wanted = goals.parse_goals(call.params.getlist("goal"))
        query = qp.query_from(call.params, tz, clock=clock, metrics=("visits",))
        data = goals.conversions(
            reader, query.site, query.date_from, query.date_to, wanted, tz, query.filters
        )
        answer = Answer(
            data,
            1 + 4 * len(data["goals"]),
            {**query.describe(), "goals": [g["goal"] for g in data["goals"]]},
        )
        if fmt == "csv":
            answer.response = export.csv_response(
                [*GOAL_COLUMNS, "sampled"], _sampled(data, "goals"), _name(query, "goals")
            )
        return answer

    def realtime(call: Call) -> Answer:
        site = qp.site_of(call.params)
        data = product.realtime(reader, site, clock.now())
        return Answer(data, 1 + 2 * len(data["pages"]), {"site": site})

    def funnel(call: Call) -> Answer:
        fmt = export.wanted(call.params)
        steps = product.parse_steps(call.params.getlist("step"))
        query = qp.query_from(call.params, tz, clock=clock, metrics=("visits",))
        data = product.funnel(reader, query, steps)
        answer = Answer(
            data,
            1 + 5 * len(data["steps"]),
            {**query.describe(), "steps": [s["goal"] for s in data["steps"]]},
        )
        if fmt == "csv":
            answer.response = export.csv_response(
                ["step", "goal", "visits", "of_visits", "from_first", "from_previous", "sampled"],
                _sampled(data, "steps"),
                _name(query, "funnel"),
            )
        return answer

    def archive(call: Call) -> Answer:
        """The whole view (site, range, filters) as one ZIP: summary, daily series, entry and
        exit pages and every panel of the product page."""
        query = qp.query_from(call.params, tz, clock=clock, metrics=("visitors",))
        top = product.summary(reader, query)
        figures = [k for k in top if k not in _NOT_FIGURES]
        files = {"summary": export.to_csv(["from", "to", *figures], [top])}
        days = run(
            reader,
            replace(
                query, dimensions=("day",), limit=1000, metrics=("visitors", "visits", "pageviews")
            ),
        )
        files["series"] = export.to_csv(days.columns, days.records())
        pages = product.entry_exit(reader, replace(query, limit=100))
        for kind in ("entry_pages", "exit_pages"):
            files[kind] = export.to_csv(
                ["path", "visits", "bounce_rate", "sampled"], _sampled(pages, kind)
            )
        reached = goals.conversions(
            reader, query.site, query.date_from, query.date_to, [], tz, query.filters
        )
        files["goals"] = export.to_csv([*GOAL_COLUMNS, "sampled"], _sampled(reached, "goals"))
        cells = len(top) + days.cells + 4 * len(reached["goals"])
        for panel, dimension, metrics in PANELS:
            if dimension not in DIMENSIONS and not details.is_dimension(dimension):
                continue  # a dimension this version does not have (channel, source)
            result = run(
                reader, replace(query, dimensions=(dimension,), metrics=tuple(metrics.split(",")))
            )
            files[panel] = export.to_csv(result.columns, result.records())
            cells += result.cells
        return Answer({}, cells, query.describe(), export.zip_response(files, _name(query, "view")))

    return {
        "stats/summary": summary,
        "stats/goals": goal_conversions,
        "stats/breakdown": breakdown,
        "stats/series": series,
        "stats/entry-exit": entry_exit,
        "stats/realtime": realtime,
        "stats/funnel": funnel,
        "stats/export": archive,
    }
