"""WSGI middleware emitting ``service_request`` events for configured routes (Flask, etc.).

Usage with Flask::

    app.wsgi_app = MayakWSGIMiddleware(app.wsgi_app, routes={"POST /apply/{id}": "application"})
    # in the view, once the customer is known:
    request.environ["mayak.uid"] = customer.id

The event is recorded when the server closes the response iterable, so the duration includes
streaming the body.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from producers.hooks.routes import ServiceRoutes
from producers.hooks.service import ServiceRequests
from producers.hooks.tracker import Tracker

Environ = dict[str, Any]


class _ClosingBody:
    """Wraps the app's response iterable so that ``close()`` also records the request."""

    def __init__(self, body: Iterable[bytes], done: Callable[[], None]) -> None:
        self._body = body
        self._done: Callable[[], None] | None = done

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._body)

    def __len__(self) -> int:
        # servers set Content-Length for a body of one block (wsgiref: len(result) == 1); a
        # body without a length raises TypeError here, which they expect
        return len(self._body)  # type: ignore[arg-type]

    def close(self) -> None:
        done, self._done = self._done, None  # a server may call close() twice: record once
        try:
            close = getattr(self._body, "close", None)
            if close:
                close()
        finally:
            if done is not None:
                done()


class MayakWSGIMiddleware:
    """Times each matching request; the customer id comes from ``environ["mayak.uid"]``."""

    def __init__(
        self,
        app: Callable[..., Iterable[bytes]],
        routes: dict[str, str] | ServiceRoutes,
        tracker: Tracker | None = None,
        get_uid: Callable[[Environ], object] = lambda env: env.get("mayak.uid"),
    ) -> None:
        self.app = app
        self.service = ServiceRequests(routes, tracker)
        self.get_uid = get_uid

    def __call__(self, environ: Environ, start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        route = self.service.route(method, _path(environ))
        if route is None:
            return self.app(environ, start_response)
        started = self.service.clock.monotonic()
        status = [500]

        def start(status_line: str, headers: list, exc_info: Any = None) -> Any:
            try:  # "201 Created"; gunicorn also takes a tab: the server judges, not us
                status[0] = int(status_line.split(None, 1)[0])
            except (AttributeError, IndexError, ValueError):
                pass
            return start_response(status_line, headers, exc_info)

        def done() -> None:
            self.service.record(
                route.template,
                route.service_type,
                method,
                status[0],
                started,
                lambda: self.get_uid(environ),
                environ.get("HTTP_USER_AGENT"),
                environ.get("HTTP_DNT", ""),
                environ.get("HTTP_SEC_GPC", ""),
            )

        try:
            body = self.app(environ, start)
        except BaseException:
            status[0] = 500  # whatever it started: the server answers 500, nothing was sent
            done()
            raise
        return _ClosingBody(body, done)


def _path(environ: Environ) -> str:
    """``PATH_INFO`` as text: PEP 3333 hands the URL's bytes over as latin-1 characters, so
    ``/xidmətlər`` arrives as ``/xidmÉ\x99tlÉ\x99r``; decoded as UTF-8 where it is valid."""
    path = environ.get("PATH_INFO", "") or "/"
    try:
        return path.encode("latin-1").decode("utf-8")
    except (AttributeError, UnicodeError):
        return path  # not latin-1 characters (a server that decoded already), or not text
