"""The one place that turns a finished request into a ``service_request`` event.

Shared by the ASGI, WSGI and Django middlewares. It takes only the route template, method,
status, duration, service type, customer id, User-Agent and the DNT / Sec-GPC signals: never
bodies, other headers or query strings. Nothing here raises into the portal: a route table that
cannot read a path, a ``get_uid`` that fails, an event the contract refuses are logged (field
names only, never values) and the request goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from pydantic import ValidationError

from mayak.clock import SYSTEM_CLOCK, Clock
from producers.collector.door import privacy_signals, user_agent
from producers.hooks.routes import Route, ServiceRoutes
from producers.hooks.tracker import Tracker, default_tracker

log = logging.getLogger("mayak.hooks")


class ServiceRequests:
    """Configured routes plus the tracker that records requests made to them."""

    def __init__(
        self,
        routes: dict[str, str] | ServiceRoutes,
        tracker: Tracker | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.table = routes if isinstance(routes, ServiceRoutes) else ServiceRoutes(routes)
        self._tracker = tracker
        self.clock = clock  # the middlewares time requests with its monotonic clock

    @property
    def tracker(self) -> Tracker:
        return self._tracker or default_tracker()

    def route(self, method: object, path: object) -> Route | None:
        """The configured route of a request, or None (also for a path or method the table
        cannot read: a server that breaks PEP 3333 is the app's to answer, not ours)."""
        try:
            return self.table.match(method, path)  # type: ignore[arg-type]
        except Exception:
            return None

    def record(
        self,
        route_template: str,
        service_type: str,
        method: str,
        status: int,
        started: float,
        uid: Callable[[], object],
        ua: str | None,
        dnt: str = "",
        gpc: str = "",
    ) -> None:
        """Emit one service_request event; never raises. ``uid`` reads the customer id (called
        here, after the response: a ``get_uid`` that fails records the request without one);
        ``dnt`` / ``gpc``: the headers' lines joined by commas."""
        try:
            try:
                customer = uid()
            except Exception as exc:  # its message may hold request data: the type only
                log.warning("mayak: get_uid raised %s; recorded without a customer", type(exc))
                customer = None
            dnt_set, gpc_set = privacy_signals({"dnt": dnt or "", "sec-gpc": gpc or ""})
            agent = user_agent(ua)
            self.tracker.track(
                "service_request",
                route=route_template,
                service_type=service_type,
                method=method.upper(),
                status=status,
                duration_ms=round((self.clock.monotonic() - started) * 1000, 3),
                uid=str(customer) if customer not in (None, "") else None,
                ua=agent and agent[:512],
                dnt=dnt_set,
                gpc=gpc_set,
            )
        except ValidationError as exc:  # its message quotes the values: a customer id, say
            fields = sorted({".".join(map(str, e["loc"])) for e in exc.errors()})
            log.warning("mayak: service_request not recorded: invalid %s", ", ".join(fields))
        except Exception:
            log.warning("mayak: service_request not recorded", exc_info=True)
