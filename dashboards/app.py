"""The dashboards and API (Starlette): product, marketing, research and admin endpoints.

Responsible for authentication (``dashboards.auth``, no anonymous access), role checks, and
auditing every call (``query_audit``: who, role, endpoint, the question, cells returned,
status; a refused call without its parameters). Calls without a valid token are rate-limited
per client IP (behind a proxy, only ``dashboards_trusted_proxies`` may name it). Every number
comes through the warehouse read path (``warehouse.query`` / ``warehouse.reports``), never
from SQL written here, and every question runs under the ClickHouse limits of
``warehouse.client.read_limits`` (beyond them: 422 "query too heavy"). The ClickHouse client
is injected: with embedded chDB the worker process owns the only client and serves this app
from a thread (``dashboards.serve``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from itertools import islice
from typing import TYPE_CHECKING, cast

from clickhouse_connect.driver.exceptions import DatabaseError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from anonymizer import scrub
from anonymizer.keystore import KeyStoreLike, keystore_from_settings
from dashboards import pages, product
from dashboards import params as qp
from dashboards.auth import Authenticator, Principal, TokensUnavailable
from dashboards.calls import Answer, Call
from dashboards.headers import SecurityHeaders
from dashboards.roles import ADMIN, MARKETING, PRODUCT, RESEARCH, ROLES, either
from dashboards.tables import respond
from mayak.client_address import ClientAddress, rate_bucket
from mayak.clock import SYSTEM_CLOCK, Clock
from mayak.errors import MayakError
from mayak.install import refuse_lost_keys
from mayak.ratelimit import RateLimiter
from mayak.settings import Settings
from warehouse import audit, details, erasure, reports
from warehouse.campaigns import register_send
from warehouse.client import (
    TOO_HEAVY,
    LimitedClient,
    SerialClient,
    WarehouseBusy,
    limit_hit,
    read_limits,
)
from warehouse.ddl import Layout
from warehouse.question import QueryError, utc_bounds
from warehouse.sites import SiteCheck, UnknownSite

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

QUEUE_QUERIES = 3  # how many query time limits a query may wait for the one query slot
PARAM_CHARS = 200  # of each parameter of a refused question kept in the audit
PARAMS_KEPT = 20  # parameters of a refused question kept (50,000 made a 640 KB audit row)
MAX_BODY = 64 * 1024  # a POST body (the largest real one, an erasure, is under 200 bytes)


class BodyRefused(Exception):
    """A POST body refused before it is parsed: 413 (too large) or 415 (not JSON)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def json_body(request: Request) -> dict:
    """The POST body as a JSON object, reading at most ``MAX_BODY`` bytes of it (a 20 MB body
    was read and parsed whole). A body declared as another type (``text/plain``, a form) is
    refused rather than read as JSON: what a body is must not depend on who reads it. No
    Content-Type at all is read as JSON (``curl --data-binary``, scripts)."""
    kind = request.headers.get("content-type")
    if kind is not None:
        media = kind.split(";", 1)[0].strip().lower()
        if media != "application/json" and not media.endswith("+json"):
            raise BodyRefused(415, "send the body as Content-Type: application/json")
    declared = request.headers.get("content-length", "")
    if declared.isdecimal() and int(declared) > MAX_BODY:
        raise BodyRefused(413, f"the body may be at most {MAX_BODY} bytes")
    raw = bytearray()
    try:
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > MAX_BODY:  # chunked, or a Content-Length that lied
                raise BodyRefused(413, f"the body may be at most {MAX_BODY} bytes")
    except ClientDisconnect:  # nobody reads the answer; the audit says what happened
        raise BodyRefused(400, "the client went away before the body's end") from None
    return qp.json_object(bytes(raw))


