"""Pure ASGI middleware emitting ``service_request`` events for configured routes.

Usage (Starlette shown; any ASGI app works)::

    app.add_middleware(MayakASGIMiddleware, routes={"POST /apply/{id}": "application"})
    # in the endpoint, once the customer is known:
    request.state.mayak_uid = customer.id

The customer id is read after the response from ``scope["state"]["mayak_uid"]`` (what
Starlette's ``request.state`` writes to) or from a ``get_uid(scope)`` callable.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from producers.hooks.routes import ServiceRoutes
from producers.hooks.service import ServiceRequests
from producers.hooks.tracker import Tracker

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[
    [Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]
]


def _uid_from_state(scope: Scope) -> object:
    state = scope.get("state") or {}
    return state.get("mayak_uid")


class MayakASGIMiddleware:
    """Times each matching HTTP request and records its outcome (500 if the app raised)."""

    def __init__(
        self,
        app: ASGIApp,
        routes: dict[str, str] | ServiceRoutes,
        tracker: Tracker | None = None,
        get_uid: Callable[[Scope], object] = _uid_from_state,
    ) -> None:
        self.app = app
        self.service = ServiceRequests(routes, tracker)
        self.get_uid = get_uid

    async def __call__(
        self,
        scope: Scope,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        route = (
            self.service.route(scope.get("method"), _route_path(scope)) if _http(scope) else None
        )
        if route is None:
            await self.app(scope, receive, send)
            return
        started = self.service.clock.monotonic()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except BaseException:
            status = 500  # raised, even after its response started: the client got no whole answer
            raise
        finally:
            lines = _header_lines(scope, (b"user-agent", b"dnt", b"sec-gpc"))
            self.service.record(
                route.template,
                route.service_type,
                scope["method"],
                status,
                started,
                lambda: self.get_uid(scope),
                lines[b"user-agent"][0] if lines[b"user-agent"] else None,
                ", ".join(lines[b"dnt"]),
                ", ".join(lines[b"sec-gpc"]),
            )


def _http(scope: Scope) -> bool:
    return scope.get("type") == "http"


def _route_path(scope: Scope) -> str:
    """The path the app routes on: without ``root_path`` (uvicorn >= 0.26 keeps the mount
    prefix in ``path``, and Starlette strips it before routing, as here)."""
    path, root = scope.get("path", ""), scope.get("root_path", "")
    if root and (path == root or path.startswith(root + "/")):
        return path[len(root) :] or "/"
    return path


def _header_lines(scope: Scope, names: tuple[bytes, ...]) -> dict[bytes, list[str]]:
    """Every line of each wanted header (names lower-case, as ASGI sends them), as latin-1."""
    lines: dict[bytes, list[str]] = {name: [] for name in names}
    for name, value in scope.get("headers") or ():
        if name in lines:
            lines[name].append(bytes(value).decode("latin-1"))
    return lines
