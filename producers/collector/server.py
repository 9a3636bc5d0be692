"""uvicorn's httptools protocol with read limits, and the writes of one response sent as one.

Limits (uvicorn enforces none of them with httptools, and httptools buffers a header line
of any length): the request line and headers of one request may take at most
``max_head_bytes`` and ``max_headers`` fields (else 431 and the connection is closed), must
arrive within ``head_timeout_s`` of the connection (or of the request's first byte on a
kept-alive one), and the body within ``body_timeout_s`` after them (else 408 / closed). So a
slow or never-finishing client holds a connection for seconds, not for ever, and an endless
header costs at most a few tens of KB. Idle kept-alive connections are closed by uvicorn
(``timeout_keep_alive``) until a byte arrives; from that byte on the head's deadline runs,
even for bytes no request starts with (blank lines between requests). ``configure`` sets the
limits of this process from the settings.

uvicorn writes a response's status line and headers, then its body, with two
``transport.write`` calls, and uvloop sends each at once: two system calls per beacon. On the
benchmark machine the header write alone took a fifth of the event loop's time under load
(py-spy, GIL held). Here a connection's writes within one event-loop iteration are joined
and sent once, at the end of the iteration (a few microseconds later).
"""

from __future__ import annotations

import asyncio
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from mayak.settings import Settings


class _CoalescingTransport:
    """Collects ``write``s until the loop comes round; everything else goes to ``transport``."""

    __slots__ = ("_loop", "_pending", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(data)

    def _flush(self) -> None:
        data, self._pending = b"".join(self._pending), []
        if data and not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        self._flush()  # what was written before close() is sent, as with the bare transport
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class _HeadTooLarge(Exception):
    """Raised from a parser callback: the request's head is over a limit."""


def configure(settings: Settings) -> None:
    """Apply the collector's read limits to every connection this process serves."""
    cls = CoalescingHttpToolsProtocol
    cls.max_head_bytes = settings.collector_max_header_bytes
    cls.max_headers = settings.collector_max_headers
    cls.head_timeout_s = settings.collector_header_timeout_s
    cls.body_timeout_s = settings.collector_body_timeout_s


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """One connection: uvicorn's httptools protocol plus the read limits above."""

    max_head_bytes = Settings.model_fields["collector_max_header_bytes"].default
    max_headers = Settings.model_fields["collector_max_headers"].default
    head_timeout_s = Settings.model_fields["collector_header_timeout_s"].default
    body_timeout_s = Settings.model_fields["collector_body_timeout_s"].default

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.transport = _CoalescingTransport(transport, self.loop)  # type: ignore[assignment]
        self._in_head = True  # reading a request line and headers (or waiting for one)
        self._head_bytes = 0
        self._head_fields = 0
        self._head_size = 0  # bytes of the header fields so far (counted as they are parsed)
        # The read deadline (loop time; None: not reading) and one lazy timer per connection.
        # A request moves the deadline only; the timer, when it fires early, re-arms for what
        # is left. Creating and cancelling a uvloop timer twice per request (head, then body)
        # cost about a tenth of the event loop under load (py-spy), for timers that never fire.
        self._deadline: float | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._arm(self.head_timeout_s)

    def connection_lost(self, exc: Exception | None) -> None:
        self._deadline = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        super().connection_lost(exc)

    def _arm(self, seconds: float) -> None:
        deadline = self._deadline = self.loop.time() + seconds
        if self._timer is not None and self._timer_at <= deadline:
            return  # the pending timer fires first and re-arms for the rest
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self.loop.call_at(deadline, self._check_deadline)
        self._timer_at = deadline

    def _disarm(self) -> None:
        self._deadline = None  # the pending timer, if any, finds nothing to do

    def _check_deadline(self) -> None:
        self._timer = None
        deadline = self._deadline
        if deadline is None:
            return
        if deadline > self.loop.time():
            self._timer = self.loop.call_at(deadline, self._check_deadline)
            self._timer_at = deadline
            return
        self._read_timed_out()

    def _read_timed_out(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self.cycle is None or self.cycle.response_complete:
            self._refuse(408, b"Request Timeout", "request not received in time")
        else:  # the app is reading the body: it sees a disconnect
            self.transport.close()

    def _refuse(self, status: int, phrase: bytes, msg: str) -> None:
        body = msg.encode()
        self.transport.write(
            b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (status, phrase, len(body), body)
        )
        self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self.transport.is_closing():
            return
        self._unset_keepalive_if_required()
        if self._in_head:
            self._head_bytes += len(data)
            # any byte ends the keep-alive wait (uvicorn cancels its idle timer above), even
            # one the parser skips: the blank lines allowed between requests start no message,
            # so without this a newline every few seconds held a connection for ever
            if self._deadline is None:
                self._arm(self.head_timeout_s)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:  # as uvicorn's
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        except httptools.HttpParserError as exc:
            if isinstance(exc.__context__, _HeadTooLarge):
                self._refuse(431, b"Request Header Fields Too Large", str(exc.__context__))
            else:
                self.send_400_response("Invalid HTTP request received.")
            return
        if self._in_head and self._head_bytes > self.max_head_bytes:  # an unfinished head
            self._refuse(431, b"Request Header Fields Too Large", "request head too large")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_fields = 0
        self._head_size = 0
        if self._deadline is None:
            self._arm(self.head_timeout_s)

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        if len(self.url) > self.max_head_bytes:
            raise _HeadTooLarge("request line too large")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_fields += 1
        self._head_size += len(name) + len(value) + 4
        if self._head_fields > self.max_headers:
            raise _HeadTooLarge(f"more than {self.max_headers} header fields")
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        if len(self.url) + self._head_size > self.max_head_bytes:
            raise _HeadTooLarge("request head too large")
        self._in_head = False
        self._arm(self.body_timeout_s)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        self._in_head = True
        self._head_bytes = 0
        super().on_message_complete()
