"""The dashboards and API (Starlette): product, marketing, research and admin endpoints.

Responsible for authentication (``dashboards.auth``), role checks, and auditing every call
(``query_audit``: who, role, endpoint, the question, cells returned, status). Every number
comes through the warehouse read path (``warehouse.query`` / ``warehouse.reports``), never
from SQL written here. The ClickHouse client is injected: with embedded chDB the worker
process owns the only client and serves this app from a thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from importlib import resources

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse
from starlette.routing import Route

from dashboards import params as qp
from dashboards.auth import Authenticator, Principal
from dashboards.research import publish, research_query
from mayak.errors import MayakError
from mayak.settings import Settings
from warehouse import audit, details, erasure, goals, reports
from warehouse.campaigns import register_send
from warehouse.ddl import Layout
from warehouse.query import TIME_BUCKETS, QueryError, run, utc_bounds
from warehouse.sites import UnknownSite, check_site

PRODUCT = {"product", "admin"}
MARKETING = {"marketing", "admin"}
RESEARCH = {"researcher", "admin"}
ADMIN = {"admin"}


@dataclass
class Answer:
    payload: dict
    cells: int
    request: dict


@dataclass
class Call:
    params: qp.QueryParams
    body: dict
    path: dict
    who: Principal


def create_app(settings: Settings, client, keys=None) -> Starlette:
    """``keys``: the anonymizer key store (erasure/export); opened from settings when first needed."""
    auth = Authenticator(settings)
    lock = threading.Lock()  # one client shared by request threads: one query at a time
    tz = settings.report_timezone
    layout = Layout(database=client.database or "default", cluster=settings.clickhouse_cluster)
    key_store = {"keys": keys}

    def get_keys():
        if key_store["keys"] is None:
            from anonymizer.keystore import KeyStore
            from stream_jobs.processors import keystore_path

            key_store["keys"] = KeyStore(keystore_path(settings))
        return key_store["keys"]

    def record(who: Principal | None, name: str, request: dict, cells: int, status: int) -> None:
        audit.record_query(client, who.name if who else "unauthenticated", who.role if who else "",
                           name, request, cells, status)

    def endpoint(name: str, roles: set[str], work: Callable[[Call], Answer], method: str = "GET"):
        def guarded(call: Call | None, status: int, error: str | None):
            with lock:
                if error:
                    record(call.who if call else None, name, {"params": dict(call.params)}
                           if call else {}, 0, status)
                    return None
                if method == "GET" and call.params.get("site"):
                    check_site(client, call.params["site"])  # UnknownSite: 404
                answer = work(call)
                record(call.who, name, answer.request, answer.cells, 200)
                return answer

        async def handler(request: Request) -> JSONResponse:
            who = auth.principal(request.headers.get("authorization"))
            call = Call(request.query_params, {}, dict(request.path_params), who)
            if who is None or who.role not in roles:
                status = 401 if who is None else 403
                await run_in_threadpool(guarded, call, status, "denied")
                return JSONResponse({"error": "a valid API token is required" if who is None
                                     else f"role {who.role!r} may not call {name}"}, status)
            try:
                if method == "POST":
                    call.body = await request.json()
                    if not isinstance(call.body, dict):
                        raise QueryError("the body must be a JSON object")
                answer = await run_in_threadpool(guarded, call, 200, None)
            except UnknownSite as exc:
                await run_in_threadpool(guarded, call, 404, str(exc))
                return JSONResponse({"error": str(exc)}, 404)
            except (QueryError, MayakError, ValueError) as exc:
                await run_in_threadpool(guarded, call, 400, str(exc))
                return JSONResponse({"error": str(exc)}, 400)
            return JSONResponse(answer.payload)

        return Route(f"/api/{name}", handler, methods=[method])

    def site_report(build: Callable) -> Callable[[Call], Answer]:
        """An endpoint answering one of ``warehouse.reports`` for a site and a date range."""
        def answer(call: Call) -> Answer:
            date_from, date_to = qp.date_range(call.params, tz)
            report = build(client, qp.site_of(call.params), date_from, date_to, tz)
            return Answer(report.data, report.cells, {"site": report.data["site"],
                                                      "from": str(date_from), "to": str(date_to)})
        return answer

    summary = site_report(reports.summary)

    def breakdown(call: Call) -> Answer:
        query = qp.query_from(call.params, tz, metrics=("pageviews", "visitors"))
        if not query.plain_dimensions:
            raise QueryError("name a dimension, e.g. dimensions=country")
        return _answer(run(client, query), query.describe())

    def series(call: Call) -> Answer:
        query = qp.query_from(call.params, tz, metrics=("pageviews", "visitors"),
                              dimensions=("day",))
        if not any(d in TIME_BUCKETS for d in query.dimensions):
            raise QueryError(f"a series needs a time bucket: {', '.join(TIME_BUCKETS)}")
        return _answer(run(client, query), query.describe())

    def sections(call: Call) -> Answer:
        """Per page and section: readers, visits, dwell and reach (``warehouse.details``);
        ``path=`` narrows it to one page."""
        query = qp.query_from(call.params, tz, metrics=("visitors",))
        path = call.params.get("path")
        start, end = utc_bounds(query)
        rows = details.sections_report(client, query.site, start, end, path, query.limit)
        columns = details.REPORT_COLUMNS
        return Answer({"columns": columns, "rows": rows}, len(columns) * len(rows),
                      {**query.describe(), "path": path})

    campaigns = site_report(reports.campaigns)
    entry_exit = site_report(reports.entry_exit)
    bot_report = site_report(reports.bots)

    def goal_conversions(call: Call) -> Answer:
        wanted = goals.parse_goals(call.params.getlist("goal"))
        date_from, date_to = qp.date_range(call.params, tz)
        data = goals.conversions(client, qp.site_of(call.params), date_from, date_to, wanted, tz)
        return Answer(data, 1 + 4 * len(data["goals"]), {
            "site": data["site"], "from": data["from"], "to": data["to"],
            "goals": [g["goal"] for g in data["goals"]]})

    def sends(call: Call) -> Answer:
        body = call.body
        sent_on = date.fromisoformat(body.get("sent_on") or date.today().isoformat())
        done = register_send(client, str(body.get("site", "")), call.path["campaign_id"],
                             int(body.get("sent", 0)), sent_on, actor=call.who.name)
        return Answer(done, 0, done)

    def research(call: Call) -> Answer:
        query = research_query(qp.query_from(call.params, tz, metrics=("visitors",)))
        if not query.plain_dimensions:
            raise QueryError("research queries break down by at least one dimension")
        payload = publish(run(client, query), settings.research_min_visitors,
                          settings.research_dp_epsilon)
        return Answer(payload, len(payload["columns"]) * len(payload["rows"]), query.describe())

    def erase(call: Call) -> Answer:
        opt_out = bool(call.body.get("opt_out", False))
        done = erasure.erase_customer(client, get_keys(), _customer(call.body), call.who.name,
                                      "api", opt_out=opt_out, layout=layout)
        return Answer(done.as_dict(), 0, {"customer": "[not logged]", "opt_out": opt_out})

    def export(call: Call) -> Answer:
        events = erasure.export_customer(client, get_keys(), _customer(call.body))
        cells = sum(len(e) for e in events)
        return Answer({"events": events}, cells, {"customer": "[not logged]"})

    def sweep(call: Call) -> Answer:
        return Answer({"deleted": erasure.sweep_late_arrivals(client, layout)}, 1, {})

    def audit_log(call: Call) -> Answer:
        rows = audit.recent_queries(client, min(int(call.params.get("limit", "100")), 1000))
        return Answer({"queries": rows}, 7 * len(rows), {"limit": len(rows)})

    async def healthz(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    async def index(request: Request) -> HTMLResponse:
        page = resources.files("dashboards").joinpath("static/index.html").read_text()
        return HTMLResponse(page)

    return Starlette(routes=[
        Route("/", index), Route("/healthz", healthz),
        endpoint("stats/summary", PRODUCT | MARKETING, summary),
        endpoint("stats/breakdown", PRODUCT, breakdown),
        endpoint("stats/series", PRODUCT, series),
        endpoint("stats/goals", PRODUCT, goal_conversions),
        endpoint("stats/entry-exit", PRODUCT, entry_exit),
        endpoint("stats/sections", PRODUCT, sections),
        endpoint("marketing/campaigns", MARKETING, campaigns),
        endpoint("marketing/campaigns/{campaign_id}/sends", MARKETING, sends, "POST"),
        endpoint("research/query", RESEARCH, research),
        endpoint("admin/erase", ADMIN, erase, "POST"),
        endpoint("admin/export", ADMIN, export, "POST"),
        endpoint("admin/sweep", ADMIN, sweep, "POST"),
        endpoint("admin/audit", ADMIN, audit_log),
        endpoint("admin/bots", ADMIN, bot_report),
    ])


def _answer(result, request: dict) -> Answer:
    return Answer({"columns": result.columns, "rows": result.records(), "source": result.source},
                  result.cells, request)


def _customer(body: dict) -> str:
    customer = str(body.get("customer", "")).strip()
    if not customer:
        raise QueryError("give the portal customer id as 'customer'")
    return customer
