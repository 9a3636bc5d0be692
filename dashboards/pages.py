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

STATIC = resources.files("dashboards").joinpath("static")
PAGES = {"/": "index.html", "/docs": "docs.html"}


def _page(name: str):
    async def serve(request: Request) -> HTMLResponse:
        return HTMLResponse(STATIC.joinpath(name).read_text(),
                            headers={"Cache-Control": "no-cache"})
    return serve


async def _openapi(request: Request) -> JSONResponse:
    return JSONResponse(openapi.description())


def routes() -> list[BaseRoute]:
    return [*(Route(path, _page(name)) for path, name in PAGES.items()),
            Route("/openapi.json", _openapi),
            Mount("/static", StaticFiles(directory=str(STATIC)), name="static")]