def create_app(
    settings: Settings,
    client: Client,
    keys: KeyStoreLike | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> Starlette:
    """``keys``: the anonymizer key store (erasure/export); opened from settings when first needed.
    ``clock``: today's date, realtime figures, budget periods, audit and erasure times."""
    auth = Authenticator(settings)
    scrub.configure(settings.customer_id_pattern)  # the audit scrubs what users ask
    address_of = client_address(settings)
    denied = RateLimiter(
        settings.dashboards_unauth_rate_per_s, settings.dashboards_unauth_burst, clock=clock
    )
    # one client shared by request threads: one query at a time (not one call: an export's
    # 22 queries interleave with others'). Each query is bounded by query_max_seconds, so a
    # query waits at most a few of them for its turn before the call gets a 503
    serial = SerialClient(client, QUEUE_QUERIES * settings.query_max_seconds)
    client = cast("Client", serial)  # a Client to its callers: it forwards every attribute
    # a research question's budget check, its queries and the ledger row it spends stay one
    # step (else two concurrent questions could both pass the check and overspend); only
    # research calls wait for each other here
    spending = threading.Lock()
    keys_opened = threading.Lock()
    tz = settings.report_timezone
    layout = Layout.of(client, settings.clickhouse_cluster)
    # every question asked goes here; a Client to its callers (it forwards every attribute)
    reader = cast("Client", LimitedClient(client, read_limits(settings)))
    check_site = SiteCheck(client)
    key_store = {"keys": keys}

    def get_keys():
        with keys_opened:  # calls run in threads: the key store is opened once
            if key_store["keys"] is None:
                refuse_lost_keys(settings)  # MayakError: a 400 naming what to restore
                key_store["keys"] = keystore_from_settings(settings)
            return key_store["keys"]

    def record(who: Principal | None, name: str, request: dict, cells: int, status: int) -> None:
        audit.record_query(
            client,
            who.name if who else "unauthenticated",
            who.role if who else "",
            name,
            request,
            cells,
            status,
            clock,
        )

    def endpoint(
        name: str, roles: tuple[str, ...], work: Callable[[Call], Answer], method: str = "GET"
    ):
        def guarded(call: Call | None, status: int, error: str | None):
            if error:
                # a refused caller's parameters are not kept: only who, what and the status;
                # a bad question's are, cut short
                # (the first PARAMS_KEPT of them, names cut too: a token holder's 50,000
                # made-up parameters were all kept)
                kept = islice(call.params.items(), PARAMS_KEPT) if call else ()
                asked = (
                    {"params": {k[:PARAM_CHARS]: v[:PARAM_CHARS] for k, v in kept}}
                    if call and status == 400
                    else {}
                )
                record(call.who if call else None, name, asked, 0, status)
                return None
            assert call is not None, "a call without an error is a parsed one"
            answer = work(call)  # a malformed question is a 400 before a 404
            if method == "GET" and call.params.get("site"):
                check_site(call.params["site"])  # UnknownSite: 404
            record(call.who, name, answer.request, answer.cells, 200)
            return answer

        async def refuse(request: Request, call: Call | None, status: int, error: str):
            # every call without a valid token (401, 503, and a 400 for two Authorization
            # lines) counts against the caller's address: none of them may fill the audit
            if call is None and not denied.allow(address_of(request)):
                return JSONResponse(
                    {"error": "too many calls without a valid token"},
                    429,
                    headers={"Retry-After": "10"},
                )
            try:
                await run_in_threadpool(guarded, call, status, "denied")
            except WarehouseBusy:
                pass
            # a want of a valid token says so (RFC 9110), so that the pages ask for one only
            # then, and show a busy or limited warehouse's 503 as it is
            auth = {"WWW-Authenticate": 'Bearer realm="mayak"'} if status in (401, 503) else {}
            return JSONResponse({"error": error}, status, headers=auth)

        async def handler(request: Request) -> JSONResponse:
            if len(request.headers.getlist("authorization")) > 1:
                # which line counts is a guess (this app read the first, a proxy or a log
                # may read the last): a low-privilege token first and an admin's second
                # would be two callers in one request (RFC 6750 section 3.1: invalid_request)
                return await refuse(request, None, 400, "send one Authorization header")
            try:
                who = auth.principal(request.headers.get("authorization"))
            except TokensUnavailable as exc:
                return await refuse(request, None, 503, str(exc))
            if who is None:
                return await refuse(request, None, 401, "a valid API token is required")
            call = Call(request.query_params, {}, dict(request.path_params), who)
            if who.role not in roles:
                return await refuse(request, call, 403, f"role {who.role!r} may not call {name}")
            try:
                qp.refuse_repeats(call.params)
                if method == "POST":
                    call.body = await json_body(request)
                answer = await run_in_threadpool(guarded, call, 200, None)
            except BodyRefused as exc:
                return await refuse(request, call, exc.status, str(exc))
            except UnknownSite as exc:
                return await refuse(request, call, 404, str(exc))
            except WarehouseBusy:
                return JSONResponse(
                    {"error": "the warehouse is busy with other queries: retry shortly"},
                    503,
                    headers={"Retry-After": "5"},
                )
            except (QueryError, MayakError, ValueError) as exc:
                return await refuse(request, call, 400, str(exc))
            except DatabaseError as exc:
                what = limit_hit(exc)
                if what is None:
                    raise
                return await refuse(request, call, 422, TOO_HEAVY.format(what=what))
            return answer.response or JSONResponse(answer.payload)

        handler.roles = frozenset(roles)  # type: ignore[attr-defined]  # read by dashboards.openapi
        return Route(f"/api/{name}", handler, methods=[method])

    def site_report(build: Callable) -> Callable[[Call], Answer]:
        """An endpoint answering one of ``warehouse.reports`` for a site and a date range."""

        def answer(call: Call) -> Answer:
            date_from, date_to = qp.date_range(call.params, tz, clock)
            report = build(reader, qp.site_of(call.params), date_from, date_to, tz)
            return Answer(
                report.data,
                report.cells,
                {"site": report.data["site"], "from": str(date_from), "to": str(date_to)},
            )

        return answer

    # summary, breakdown, series, goals, entry-exit, realtime, funnel, export (dashboards.product)
    work = product.handlers(reader, tz, clock)

    def sections(call: Call) -> Answer:
        """Per page and section: readers, visits, dwell and reach (``warehouse.details``);
        ``path=`` narrows it to one page."""
        query = qp.query_from(call.params, tz, metrics=("visitors",), clock=clock)
        path = call.params.get("path")
        start, end = utc_bounds(query)
        rows = details.sections_report(reader, query.site, start, end, path, query.limit)
        columns = details.REPORT_COLUMNS
        return Answer(
            {"columns": columns, "rows": rows},
            len(columns) * len(rows),
            {**query.describe(), "path": path},
        )

    campaigns = site_report(reports.campaigns)
    bot_report = site_report(reports.bots)

    def sends(call: Call) -> Answer:
        site, sent, sent_on = qp.sends_body(call.body, qp.local_today(tz, clock))
        done = register_send(
            client, site, call.path["campaign_id"], sent, sent_on, actor=call.who.name
        )
        return Answer(done, 0, done)

    def research(call: Call) -> Answer:
        from dashboards import research as dp_research  # OpenDP: loaded on first use

        if not spending.acquire(timeout=QUEUE_QUERIES * serial.wait_seconds):
            raise WarehouseBusy()
        try:
            payload, question, fmt = dp_research.answer(
                reader, settings, call.who.name, call.params, clock=clock, check_site=check_site
            )
        finally:
            spending.release()
        return Answer(
            payload,
            len(payload["columns"]) * len(payload["rows"]),
            {**question, "cost": payload["cost"]},
            respond(payload, fmt),
        )

    def research_own_budget(call: Call) -> Answer:
        from dashboards import research as dp_research

        return Answer(dp_research.own_budget(client, settings, call.who.name, clock), 0, {})

    def research_budget(call: Call) -> Answer:
        from dashboards import research as dp_research

        done = dp_research.set_budget(client, call.body, call.who.name, clock)
        return Answer(done, 0, done)

    def research_budgets(call: Call) -> Answer:
        from dashboards import research as dp_research

        return Answer(dp_research.show_budgets(client, settings, clock), 0, {})

    def erase(call: Call) -> Answer:
        customer, opt_out = qp.customer_body(call.body)
        done = erasure.erase_customer(
            client,
            get_keys(),
            customer,
            call.who.name,
            "api",
            opt_out=opt_out,
            layout=layout,
            clock=clock,
        )
        return Answer(done.as_dict(), 0, {"customer": "[not logged]", "opt_out": opt_out})

    def export(call: Call) -> Answer:
        events = erasure.export_customer(client, get_keys(), qp.customer_body(call.body)[0])
        cells = sum(len(e) for e in events)
        return Answer({"events": events}, cells, {"customer": "[not logged]"})

    def sweep(call: Call) -> Answer:
        return Answer({"deleted": erasure.sweep_late_arrivals(client, layout)}, 1, {})

    def audit_log(call: Call) -> Answer:
        rows = audit.recent_queries(client, qp.audit_limit(call.params))
        return Answer({"queries": rows}, 7 * len(rows), {"limit": len(rows)})

    def me(call: Call) -> Answer:
        """Who the token is, which pages its role may use (the pages' navigation) and the
        report time zone (the pages' dates and hours)."""
        return Answer(
            {
                "name": call.who.name,
                "role": call.who.role,
                "pages": pages.pages_of(call.who.role),
                "timezone": tz,
            },
            0,
            {},
        )

    async def healthz(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    app = Starlette(
        middleware=[Middleware(SecurityHeaders), Middleware(GZipMiddleware, minimum_size=1000)],
        routes=[
            *pages.routes(),
            Route("/healthz", healthz),
            endpoint("stats/summary", either(PRODUCT, MARKETING), work["stats/summary"]),
            endpoint("stats/breakdown", PRODUCT, work["stats/breakdown"]),
            endpoint("stats/series", PRODUCT, work["stats/series"]),
            endpoint("stats/goals", PRODUCT, work["stats/goals"]),
            endpoint("stats/entry-exit", PRODUCT, work["stats/entry-exit"]),
            endpoint("stats/realtime", PRODUCT, work["stats/realtime"]),
            endpoint("stats/funnel", PRODUCT, work["stats/funnel"]),
            endpoint("stats/export", PRODUCT, work["stats/export"]),
            endpoint("stats/sections", PRODUCT, sections),
            endpoint("marketing/campaigns", MARKETING, campaigns),
            endpoint("marketing/campaigns/{campaign_id}/sends", MARKETING, sends, "POST"),
            endpoint("research/query", RESEARCH, research),
            endpoint("research/budget", RESEARCH, research_own_budget),
            endpoint("admin/research/budget", ADMIN, research_budget, "POST"),
            endpoint("admin/research/budgets", ADMIN, research_budgets),
            endpoint("admin/erase", ADMIN, erase, "POST"),
            endpoint("admin/export", ADMIN, export, "POST"),
            endpoint("admin/sweep", ADMIN, sweep, "POST"),
            endpoint("admin/audit", ADMIN, audit_log),
            endpoint("admin/bots", ADMIN, bot_report),
            endpoint("me", ROLES, me),
        ],
    )
    # no "/api/x/" -> "/api/x" redirect: Starlette wrote it as an absolute URL from the
    # client's Host header (Host: evil.example -> Location: http://evil.example/api/x), an
    # open redirect for anyone who can poison a cache or a proxy's Host; a 404 says it plainly
    app.router.redirect_slashes = False
    return app


def client_address(settings: Settings) -> Callable[[Request], str]:
    """The rate-limit bucket of a request's client: the socket peer, or what a trusted proxy
    names in the configured header (``mayak.client_address``); an IPv6 client's /64."""
    addresses = ClientAddress(settings.dashboards_trusted_proxies, settings.dashboards_proxy_header)

    def of(request: Request) -> str:
        peer = request.client.host if request.client else None
        return rate_bucket(addresses.of(peer, request.headers.getlist(addresses.header)))

    return of
