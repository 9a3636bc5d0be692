"""The few response headers every dashboards answer carries (a pure ASGI middleware).

* ``X-Content-Type-Options: nosniff`` on everything: a JSON error that echoes a caller's
  ``<script>`` (an unknown site's name) or a CSV is never sniffed into HTML by a browser.
* ``Cache-Control: no-store`` on every ``/api/`` answer, refusals included: figures, exports,
  the audit and an erasure's result must not stay in a browser's or a proxy's cache after the
  tab is closed (the pages themselves hold no figure and say ``no-cache``).
* ``X-Frame-Options: DENY`` and CSP ``frame-ancestors 'none'`` on everything: no page is
  meant to be framed, and a framed admin page with a token in its localStorage could be
  clickjacked into an erasure. (Plausible and Matomo send the same two, as SAMEORIGIN, since
  they embed their own dashboards; Mayak embeds none.)
* The rest of the ``Content-Security-Policy``: scripts, styles, images and API calls from this
  origin only, no inline script and no ``eval``. The pages keep every script in /static, so a
  value some API answer echoes that slipped past ``textContent`` into markup still runs
  nothing, and a stolen-token script cannot be injected or sent elsewhere (``connect-src``).
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

EVERY_ANSWER = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "; ".join(
        (
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    ),
}


class SecurityHeaders:
    """Adds ``EVERY_ANSWER`` to each response, and ``Cache-Control: no-store`` under /api/."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        private = scope["path"].startswith("/api/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in EVERY_ANSWER.items():
                    headers.setdefault(name, value)
                if private:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)
