"""How every Mayak process serves the dashboards: one uvicorn configuration for the worker's
thread (embedded ClickHouse), `mayak dashboards` (server mode) and the tests.

``http`` is h11, whose parser refuses a request head over ``MAX_HEAD_BYTES`` (a 400 and the
connection closed): uvicorn's httptools protocol buffers a header of any length, and a
client streaming one header line grew the process by 199 MB in 200 MB (with embedded
ClickHouse that process is the worker, which lands every event). The dashboards' traffic is a
few people's pages, where h11's pure-Python parsing costs nothing measurable.

``proxy_headers`` is off: uvicorn's default rewrites the client address from
X-Forwarded-For whenever the peer is 127.0.0.1, so any process on the host (or a proxy that
passes a client's own header through) chose the address that the rate limit of token-less
calls counts. The app reads the address itself, believing only
``dashboards_trusted_proxies`` (``dashboards.app.client_address``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import uvicorn

from dashboards.app import create_app
from mayak.settings import Settings

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

    from anonymizer.keystore import KeyStoreLike


#: the largest request line and headers the dashboards read (a page's real ones: under 2 KB)
MAX_HEAD_BYTES = 16 * 1024


def server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's settings for the dashboards (``uvicorn.run(app, **server_options(...))``)."""
    return {
        "host": settings.dashboards_host,
        "port": settings.dashboards_port,
        "log_level": "warning",
        "lifespan": "on",
        "proxy_headers": False,
        "http": "h11",
        "h11_max_incomplete_event_size": MAX_HEAD_BYTES,
    }


def server_config(
    settings: Settings, client: Client, keys: KeyStoreLike | None = None, **overrides: Any
) -> uvicorn.Config:
    """The dashboards app on ``client`` with ``server_options`` (``overrides``: the tests'
    port, logging, lifespan)."""
    options = {**server_options(settings), **overrides}
    return uvicorn.Config(create_app(settings, client, keys), **options)
