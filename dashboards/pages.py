"""The pages Mayak serves itself: the dashboards, the API docs, and their static assets.

Responsible for the routes that carry no figure (no token needed): the HTML pages, which ask
for a token and then call the API, ``/openapi.json`` and ``/docs``, and ``/static`` (the
pages' scripts and styles and the chart library bundled from npm at build time, so every page
works with no internet).
"""

from __future__ import annotations

from importlib import resources

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from dashboards import openapi
from dashboards.roles import ADMIN, MARKETING, PRODUCT, RESEARCH

STATIC = resources.files("dashboards").joinpath("static")
PAGES = {
    "/": "index.html",
    "/marketing": "marketing.html",
    "/research": "research.html",
    "/admin": "admin.html",
    "/docs": "docs.html",
}
#: who may use each page (``GET /api/me`` lists a caller's pages; the page's calls enforce it)
PAGE_ROLES: dict[str, frozenset[str]] = {
    "/": frozenset(PRODUCT),
    "/marketing": frozenset(MARKETING),
    "/research": frozenset(RESEARCH),
    "/admin": frozenset(ADMIN),
}
#: the API endpoints each page calls (a test checks the pages' scripts name no others)
PAGE_CALLS: dict[str, tuple[str, ...]] = {
    "/": (
        "stats/summary",
        "stats/series",
        "stats/breakdown",
        "stats/entry-exit",
        "stats/realtime",
        "stats/funnel",
        "stats/export",
        "stats/goals",
    ),
    "/marketing": (
        "stats/summary",
        "marketing/campaigns",
        "marketing/campaigns/{campaign_id}/sends",
    ),
    "/research": ("research/query", "research/budget"),
    "/admin": (
        "admin/audit",
        "admin/research/budgets",
        "admin/research/budget",
        "admin/erase",
        "admin/export",
    ),
}


def pages_of(role: str) -> list[str]:
    """The pages a role may use, in the order of the navigation."""
    return [page for page, roles in PAGE_ROLES.items() if role in roles]


def _page(name: str):
    async def serve(request: Request) -> HTMLResponse:
        return HTMLResponse(
            STATIC.joinpath(name).read_text(), headers={"Cache-Control": "no-cache"}
        )

    return serve


async def _openapi(request: Request) -> JSONResponse:
    return JSONResponse(openapi.description())


def routes() -> list[BaseRoute]:
    return [
        *(Route(path, _page(name)) for path, name in PAGES.items()),
        Route("/openapi.json", _openapi),
        Mount("/static", StaticFiles(directory=str(STATIC)), name="static"),
    ]
