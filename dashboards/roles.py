"""The dashboards' roles and who may use what: the one list.

The app enforces these groups on each endpoint (``dashboards.app``), the pages' navigation and
``GET /api/me`` read them (``dashboards.pages``), the OpenAPI description names them as
``x-roles`` (``dashboards.openapi``) and ``mayak token add`` accepts only ``ROLES``.
"""

from __future__ import annotations

ROLES = ("product", "marketing", "researcher", "admin")
PRODUCT = ("product", "admin")
MARKETING = ("marketing", "admin")
RESEARCH = ("researcher", "admin")
ADMIN = ("admin",)


def either(*groups: tuple[str, ...]) -> tuple[str, ...]:
    """The roles of any of ``groups``, each once, in the order given."""
    return tuple(dict.fromkeys(role for group in groups for role in group))
