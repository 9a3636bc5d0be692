"""The collector: a pure Starlette app, the front door between browsers / e-mail and Kafka.

Endpoints: ``POST /e`` (one event or an array of up to 50; JSON also as text/plain from
sendBeacon), ``GET /o/{campaign}/{recipient}.gif`` (e-mail-open pixel), ``GET /t.js`` (the
beacon), ``GET /healthz`` (alive), ``GET /readyz`` (Kafka takes events), ``GET /metrics``.
It refuses with clear answers (413 / 429 / 403 /
400 naming the field / 503), counts each refusal by reason, trims URLs, encrypts the client
IP and answers 2xx only once Kafka acknowledged. The Kafka producer is owned by the lifespan.
"""

from __future__ import annotations

import contextlib
import gzip
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from contract import raw_seal
from contract.schema import ClientEvent, field_of
from mayak.client_address import ClientAddress, rate_bucket
from mayak.clock import SYSTEM_CLOCK, Clock
from mayak.ratelimit import RateLimiter
from mayak.settings import Settings
from producers.collector import door
from producers.collector.events import EventFactory
from producers.collector.limits import TooLarge, read_capped
from producers.collector.metrics import Metrics
from producers.collector.outbox import Outbox, Unavailable
from producers.collector.pixel_gate import PixelGate, fetch_signals

log = logging.getLogger("mayak.collector")
MAX_BODY = 64 * 1024
MAX_BATCH = 50
IDLE_S = 10.0  # /readyz: no ack for this long and nothing waiting: ask the broker itself
BEACON = Path(__file__).resolve().parents[1] / "beacon" / "dist" / "t.js"
GIF = bytes.fromhex(
    "47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b"
)  # 1x1 transparent GIF, 43 bytes
#: the request headers the POST /e handler reads (ASGI servers send names in lower case)
#: headers whose every line counts: the proxies' chain (in order), and the privacy signals
#: (a "1" on any line is the browser's wish, whatever another line says)
_EVERY_LINE = frozenset({b"x-forwarded-for", b"forwarded", b"dnt", b"sec-gpc"})
_WANTED = frozenset(
    {
        b"content-length",
        b"x-forwarded-for",
        b"forwarded",
        b"origin",
        b"user-agent",
        b"accept-language",
        b"dnt",
        b"sec-gpc",
    }
)
#: (status, raw headers, body) of a bare ASGI response; status 0: nothing to send
RawResponse = tuple[int, list[tuple[bytes, bytes]], bytes]


