"""Hostile inputs against the server hooks (red team, beside test_hooks / test_hooks_django).

The host application must never be broken by a hook (no exception of the hook's own reaching
the request, the app's own exception re-raised unchanged and recorded once, no slowed request
when Kafka is down or slow, no modified response), nothing personal may leave in clear, and
where the collector has a rule (User-Agent text, DNT/Sec-GPC, URL trimming) the hooks follow
it. Each test states the right behaviour; the Kafka producer is always a fake."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import threading
import time
from types import SimpleNamespace
from wsgiref.handlers import SimpleHandler

import kafka
import pytest

from producers.collector import door
from producers.hooks import MayakASGIMiddleware, MayakWSGIMiddleware, Tracker, configure, track
from producers.hooks.django import MayakDjangoMiddleware
from producers.hooks.tracker import default_tracker

PATH = "/xidmetler/998877/muraciet"
ROUTES = {
    "POST /xidmetler/{service_id}/muraciet": "service_application",
    "/kabinet/{rest:path}": "cabinet",
    "GET /sənədlər/{doc_id}": "documents",
}
KEY = base64.b64encode(b"m" * 32).decode()
UTF8_UA = "Mozilla/5.0 (Linux; Android 14; Galaxy Ə) MyApp/2.0\u202e".encode()


class Recorder:
    """A real Tracker whose sink records what would have been produced to Kafka."""

    def __init__(self, sink=None, **kw) -> None:
        self.items: list[bytes] = []
        sink = sink or (lambda key, value: self.items.append(value))
        self.tracker = Tracker("elegal", sink, b"k" * 32, **kw)

    def events(self) -> list[dict]:
        self.tracker.flush()
        return [json.loads(v) for v in self.items]


@pytest.fixture
def rec():
    r = Recorder()
    yield r
    r.tracker.close()


def _asgi_app(exc=None, started=False):
    async def app(scope, receive, send):
        await receive()
        if exc is None or started:
            await send({"type": "http.response.start", "status": 201, "headers": []})
        if exc is not None:
            raise exc  # before, or after the response started
        await send({"type": "http.response.body", "body": b"ok"})

    return app


def _wsgi_app(exc=None, started=False):
    def app(environ, start_response):
        environ["wsgi.input"].read()
        if exc is None or started:
            start_response("201 Created", [("Content-Length", "2")])
        if exc is not None:
            raise exc  # nothing written yet: after start_response the server still sends 500
        return [b"ok"]

    return app


def _hit(kind, rec, *, headers=(), path=PATH, method="POST", query=b"", extra=None, **kw):
    """One request through the ASGI or WSGI middleware around ``_asgi_app`` / ``_wsgi_app``
    (``exc``, ``started``; other keywords go to the middleware); returns the status sent."""
    app_kw = {k: kw.pop(k) for k in ("exc", "started") if k in kw}
    sent: list = []
    if kind == "asgi":
        scope = {"type": "http", "method": method, "path": path, "raw_path": path.encode()}
        scope |= {"query_string": query, "root_path": "", "headers": list(headers)}
        scope |= {"client": ("203.0.113.7", 5000), **(extra or {})}

        async def receive():
            return {"type": "http.request", "body": b"body-secret", "more_body": False}

        async def send(message):
            sent.append(message.get("status"))

        mw = MayakASGIMiddleware(_asgi_app(**app_kw), ROUTES, tracker=rec.tracker, **kw)
        asyncio.run(mw(scope, receive, send))
        return sent[0]
    env = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query.decode()}
    env |= {"wsgi.input": io.BytesIO(b"body-secret"), "REMOTE_ADDR": "203.0.113.7"}
    env |= extra or {}
    for name, value in headers:  # PEP 3333: latin-1 strings, repeated lines joined by ", "
        key = "HTTP_" + name.decode().upper().replace("-", "_")
        env[key] = ", ".join(filter(None, (env.get(key), value.decode("latin-1"))))
    mw = MayakWSGIMiddleware(_wsgi_app(**app_kw), ROUTES, tracker=rec.tracker, **kw)
    result = mw(env, lambda status, headers, exc_info=None: sent.append(status))
    b"".join(result)
    getattr(result, "close", lambda: None)()
    return int(sent[0].split()[0])


# --- nothing personal leaves ------------------------------------------------------------

HOSTILE_HEADERS = [
    (b"user-agent", b"Mozilla/5.0 Test"),
    (b"authorization", b"Bearer tok-SECRET"),
    (b"cookie", b"sessionid=cookie-SECRET; _mk=vid-SECRET"),
    (b"x-forwarded-for", b"198.51.100.77, 203.0.113.9"),
    (b"forwarded", b"for=198.51.100.78"),
    (b"x-real-ip", b"198.51.100.79"),
    (b"referer", b"https://e-legal.az/kabinet?email=john%40x.az"),
    (b"x-customer-id", b"998877"),
]
LEAKS = (b"SECRET", b"998877", b"john", b"994501234567", b"198.51.100", b"203.0.113", b"body")
EMITTED = {"v", "id", "type", "site", "ts", "received", "consent", "dnt", "gpc", "route"}
EMITTED |= {"service_type", "method", "status", "duration_ms", "uid", "ua"}
HOSTILE_PATHS = (
    "/kabinet/998877/john@x.az",
    "/kabinet/%2B994501234567\x00",
    "/kabinet/" + "ü" * 9**5,
)


@pytest.mark.parametrize("kind", ["asgi", "wsgi"])
def test_no_header_query_path_body_or_address_is_emitted(kind, rec) -> None:
    query = b"email=john%40x.az&phone=%2B994501234567&token=tok-SECRET"
    assert _hit(kind, rec, headers=HOSTILE_HEADERS, query=query) == 201
    for path in HOSTILE_PATHS:
        _hit(kind, rec, path=path, headers=HOSTILE_HEADERS, method="GET")
    events = rec.events()
    assert len(events) == 4
    for raw, event in zip(rec.items, events):
        assert set(event) <= EMITTED and "ip_enc" not in event, event
        assert all(leak not in raw for leak in LEAKS), raw[:300]


@pytest.mark.parametrize("field", ["url", "ref"])
def test_track_trims_urls_as_the_collector_door_does(field, rec) -> None:
    """The contract's url/ref are 'trimmed at the door'; track() is the hooks' door."""
    url = "https://u:tok-SECRET@e-legal.az/giris?email=john@x.az&utm_source=nl#994501234567"
    rec.tracker.track("pageview", **{field: url})
    assert rec.events()[0][field] == door.trim_url(url, frozenset())
    assert all(leak not in rec.items[0] for leak in LEAKS)


def test_track_takes_an_integer_customer_id_as_the_readme_shows(rec) -> None:
    """README: track("service_request", uid=customer.id, ...); the middlewares str() the id."""
    rec.tracker.track("service_request", uid=1001, service_type="notary", status=200)
    assert rec.events()[0]["uid"] == "1001"


@pytest.mark.parametrize("kind", ["asgi", "wsgi", "django"])
def test_a_utf8_user_agent_is_read_as_the_collector_reads_it(kind, rec) -> None:
    expected = door.user_agent(UTF8_UA.decode("latin-1"))
    assert expected == "Mozilla/5.0 (Linux; Android 14; Galaxy Ə) MyApp/2.0"
    if kind == "django":
        meta = {"HTTP_USER_AGENT": UTF8_UA.decode("latin-1")}  # Django's META: PEP 3333
        mw = MayakDjangoMiddleware(lambda r: SimpleNamespace(status_code=201), ROUTES, rec.tracker)
        mw(SimpleNamespace(method="POST", path_info=PATH, META=meta))
    else:
        _hit(kind, rec, headers=[(b"user-agent", UTF8_UA)])
    assert rec.events()[0]["ua"] == expected


@pytest.mark.parametrize("kind", ["asgi", "wsgi"])
def test_dnt_and_gpc_on_any_line_are_carried_as_the_collector_does(kind, rec) -> None:
    """Debatable: a service request is not a cookie visit, but the raw event says dnt=False."""
    _hit(kind, rec, headers=[(b"dnt", b"0"), (b"dnt", b"1x"), (b"sec-gpc", b"1")])
    event = rec.events()[0]
    assert (event["dnt"], event["gpc"]) == (True, True)


# --- the app is never broken ------------------------------------------------------------


def _no_customer(_: object) -> object:
    raise KeyError("user")  # e.g. get_uid=lambda scope: scope["user"].customer_id, anonymous


@pytest.mark.parametrize("kind", ["asgi", "wsgi"])
def test_a_failing_get_uid_never_reaches_the_app(kind, rec) -> None:
    assert _hit(kind, rec, get_uid=_no_customer) == 201
    err = RuntimeError("the app's own")
    with pytest.raises(RuntimeError) as raised:
        _hit(kind, rec, get_uid=_no_customer, exc=err)
    assert raised.value is err
    assert [(e["status"], e.get("uid")) for e in rec.events()] == [(201, None), (500, None)]


@pytest.mark.parametrize("kind", ["asgi", "wsgi"])
@pytest.mark.parametrize("exc", [RuntimeError("own"), KeyboardInterrupt()], ids=["error", "base"])
def test_the_apps_own_exception_is_reraised_unchanged_and_recorded_once(kind, exc, rec) -> None:
    with pytest.raises(type(exc)) as raised:
        _hit(kind, rec, exc=exc)
    assert raised.value is exc
    assert [e["status"] for e in rec.events()] == [500]


@pytest.mark.parametrize("kind", ["asgi", "wsgi"])
def test_an_app_that_raises_after_starting_its_response_is_recorded_as_500(kind, rec) -> None:
    """README: 'status (500 if the app raised)'. WSGI: nothing was written, the server sends
    a 500. ASGI (debatable): the client saw a 201 head, then a broken body."""
    with pytest.raises(RuntimeError):
        _hit(kind, rec, exc=RuntimeError("mid-response"), started=True)
    assert [e["status"] for e in rec.events()] == [500]


def test_a_streamed_wsgi_body_is_unchanged_and_recorded_once_when_closed(rec) -> None:
    def app(environ, start_response):
        start_response("200 OK", [])
        yield b"a"
        environ["mayak.uid"] = "CUST-5"  # known only while streaming
        yield b"b"

    env = {"REQUEST_METHOD": "GET", "PATH_INFO": "/kabinet/x"}
    body = MayakWSGIMiddleware(app, ROUTES, tracker=rec.tracker)(env, lambda *a: None)
    assert list(body) == [b"a", b"b"]
    body.close()
    body.close()  # a wrapping middleware and the server may both close
    assert [(e["status"], e["uid"]) for e in rec.events()] == [(200, "CUST-5")]


def test_an_unrecordable_customer_id_is_not_logged_in_clear(rec, caplog) -> None:
    """A uid over the contract's 128 characters is refused; the warning quoted it in full."""
    uid = "john.doe@example.az/" + "x" * 120
    _hit("wsgi", rec, get_uid=lambda env: uid)
    assert "john.doe@example.az" not in caplog.text


