"""Which requests become ``service_request`` events, and under which route template.

Routes are configured as ``{"POST /xidmetler/{service_id}/muraciet": "service_application"}``
(method optional; ``{name}`` matches one path segment, ``{name:path}`` the rest). Only the
template is ever emitted, never the raw path, so ids and names in URLs never leave the portal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(:path)?\}")


@dataclass(frozen=True)
class Route:
    """One configured route: optional method, the template, its regex and service type."""

    method: str | None
    template: str
    pattern: re.Pattern[str]
    service_type: str


def _compile(template: str) -> re.Pattern[str]:
    out, pos = [], 0
    for m in _PARAM.finditer(template):
        out.append(re.escape(template[pos : m.start()]))
        out.append(".+" if m.group(2) else "[^/]+")
        pos = m.end()
    out.append(re.escape(template[pos:]))
    return re.compile("".join(out) + "/?")


class ServiceRoutes:
    """Matches (method, path) against the configured templates, first match wins.

    Not the stream jobs' ``anonymizer.scrub.RouteTemplates`` (``MAYAK_ROUTE_TEMPLATES``,
    ``/cases/:id``): these are the portal's server routes, written in its web framework's
    ``{name}`` notation, and decide which requests become ``service_request`` events (and
    their service type); those collapse page paths of browser events in the pipeline, in the
    ``:name`` notation of the ``:id`` the anonymizer puts for ids itself. Both templates reach
    the warehouse as they are written, so neither notation can change without changing the
    stored paths."""

    def __init__(self, routes: dict[str, str]) -> None:
        self.routes: list[Route] = []
        for spec, service_type in routes.items():
            method, _, template = spec.partition(" ") if " " in spec else ("", "", spec)
            self.routes.append(
                Route(method.upper() or None, template, _compile(template), service_type)
            )

    def match(self, method: str, path: str) -> Route | None:
        for route in self.routes:
            if route.method not in (None, method.upper()):
                continue
            if route.pattern.fullmatch(path):
                return route
        return None
