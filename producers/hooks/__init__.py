"""Server hooks: ``track()`` and the ASGI / WSGI / Django middlewares for portal code."""

from producers.hooks.asgi import MayakASGIMiddleware
from producers.hooks.routes import ServiceRoutes
from producers.hooks.tracker import Tracker, configure, track
from producers.hooks.wsgi import MayakWSGIMiddleware

__all__ = [
    "MayakASGIMiddleware",
    "MayakWSGIMiddleware",
    "ServiceRoutes",
    "Tracker",
    "configure",
    "track",
]