def _json(status: int, content: dict, headers: dict[str, str] | None = None) -> RawResponse:
    """What ``JSONResponse(content, status, headers)`` sends, byte for byte."""
    body = orjson.dumps(content)
    raw = (
        [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        if headers
        else []
    )
    raw.append((b"content-length", str(len(body)).encode()))
    raw.append((b"content-type", b"application/json"))
    return status, raw, body


NO_CACHE = {
    "Cache-Control": "no-store, no-cache, must-revalidate, private, max-age=0",
    "Pragma": "no-cache",
    "Expires": "0",
}


class Collector:
    """Request handlers plus the state they share (limits, counters, the outbox)."""

    def __init__(self, settings: Settings, outbox: Outbox, clock: Clock = SYSTEM_CLOCK) -> None:
        self.settings = settings
        self.outbox = outbox
        self.clock = clock
        self.metrics = Metrics()
        self.metrics.gauges["pending_events"] = lambda: self.outbox.pending
        self.metrics.gauges["kafka_ready"] = lambda: int(self.outbox.status()[0])
        self.limiter = RateLimiter(
            settings.collector_rate_per_s, settings.collector_rate_burst, clock=clock
        )
        self.addresses = ClientAddress(
            settings.collector_trusted_proxies, settings.collector_proxy_header
        )
        for globs in settings.collector_sites.values():  # a bad pattern fails at start-up
            [door.parse_origin_glob(g) for g in globs]
        self._all_globs = tuple(g for globs in settings.collector_sites.values() for g in globs)
        self.factory = EventFactory(settings, clock)
        self.pixels = PixelGate(settings.collector_pixel_dedupe_s, clock=clock)
        self.beacon = BEACON.read_bytes() if BEACON.exists() else b""
        self.beacon_gz = gzip.compress(self.beacon, 9, mtime=0)

    def refuse(
        self,
        status: int,
        reason: str,
        message: str,
        field: str | None = None,
        headers: dict | None = None,
        n: int = 1,
    ) -> JSONResponse:
        body = self._refusal(reason, message, field, n)
        return JSONResponse(body, status_code=status, headers=headers)

    def refuse_raw(
        self,
        status: int,
        reason: str,
        message: str,
        field: str | None = None,
        headers: dict | None = None,
        n: int = 1,
    ) -> RawResponse:
        """``refuse`` for the bare ASGI handler: the same status, body and headers."""
        return _json(status, self._refusal(reason, message, field, n), headers)

    def _refusal(self, reason: str, message: str, field: str | None, n: int) -> dict:
        """Count ``n`` refused events under ``reason``; the JSON body that says why."""
        self.metrics.refuse(reason, n)
        return {"error": message, "reason": reason} | ({"field": field} if field else {})

    def _ip(self, request: Request) -> str:
        peer = request.client.host if request.client else None
        return self.addresses.of(peer, request.headers.getlist(self.addresses.header))

    def _cors(self, origin: str | None) -> dict[str, str]:
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"} if origin else {}

    async def collect(self, scope: Scope, receive: Receive, send: Send) -> None:
        """POST /e, as a bare ASGI handler: it is the hot path, so it skips the framework's
        routing, request and response objects (see ``CollectorApp``)."""
        status, headers, body = await self._collect(scope, receive)
        if status:
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})

    async def _collect(self, scope: Scope, receive: Receive) -> RawResponse:
        h: dict[bytes, bytes] = {}
        for name, value in scope["headers"]:
            if name not in _WANTED:
                continue
            if name not in h:  # the first one wins, as in Starlette
                h[name] = value
            elif name in _EVERY_LINE:
                h[name] += b", " + value
        headers = {k.decode(): v.decode("latin-1") for k, v in h.items()}
        status, raw, body = answer = await self._judge(scope, receive, headers)
        origin = headers.get("origin")
        # a refusal to one of our own sites' pages carries CORS headers: without them the
        # browser sees a network error, and the beacon retries what will never pass
        if (
            status >= 400
            and origin
            and all(name != b"access-control-allow-origin" for name, _ in raw)
            and door.origin_allowed(origin, self._all_globs)
        ):
            cors = [
                (k.lower().encode(), v.encode("latin-1")) for k, v in self._cors(origin).items()
            ]
            return status, cors + raw, body
        return answer

    async def _judge(self, scope: Scope, receive: Receive, headers: dict[str, str]) -> RawResponse:
        """The answer to one POST /e, from its wanted headers (``_collect``)."""
        client = scope.get("client")
        forwarded = headers.get(self.addresses.header)  # its lines joined by _collect
        ip = self.addresses.of(client[0] if client else None, (forwarded,) if forwarded else ())
        bucket = rate_bucket(ip)
        if not self.limiter.allow(bucket):
            return self.refuse_raw(
                429, "rate_limited", "too many requests", headers={"Retry-After": "1"}
            )
        try:
            body = await read_capped(receive, headers.get("content-length"), MAX_BODY)
        except TooLarge:
            return self.refuse_raw(413, "too_large", f"body over {MAX_BODY} bytes")
        if body is None:  # the client went away
            return 0, [], b""
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            return self.refuse_raw(400, "invalid", "body is not JSON", "body")
        single = isinstance(data, dict)
        items = [data] if single else data
        if not isinstance(items, list) or not 1 <= len(items) <= MAX_BATCH:
            return self.refuse_raw(
                400, "invalid", f"an event object or an array of 1..{MAX_BATCH}", "body"
            )
        # the rate is per event: the request's token was taken above, the batch's others now
        self.limiter.charge(bucket, len(items) - 1)
        events: list[ClientEvent] = []
        for i, item in enumerate(items):
            try:
                events.append(ClientEvent.model_validate(item))
            except ValidationError as exc:
                err = exc.errors()[0]
                where = field_of(err) if single else f"{i}.{field_of(err)}"
                return self.refuse_raw(400, "invalid", err["msg"], where, n=len(items))
        origin = headers.get("origin")
        for ev in events:
            globs = self.settings.collector_sites.get(ev.site)
            if globs is None:
                return self.refuse_raw(
                    403, "unknown_site", f"unknown site {ev.site!r}", "site", n=len(events)
                )
            if not door.origin_allowed(origin, globs):
                return self.refuse_raw(
                    403, "origin_not_allowed", "Origin not allowed for this site", n=len(events)
                )
        dnt, gpc = door.privacy_signals(headers)
        keep = [ev for ev in events if not self.factory.dropped_by_privacy(ev, dnt, gpc)]
        if len(keep) < len(events):
            self.metrics.refuse("privacy_signal", len(events) - len(keep))
        ctx = self.factory.context(headers, ip, dnt, gpc)
        try:
            records = [self.factory.from_client(ev, ctx) for ev in keep]
        except ValidationError as exc:  # e.g. a URL that grew past the limit when scrubbed
            return self.refuse_raw(
                400, "invalid", exc.errors()[0]["msg"], field_of(exc.errors()[0]), n=len(keep)
            )
        if records:
            try:
                await self.outbox.produce(records)
            except Unavailable:
                return self.refuse_raw(
                    503,
                    "unavailable",
                    "try again",
                    n=len(records),
                    headers={"Retry-After": "2"} | self._cors(origin),
                )
            self.metrics.accepted += len(records)
        return _json(202, {"accepted": len(records)}, self._cors(origin))

    async def preflight(self, request: Request) -> Response:
        """OPTIONS /e: CORS preflight for clients that POST application/json. Only an Origin
        allowed for some site gets the CORS headers (the site is in the body, which a
        preflight does not carry); any other Origin is refused, never echoed."""
        origin = request.headers.get("origin")
        if origin is not None and not door.origin_allowed(origin, self._all_globs):
            return self.refuse(403, "origin_not_allowed", "Origin not allowed")
        headers = self._cors(origin) | {
            "Access-Control-Allow-Methods": "POST",
            "Access-Control-Allow-Headers": "Content-Type",
            "Access-Control-Max-Age": "86400",
        }
        return Response(status_code=204, headers=headers)

    async def pixel(self, request: Request) -> Response:
        """GET (or HEAD) /o/{campaign}/{recipient}.gif: the e-mail open. Not rate-limited per
        IP (mail proxies fetch whole campaigns from one address): de-duplicated instead."""
        ip = self._ip(request)
        dnt, gpc = door.privacy_signals(
            {name: ", ".join(request.headers.getlist(name)) for name in ("dnt", "sec-gpc")}
        )
        ctx = self.factory.context(request.headers, ip, dnt, gpc)
        campaign, recipient = request.path_params["campaign"], request.path_params["recipient"]
        fetch = fetch_signals(request.method, request.headers, request.query_params)
        try:
            record = self.factory.email_open(campaign, recipient, ctx, fetch)
        except ValidationError as exc:
            return self.refuse(400, "invalid", "bad pixel URL", field_of(exc.errors()[0]))
        if record is None:
            self.metrics.refuse("privacy_signal")
        elif not self.pixels.first(campaign, recipient, ip, ctx.ua):
            self.metrics.refuse("pixel_repeat")
        else:
            try:
                await self.outbox.produce([record])
            except Unavailable:
                self.pixels.forget(campaign, recipient, ip, ctx.ua)  # the retry must count
                return self.refuse(503, "unavailable", "try again", headers=NO_CACHE)
            self.metrics.accepted += 1
        return Response(GIF, media_type="image/gif", headers=NO_CACHE)

    async def script(self, request: Request) -> Response:
        """GET /t.js: the beacon, gzipped when the client accepts it."""
        headers = {"Cache-Control": "public, max-age=3600", "Vary": "Accept-Encoding"}
        if door.accepts_gzip(request.headers.get("accept-encoding", "")):
            return Response(
                self.beacon_gz,
                media_type="application/javascript",
                headers=headers | {"Content-Encoding": "gzip"},
            )
        return Response(self.beacon, media_type="application/javascript", headers=headers)

    async def healthz(self, request: Request) -> PlainTextResponse:
        """The process is alive (it may still be unable to hand events to Kafka)."""
        return PlainTextResponse("ok")

    async def readyz(self, request: Request) -> JSONResponse:
        """Whether events can be handed to Kafka now: 200, or 503 with the reason. Without
        recent traffic to judge by, whether a bootstrap broker accepts connections."""
        ready, reason = self.outbox.status()
        since = self.outbox.seconds_since_ack()
        if ready and self.outbox.pending == 0 and (since is None or since > IDLE_S):
            reason = await door.broker_reachable(self.settings.kafka_bootstrap)
            ready = reason == "ok"
        return JSONResponse({"ready": ready, "kafka": reason}, status_code=200 if ready else 503)

    async def metrics_endpoint(self, request: Request) -> PlainTextResponse:
        return PlainTextResponse(self.metrics.render(), media_type="text/plain; version=0.0.4")


