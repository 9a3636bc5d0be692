"""The one place that turns a finished request into a ``service_request`` event.

Shared by the ASGI, WSGI and Django middlewares. It takes only the route template, method,
status, duration, service type, customer id and User-Agent: never bodies, other headers or
query strings. Tracking failures are logged and swallowed, so analytics never breaks a request.
"""

from __future__ import annotations

import logging

from mayak.clock import SYSTEM_CLOCK, Clock
from producers.hooks.routes import ServiceRoutes
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

    def record(
        self,
        route_template: str,
        service_type: str,
        method: str,
        status: int,
        started: float,
        uid: object,
        ua: str | None,
    ) -> None:
        """Emit one service_request event; never raises."""
        try:
            self.tracker.track(
                "service_request",
                route=route_template,
                service_type=service_type,
                method=method.upper(),
                status=status,
                duration_ms=round((self.clock.monotonic() - started) * 1000, 3),
                uid=str(uid) if uid not in (None, "") else None,
                ua=(ua or None) and ua[:512],
            )
        except Exception:
            log.warning("mayak: service_request not recorded", exc_info=True)
