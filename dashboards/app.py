"""Thin dashboards app (foundation): ``GET /api/stats/summary?site=SITE``.

The warehouse issue replaces the SQL here with the whitelisted read-path module.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from mayak.settings import Settings

_SUMMARY = """
SELECT countIf(event_type = 'pageview') AS pageviews, uniqExact(visitor_id) AS visitors
FROM events WHERE site_id = {site:String}
"""


def create_app(settings: Settings, client) -> Starlette:
    async def summary(request: Request) -> JSONResponse:
        site = request.query_params.get("site")
        if not site:
            return JSONResponse({"error": "query parameter 'site' is required"}, status_code=400)
        result = await run_in_threadpool(client.query, _SUMMARY, parameters={"site": site})
        pageviews, visitors = result.result_rows[0]
        return JSONResponse({"site": site, "pageviews": pageviews, "visitors": visitors})

    async def healthz(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    return Starlette(routes=[Route("/api/stats/summary", summary), Route("/healthz", healthz)])