def create_app(
    settings: Settings, outbox: Outbox | None = None, clock: Clock = SYSTEM_CLOCK
) -> CollectorApp:
    """The collector app; ``outbox`` and ``clock`` are injectable for tests (default: Kafka
    from settings, the system clock)."""
    box = outbox or Outbox(
        settings.kafka_bootstrap,
        settings.topic_raw,
        max_pending=settings.collector_max_pending,
        ack_timeout=settings.collector_ack_timeout_s,
        stall_s=settings.collector_stall_s,
        clock=clock,
        seal=raw_seal.sealer(raw_seal.key_of(settings), collector=True),
    )
    collector = Collector(settings, box, clock)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        box.close()

    routes = [  # POST /e is served by CollectorApp before these
        Route("/e", collector.preflight, methods=["OPTIONS"]),
        Route("/o/{campaign}/{recipient}.gif", collector.pixel, methods=["GET"]),
        Route("/t.js", collector.script, methods=["GET"]),
        Route("/healthz", collector.healthz, methods=["GET"]),
        Route("/readyz", collector.readyz, methods=["GET"]),
        Route("/metrics", collector.metrics_endpoint, methods=["GET"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.collector = collector
    return CollectorApp(collector, app)


class CollectorApp:
    """The ASGI entry point: ``POST /e`` (nearly every request) goes straight to the handler;
    everything else, and the lifespan, to the Starlette app."""

    def __init__(self, collector: Collector, app: Starlette) -> None:
        self.collector = collector
        self.app = app
        self.state = app.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/e" and scope["method"] == "POST":
            await self.collector.collect(scope, receive, send)
        else:
            await self.app(scope, receive, send)
