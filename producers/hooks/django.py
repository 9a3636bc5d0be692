"""Django middleware emitting ``service_request`` events for configured routes.

settings.py::

    MIDDLEWARE = ["producers.hooks.django.MayakDjangoMiddleware", ...]
    MAYAK_ROUTES = {"POST /xidmetler/{service_id}/muraciet": "service_application"}

In a view, once the customer is known: ``request.mayak_uid = customer.id``. Django turns
exceptions into 500 responses before they reach this middleware, so the status is recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from producers.hooks.routes import ServiceRoutes
from producers.hooks.service import ServiceRequests
from producers.hooks.tracker import Tracker


class MayakDjangoMiddleware:
    """Times each matching request; routes come from ``settings.MAYAK_ROUTES``."""

    def __init__(
        self,
        get_response: Callable[[Any], Any],
        routes: dict[str, str] | ServiceRoutes | None = None,
        tracker: Tracker | None = None,
    ) -> None:
        if routes is None:
            from django.conf import settings

            routes = getattr(settings, "MAYAK_ROUTES", {})
        self.get_response = get_response
        self.service = ServiceRequests(routes, tracker)

    def __call__(self, request: Any) -> Any:
        route = self.service.route(request.method, request.path_info)
        if route is None:
            return self.get_response(request)
        started = self.service.clock.monotonic()
        status = 500
        try:
            response = self.get_response(request)
            status = response.status_code
            return response
        finally:
            self.service.record(
                route.template,
                route.service_type,
                request.method,
                status,
                started,
                lambda: getattr(request, "mayak_uid", None),
                request.META.get("HTTP_USER_AGENT"),
                request.META.get("HTTP_DNT", ""),
                request.META.get("HTTP_SEC_GPC", ""),
            )