def test_wsgi_response_headers_are_unchanged_by_the_hook(rec) -> None:
    """wsgiref sets Content-Length for a one-chunk list body (len(result) == 1)."""

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"hello"]

    def head(wsgi_app) -> list[bytes]:
        out, env = io.BytesIO(), {"REQUEST_METHOD": "GET", "PATH_INFO": "/kabinet/x"}
        env |= {"SERVER_NAME": "x", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1"}
        SimpleHandler(io.BytesIO(), out, io.StringIO(), env).run(wsgi_app)
        return [h for h in out.getvalue().split(b"\r\n\r\n")[0].split(b"\r\n") if b"Date" not in h]

    assert head(MayakWSGIMiddleware(app, ROUTES, tracker=rec.tracker)) == head(app)
    assert len(rec.events()) == 1


@pytest.mark.parametrize(
    "environ, status_line",
    [
        ({}, "200 OK"),
        ({"REQUEST_METHOD": "POST", "PATH_INFO": b"/xidmetler/1/muraciet"}, "200 OK"),
        ({"REQUEST_METHOD": "POST", "PATH_INFO": PATH}, "201\tCreated"),  # gunicorn: split()
    ],
    ids=["empty", "bytes-path", "tab-status"],
)
def test_wsgi_oddities_are_left_to_the_server_not_raised_by_the_hook(environ, status_line, rec):
    def app(env, start_response):
        start_response(status_line, [])
        return [b"x"]

    seen: list[str] = []
    mw = MayakWSGIMiddleware(app, ROUTES, tracker=rec.tracker)
    out = mw(environ, lambda status, headers, exc_info=None: seen.append(status))
    assert list(out) == [b"x"] and seen == [status_line]


@pytest.mark.parametrize(
    "scope",
    [
        {"type": "websocket", "path": PATH},
        {"type": "lifespan"},
        {"type": "http", "method": "POST", "path": PATH},
    ],
    ids=["websocket", "lifespan", "http-without-headers-client"],
)
async def test_odd_asgi_scopes_and_streamed_messages_pass_through_unchanged(scope, rec) -> None:
    messages = [{"type": "http.response.start", "status": 200, "headers": []}]
    messages += [{"type": "http.response.body", "body": b"a", "more_body": True}]
    messages += [{"type": "http.response.body", "body": b"b"}]
    seen: list[object] = []

    async def app(s, receive, send):
        seen.append(s)
        for message in messages:
            await send(message)

    async def send(m):
        seen.append(m)

    await MayakASGIMiddleware(app, ROUTES, tracker=rec.tracker)(scope, None, send)
    assert all(a is b for a, b in zip(seen, [scope, *messages], strict=True))
    assert len(rec.events()) == (scope["type"] == "http")


# --- routes are matched as the framework matches them ------------------------------------


@pytest.mark.parametrize(
    "kind, path, extra",
    [
        ("asgi", "/portal" + PATH, {"root_path": "/portal"}),  # uvicorn --root-path /portal
        ("wsgi", PATH, {"SCRIPT_NAME": "/portal"}),
    ],
)
def test_an_app_served_under_a_prefix_is_recorded(kind, path, extra, rec) -> None:
    _hit(kind, rec, path=path, extra=extra)
    assert [e["route"] for e in rec.events()] == ["/xidmetler/{service_id}/muraciet"]


def test_a_non_ascii_route_matches_under_wsgi_as_under_asgi(rec) -> None:
    """PEP 3333: PATH_INFO is the URL's bytes decoded as latin-1 (Flask re-decodes as UTF-8)."""
    _hit("asgi", rec, path="/sənədlər/55", method="GET")
    _hit("wsgi", rec, path="/sənədlər/55".encode().decode("latin-1"), method="GET")
    assert [e["route"] for e in rec.events()] == ["/sənədlər/{doc_id}"] * 2


# --- Kafka down, slow or broken; volume --------------------------------------------------


@pytest.mark.parametrize("via", ["middleware", "track"])
def test_kafka_down_never_slows_requests_without_a_configured_tracker(via, tmp_path, monkeypatch):
    """kafka-python 3 bootstraps inside KafkaProducer() and waits up to 30 s for a broker that
    is down. The default tracker is built in the portal's first tracked request (ASGI: on the
    event loop), so the producer must be built on the tracker's own thread, never the caller's;
    a failed build is tried again later, again off the request."""
    builds: list[threading.Thread] = []

    def dead_producer(**config) -> None:
        builds.append(threading.current_thread())
        raise kafka.errors.KafkaTimeoutError("bootstrap timed out")

    monkeypatch.setattr(kafka, "KafkaProducer", dead_producer)
    monkeypatch.setenv("MAYAK_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MAYAK_IP_KEY", KEY)
    configure(None)
    mw = MayakWSGIMiddleware(_wsgi_app(), ROUTES)
    env = {"REQUEST_METHOD": "POST", "PATH_INFO": PATH, "wsgi.input": io.BytesIO()}
    try:
        for _ in range(2):
            if via == "track":
                track("service_request", service_type="notary", status=200)
            else:
                mw(env, lambda *a: None).close()
        tracker = default_tracker()
        tracker.flush()
        assert len(builds) == 2 and threading.current_thread() not in builds
        assert tracker.failed == 2  # counted, and the requests went on
    finally:
        configure(None)


@pytest.mark.parametrize("mode", ["blocks", "raises"])
def test_a_flood_with_kafka_stuck_or_failing_stays_bounded_and_fast(mode) -> None:
    gate = threading.Event()

    def sink(key: bytes, value: bytes) -> None:
        if mode == "blocks":
            gate.wait(60)  # a put that blocked would wait for this
        raise kafka.errors.KafkaTimeoutError("no ack")

    rec = Recorder(sink=sink, max_queue=50)
    try:
        started = time.monotonic()
        assert {_hit("asgi" if i % 2 else "wsgi", rec) for i in range(3000)} == {201}
        assert time.monotonic() - started < 30  # nowhere near the sink's 60 s
        assert rec.tracker._q.qsize() <= 50  # bounded: the rest is dropped and counted
    finally:
        gate.set()
        rec.tracker.close()
    assert rec.tracker.failed + rec.tracker.dropped == 3000
