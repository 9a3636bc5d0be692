"""Hostile requests against the dashboards, research and admin API (red team, beyond
test_dash_guard and test_dash_fuzz): Authorization headers in odd forms and two at once, a
researcher's token aimed at admin endpoints through path and method tricks, a client-chosen
Host, foreign origins, the headers private answers need, polluted query strings and hostile
JSON bodies, on the app and on a real uvicorn server. Each test states the right answer: a
clear 4xx, or accepted with the hostile part neutralised; never a 5xx or a logged traceback."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import socket
import time
from collections.abc import Iterator, Sequence
from datetime import timedelta
from types import SimpleNamespace

import orjson
import pytest
from starlette.testclient import TestClient

from anonymizer.keystore import KeyStore
from dashboards import openapi
from dashboards import params as qp
from dashboards.app import create_app
from dashboards.auth import add_token, tokens_path
from dashboards.serve import server_config
from mayak.kafka_local import free_port
from mayak.settings import Settings
from tests.raw_http import exchange, serving
from tests.warehouse.samples import (
    START,
    drop,
    fresh_database,
    insert_events,
    synthetic_events,
)
from warehouse.migrate import migrate

pytestmark = pytest.mark.clickhouse
RANGE = {"site": "s1", "from": str(START.date()), "to": str(START.date() + timedelta(days=3))}
QUERY = "&".join(f"{k}={v}" for k, v in RANGE.items())
ROLES = ("product", "marketing", "researcher", "admin")
EVIL = "evil.example"


@pytest.fixture(autouse=True)
def no_traceback_logged(caplog) -> Iterator[None]:
    """Whatever was sent, nothing is logged at ERROR (a traceback, or a client library's
    complaint about a value it could not encode)."""
    caplog.set_level(logging.WARNING)
    yield
    errors = [r.getMessage() for r in caplog.get_records("call") if r.levelno >= logging.ERROR]
    assert errors == []


def _setup(tmp_path, wh, **over) -> SimpleNamespace:
    insert_events(wh, synthetic_events(200))
    settings = Settings(data_dir=tmp_path, **{"dashboards_unauth_burst": 10_000, **over})
    tokens = {role: add_token(tokens_path(settings), f"t.{role}", role) for role in ROLES}
    keys = KeyStore(tmp_path / "keys.db")
    app = create_app(settings, wh, keys)
    api = TestClient(app, raise_server_exceptions=False)
    return SimpleNamespace(app=app, api=api, tokens=tokens, wh=wh, keys=keys)


@pytest.fixture
def env(tmp_path, wh) -> Iterator[SimpleNamespace]:
    made = _setup(tmp_path, wh)
    yield made
    made.keys.close()


def _auth(env: SimpleNamespace, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {env.tokens[role]}"}


def _audit(wh) -> list[tuple]:
    return wh.query(
        "SELECT actor, endpoint, request, status FROM query_audit ORDER BY ts"
    ).result_rows


def _asgi(
    app,
    method: str,
    path: str,
    query: bytes = b"",
    headers: Sequence[tuple[bytes, bytes]] = (),
    chunks: Sequence[bytes] = (b"",),
    complete: bool = True,
) -> tuple[int, dict[bytes, bytes], bytes]:
    """One request straight into the ASGI app: raw header bytes, a path exactly as a server
    decoded it, a query string longer than an HTTP client will build, a body in chunks with no
    Content-Length (``complete=False``: the client goes away before the body's end)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": [(k.lower(), v) for k, v in headers],
        "client": ("198.51.100.1", 5000),
        "server": ("127.0.0.1", 8401),
    }
    pending = [
        {"type": "http.request", "body": c, "more_body": not complete or i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]
    answer: dict = {"status": None, "headers": {}, "body": b""}

    async def receive() -> dict:
        if pending:
            return pending.pop(0)
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
            answer["headers"] = dict(message["headers"])
        elif message["type"] == "http.response.body":
            answer["body"] += message.get("body", b"")

    asyncio.run(app(scope, receive, send))
    return answer["status"], answer["headers"], answer["body"]


# --- Authorization in odd forms ----------------------------------------------------------


def _lookalike(token: str) -> bytes:
    """The token with its "k" written as Cyrillic "к" (UTF-8 bytes, as a browser would send)."""
    return token.replace("mk_", "mк_", 1).encode()


AUTH_FORMS = [
    # (id, Authorization bytes from the token, who is let in: a role or None for 401)
    ("lower-case-scheme", lambda t: b"bearer " + t, "product"),  # RFC 9110 11.1: no case
    ("upper-case-scheme", lambda t: b"BEARER " + t, "product"),
    ("spaces-after-scheme", lambda t: b"Bearer    " + t, "product"),
    ("trailing-space", lambda t: b"Bearer " + t + b" ", "product"),
    ("bare-token", lambda t: t, None),  # no scheme: RFC 6750 2.1 names one
    ("other-scheme", lambda t: b"Token " + t, None),
    ("basic", lambda t: b"Basic " + base64.b64encode(t + b":"), None),
    ("tab-not-space", lambda t: b"Bearer\t" + t, None),
    ("trailing-nul", lambda t: b"Bearer " + t + b"\x00", None),
    ("trailing-unit-separator", lambda t: b"Bearer " + t + b"\x1f", None),
    ("trailing-nel", lambda t: b"Bearer " + t + b"\x85", None),
    ("trailing-nbsp", lambda t: b"Bearer " + t + b"\xa0", None),
    ("cyrillic-lookalike", lambda t: b"Bearer " + _lookalike(t.decode()), None),
    ("non-latin1-bytes", lambda t: b"Bearer \xff\xfe" + t, None),
    ("two-tokens-merged", lambda t: b"Bearer " + t + b", Bearer " + t, None),
]


@pytest.mark.parametrize(
    "form, expected", [(f, e) for _, f, e in AUTH_FORMS], ids=[i for i, _, _ in AUTH_FORMS]
)
def test_authorization_forms(env, form, expected) -> None:
    """The scheme ``Bearer`` in any case, then the token exactly: a bare token, another
    scheme, or the token with anything but HTTP's own spaces around it is no token (401,
    with WWW-Authenticate), never a 5xx."""
    header = form(env.tokens["product"].encode())
    status, headers, body = _asgi(env.app, "GET", "/api/me", headers=[(b"authorization", header)])
    if expected is None:
        assert status == 401, body
        assert headers[b"www-authenticate"].startswith(b"Bearer")
    else:
        assert status == 200, body
        assert orjson.loads(body)["role"] == expected


def test_a_megabyte_token_is_refused_cheaply_and_never_echoed_or_kept(env) -> None:
    """1 MB of token characters: a 401 in milliseconds, the token neither in the answer nor in
    the audit (a refused caller's request is not kept)."""
    huge = "A" * 1_000_000
    started = time.monotonic()
    for _ in range(10):
        got = env.api.get("/api/me", headers={"Authorization": f"Bearer {huge}"})
        assert got.status_code == 401
        assert len(got.content) < 200
    assert time.monotonic() - started < 5
    assert {row[2] for row in _audit(env.wh)} == {"{}"}


@pytest.mark.parametrize("first, second", [("product", "admin"), ("admin", "product")])
def test_two_authorization_lines_are_refused_in_either_order(env, first, second) -> None:
    """A product token and an admin token on two Authorization lines: which one a server, a
    proxy or a log takes is a guess, so neither is believed (RFC 6750 3.1 invalid_request,
    400) and the admin endpoint answers nothing. Before: the first line won, so an admin
    token sent first with a low-privilege one behind it read the audit."""
    lines = [("Authorization", f"Bearer {env.tokens[r]}") for r in (first, second)]
    got = env.api.get("/api/admin/audit", headers=lines)
    assert got.status_code == 400
    assert got.json()["error"] == "send one Authorization header"
    assert "queries" not in got.json()
    assert _audit(env.wh)[-1][::3] == ("unauthenticated", 400)


def test_two_authorization_lines_count_as_calls_without_a_valid_token(tmp_path, wh) -> None:
    """They are rate-limited per address like a 401, so they cannot fill the audit."""
    env = _setup(tmp_path, wh, dashboards_unauth_burst=3, dashboards_unauth_rate_per_s=0.01)
    lines = [("Authorization", "Bearer a"), ("Authorization", "Bearer b")]
    codes = [env.api.get("/api/me", headers=lines).status_code for _ in range(6)]
    env.keys.close()
    assert codes == [400] * 3 + [429] * 3
    assert len(_audit(wh)) == 3


def test_a_token_in_the_query_string_is_not_read(env) -> None:
    """``?access_token=`` (RFC 6750 2.3) would land in proxy and browser logs: not accepted,
    and the refused call keeps no parameter."""
    got = env.api.get("/api/me", params={"access_token": env.tokens["admin"]})
    assert got.status_code == 401
    assert env.tokens["admin"] not in str(_audit(env.wh))


# --- a researcher's token against other roles' endpoints -----------------------------------


@pytest.mark.parametrize(
    "method, path",
    [
        ("HEAD", "/api/admin/audit"),
        ("HEAD", "/api/stats/summary"),
        ("OPTIONS", "/api/admin/audit"),
        ("GET", "/api/admin/sweep"),  # a POST endpoint read with GET
        ("PUT", "/api/admin/erase"),
    ],
)
def test_other_methods_give_a_researcher_nothing(env, method, path) -> None:
    """HEAD runs the GET handler, role check included (403, no body); OPTIONS, PUT and GET on
    a POST endpoint are 405; none is a 2xx."""
    got = env.api.request(method, path, params=RANGE, headers=_auth(env, "researcher"))
    assert got.status_code == (403 if method == "HEAD" else 405)
    if method == "HEAD":
        assert got.content == b""


def test_method_and_url_override_headers_are_ignored(env) -> None:
    """Rails/Symfony/IIS conventions (X-HTTP-Method-Override, X-Method-Override,
    X-HTTP-Method, ``_method=``, X-Original-URL, X-Rewrite-URL, X-Forwarded-Prefix): the
    request is what its request line says. A GET on the sweep stays a 405 (nothing deleted)
    and /api/me stays /api/me."""
    tricks = {
        "X-HTTP-Method-Override": "POST",
        "X-Method-Override": "POST",
        "X-HTTP-Method": "POST",
        "X-Original-URL": "/api/admin/audit",
        "X-Rewrite-URL": "/api/admin/audit",
        "X-Forwarded-Prefix": "/api/admin",
    }
    sweep = env.api.get(
        "/api/admin/sweep", params={"_method": "POST"}, headers={**_auth(env, "admin"), **tricks}
    )
    assert sweep.status_code == 405
    me = env.api.get("/api/me", headers={**_auth(env, "researcher"), **tricks})
    assert me.status_code == 200 and me.json()["role"] == "researcher"
    assert [row[1] for row in _audit(env.wh)] == ["me"]


# --- the client-controlled Host ------------------------------------------------------------


@pytest.mark.parametrize(
    "path, role",
    [
        ("/", None),
        ("/admin", None),
        ("/admin/", None),  # trailing slash: Starlette redirected it to http://<Host>/admin
        ("/docs", None),
        ("/static", None),  # redirected to http://<Host>/static/
        ("/openapi.json", None),
        ("/?next=//evil.example", None),
        ("/admin?next=https://evil.example/", None),
        ("/api/me", "admin"),
        ("/api/me/", "admin"),  # redirected to http://<Host>/api/me, Authorization and all
        ("/api/stats/export?" + QUERY, "product"),
        ("/api/stats/summary/?" + QUERY, "product"),
    ],
)
def test_no_answer_names_a_client_chosen_host(env, path, role) -> None:
    """Host, X-Forwarded-Host, Forwarded host= and X-Forwarded-Proto are the client's: no
    redirect, link, server URL or download name is built from them (no 3xx at all, so no
    open redirect through ``next=`` either). Before: every trailing-slash path was a 307 to
    ``http://evil.example/...``."""
    headers = {
        "Host": EVIL,
        "X-Forwarded-Host": EVIL,
        "Forwarded": f"host={EVIL};proto=https",
        "X-Forwarded-Proto": "https",
        **(_auth(env, role) if role else {}),
    }
    got = env.api.get(path, headers=headers, follow_redirects=False)
    assert not 300 <= got.status_code < 400, got.headers.get("location")
    assert got.status_code in (200, 404)
    assert EVIL not in str(got.headers).lower()
    assert EVIL.encode() not in got.content


# --- CORS, caching and framing -------------------------------------------------------------


@pytest.mark.parametrize("origin", ["https://evil.example", "null", "http://127.0.0.1:8401.evil"])
def test_a_foreign_origin_gets_no_cors_grant(env, origin) -> None:
    """The API is for the pages of its own origin: a foreign page (or a sandboxed one,
    ``Origin: null``) gets no Access-Control-Allow-Origin on an answer with data, and its
    preflight for an Authorization header is not granted, so a browser never shows it the
    answer (the token in localStorage is not readable from there anyway)."""
    got = env.api.get("/api/me", headers={**_auth(env, "admin"), "Origin": origin})
    assert got.status_code == 200
    assert "access-control-allow-origin" not in got.headers
    assert "access-control-allow-credentials" not in got.headers
    preflight = env.api.options(
        "/api/admin/audit",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert preflight.status_code == 405
    assert not any(h.startswith("access-control-") for h in preflight.headers)


def _api_answers(env) -> list:
    admin, product = _auth(env, "admin"), _auth(env, "product")
    return [
        env.api.get("/api/stats/summary", params=RANGE, headers=product),
        env.api.get(
            "/api/stats/breakdown",
            params={**RANGE, "dimensions": "country", "format": "csv"},
            headers=product,
        ),
        env.api.get("/api/stats/export", params=RANGE, headers=product),
        env.api.get("/api/admin/audit", headers=admin),
        env.api.post("/api/admin/export", json={"customer": "c1"}, headers=admin),
        env.api.get("/api/admin/audit", headers=product),  # 403
        env.api.get("/api/admin/audit"),  # 401
        env.api.get("/api/stats/summary", params={**RANGE, "limit": "x"}, headers=product),  # 400
        env.api.get("/api/stats/summary", params={"site": "nope"}, headers=product),  # 404
    ]


def test_private_answers_are_never_stored_by_a_cache(env) -> None:
    """Figures, CSV and ZIP exports, the audit, a customer's export, and the refusals around
    them: ``Cache-Control: no-store`` (a shared browser or a proxy keeps none of it) and
    ``nosniff``. Before: no Cache-Control at all."""
    answers = _api_answers(env)
    assert [a.status_code for a in answers] == [200] * 5 + [403, 401, 400, 404]
    for answer in answers:
        assert answer.headers["cache-control"] == "no-store", answer.url
        assert answer.headers["x-content-type-options"] == "nosniff", answer.url


@pytest.mark.parametrize(
    "path", ["/", "/marketing", "/research", "/admin", "/docs", "/static/research.html"]
)
def test_pages_refuse_to_be_framed(env, path) -> None:
    """Clickjacking: no page may be framed by another site (an admin page framed under a
    decoy button is an erasure). X-Frame-Options for old browsers, CSP frame-ancestors for
    the rest; nosniff too. Before: neither."""
    got = env.api.get(path)
    assert got.status_code == 200 and got.headers["content-type"].startswith("text/html")
    assert got.headers["x-frame-options"] == "DENY"
    directives = got.headers["content-security-policy"].split(";")
    policy = dict(d.strip().split(" ", 1) for d in directives)
    assert policy["frame-ancestors"] == "'none'"
    # and no inline script: every page's scripts are files (tests/dashboards/test_dash_roles.py
    # runs each page under this policy in Chromium)
    assert policy["script-src"] == "'self'" and policy["default-src"] == "'self'"
    assert got.headers["x-content-type-options"] == "nosniff"


def test_html_in_an_echoed_value_stays_json(env) -> None:
    """An unknown site's name is echoed in the 404: as application/json with nosniff a
    browser never renders ``<script>`` from it."""
    site = "<script>alert(document.domain)</script>"
    got = env.api.get("/api/stats/summary", params={"site": site}, headers=_auth(env, "product"))
    assert got.status_code == 404
    assert got.headers["content-type"] == "application/json"
    assert got.headers["x-content-type-options"] == "nosniff"


def test_no_answer_sets_a_cookie(env) -> None:
    """The pages keep the token in localStorage and send it as a header: no cookie means no
    CSRF (a foreign form cannot add an Authorization header). Nothing sets one."""
    answers = [env.api.get(p) for p in ("/", "/admin", "/docs", "/openapi.json")]
    answers += [env.api.get("/static/common.js"), *_api_answers(env)]
    assert [a for a in answers if "set-cookie" in a.headers] == []


# --- hostile query strings -----------------------------------------------------------------


@pytest.mark.parametrize(
    "endpoint, pairs",
    [
        ("stats/summary", [("site", "nope"), *RANGE.items()]),
        ("stats/summary", [*RANGE.items(), ("site", "nope")]),
        ("stats/breakdown", [*RANGE.items(), ("dimensions", "country"), ("limit", "5")] * 2),
        ("admin/audit", [("limit", "1"), ("limit", "1000")]),
    ],
)
def test_a_single_parameter_given_twice_is_a_400(env, endpoint, pairs) -> None:
    """``?site=a&site=b`` (HTTP parameter pollution): the app read the last, a proxy, a WAF
    or someone reading the URL in a log may read the first. A 400 naming the parameter."""
    got = env.api.get(f"/api/{endpoint}", params=pairs, headers=_auth(env, "admin"))
    assert got.status_code == 400, got.text
    assert "given more than once" in got.json()["error"]


def test_a_research_question_with_two_costs_is_refused_and_not_charged(env) -> None:
    """``epsilon=0.1&epsilon=5``: the researcher may think they spend the first. Refused, and
    nothing is charged. Before: 5 was spent."""
    researcher = _auth(env, "researcher")
    pairs = [*RANGE.items(), ("dimensions", "country"), ("epsilon", "0.1"), ("epsilon", "5")]
    got = env.api.get("/api/research/query", params=pairs, headers=researcher)
    assert got.status_code == 400 and "'epsilon'" in got.json()["error"]
    spent = env.api.get("/api/research/budget", headers=researcher).json()["spent_epsilon"]
    assert spent == 0


def test_the_repeatable_parameters_are_the_ones_the_description_names() -> None:
    """The OpenAPI description marks as arrays exactly the parameters the app lets repeat."""
    assert {k for k, (_, _, many) in openapi.PARAMS.items() if many} == qp.REPEATABLE


def test_repeatable_parameters_still_repeat(env) -> None:
    """``filter``, ``step`` and ``goal`` are meant to repeat: two filters, two funnel steps."""
    product = _auth(env, "product")
    pairs = [*RANGE.items(), ("filter", "country:AZ"), ("filter", "device_type:desktop")]
    assert env.api.get("/api/stats/summary", params=pairs, headers=product).status_code == 200
    steps = [*RANGE.items(), ("step", "page:/"), ("step", "page:/faq")]
    assert env.api.get("/api/stats/funnel", params=steps, headers=product).status_code == 200


@pytest.mark.parametrize(
    "hostile, expected",
    [
        ({b"site": b"s1%00"}, 404),  # no such site
        ({b"site": b"%00"}, 404),
        ({b"site": b"%ff%fe"}, 404),  # read as U+FFFD, no such site
        ({b"from": b"2026-01-01%00"}, 400),
        ({b"dimensions": b"country%00"}, 400),
        ({b"limit": b"1%00"}, 400),
        ({b"filter": b"path:/%00"}, "no rows"),  # a value, matched against the data
        ({b"filter": b"%ff:%ff"}, 400),  # no such dimension
        ({b"filter": b"path:/%ED%A0%80"}, "no rows"),  # a UTF-8-encoded lone surrogate
        ({b"%00": b"1"}, "ignored"),  # no such parameter
        ({b"%ff": b"%ff"}, "ignored"),
    ],
)
def test_nul_and_broken_percent_escapes_in_parameters(env, hostile, expected) -> None:
    """NUL and bytes that are not UTF-8 (``%ff``, an encoded surrogate) in a value or a
    name: a 4xx naming the problem, or an answer in which the value matched nothing, or (in
    the name of no parameter) the answer without it; never a 5xx."""
    pairs = {k.encode(): v.encode() for k, v in RANGE.items()}
    pairs = {**pairs, b"dimensions": b"path", **hostile}
    status, _, body = _asgi(
        env.app,
        "GET",
        "/api/stats/breakdown",
        b"&".join(k + b"=" + v for k, v in pairs.items()),
        [(b"authorization", f"Bearer {env.tokens['product']}".encode())],
    )
    answer = orjson.loads(body)
    if isinstance(expected, int):
        assert status == expected and answer["error"], body
    else:
        assert status == 200, body
        assert (answer["rows"] == []) == (expected == "no rows")


def test_fifty_thousand_parameters_do_not_fill_the_audit(env) -> None:
    """A token holder's bad question is audited with its parameters, each cut to 200
    characters; 50,000 made-up ones (and a name of 60,000 characters) are cut too: the first
    20 are kept. Before: a 640 KB audit row per call."""
    junk = b"&".join(b"k%d=1" % i for i in range(50_000))
    query = b"x" * 60_000 + b"=1&" + junk + b"&limit=x&" + QUERY.encode()
    started = time.monotonic()
    status, _, body = _asgi(
        env.app,
        "GET",
        "/api/stats/breakdown",
        query,
        [(b"authorization", f"Bearer {env.tokens['product']}".encode())],
    )
    assert status == 400 and b"limit" in body
    assert time.monotonic() - started < 5
    actor, _, request, status = _audit(env.wh)[-1]
    assert (actor, status) == ("t.product", 400)
    assert len(request) < 10_000
    assert len(orjson.loads(request)["params"]) == 20


# --- hostile bodies ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"],
)
def test_a_body_declared_as_another_type_is_not_read_as_json(env, content_type) -> None:
    """A JSON erasure sent as a form or text/plain (what a cross-site form or a CORS "simple
    request" can send): 415, nothing erased. Declared JSON, with a charset, is read."""
    body = orjson.dumps({"customer": "c1", "opt_out": True})
    admin = _auth(env, "admin")
    got = env.api.post(
        "/api/admin/erase", content=body, headers={**admin, "Content-Type": content_type}
    )
    assert got.status_code == 415 and "application/json" in got.json()["error"]
    assert _audit(env.wh)[-1][::3] == ("t.admin", 415)
    ok = env.api.post(
        "/api/admin/export",
        content=body,
        headers={**admin, "Content-Type": "application/json; charset=utf-8"},
    )
    assert ok.status_code == 200


HOSTILE_BODIES = [
    # (id, endpoint, raw body): each a 400 naming the problem
    ("duplicate-customer", "admin/export", b'{"customer": "c1", "customer": "c2"}'),
    (
        "duplicate-epsilon",
        "admin/research/budget",
        b'{"researcher": "t.researcher", "epsilon": 1, "epsilon": 90}',
    ),
    ("nested-20000", "admin/erase", b"[" * 20_000 + b"]" * 20_000),
    ("nested-objects", "admin/export", b'{"a":' * 10_000 + b"1" + b"}" * 10_000),
    (
        "integer-1e400",
        "admin/research/budget",
        b'{"researcher": "r", "epsilon": 1' + b"0" * 400 + b"}",
    ),
    ("float-1e400", "admin/research/budget", b'{"researcher": "r", "epsilon": 1e400}'),
    ("nan", "admin/research/budget", b'{"researcher": "r", "epsilon": NaN}'),
    ("lone-surrogate-name", "admin/research/budget", b'{"researcher": "\\ud800", "epsilon": 1}'),
    ("lone-surrogate-customer", "admin/export", b'{"customer": "\\udfff"}'),
    ("utf-16", "admin/export", '{"customer": "c1"}'.encode("utf-16")),
    ("latin-1", "admin/export", '{"customer": "Müller"}'.encode("latin-1")),
    ("researcher-nul", "admin/research/budget", b'{"researcher": "a\\u0000b", "epsilon": 1}'),
    ("researcher-object", "admin/research/budget", b'{"researcher": {"a": 1}, "epsilon": 1}'),
    (
        "researcher-1000",
        "admin/research/budget",
        b'{"researcher": "' + b"r" * 1000 + b'", "epsilon": 1}',
    ),
    ("array", "admin/export", b'["customer", "c1"]'),
    ("empty", "admin/export", b""),
]


@pytest.mark.parametrize(
    "endpoint, raw", [(e, r) for _, e, r in HOSTILE_BODIES], ids=[i for i, _, _ in HOSTILE_BODIES]
)
def test_hostile_json_bodies_are_a_400(env, endpoint, raw) -> None:
    """Duplicate keys (which one counts is the reader's guess), nesting past any parser's
    stack (was a RecursionError, a 500), numbers past a double (an OverflowError, a 500),
    NaN, lone surrogates (ClickHouse's client logged a traceback), text that is not UTF-8,
    and researchers' names that are no token name (stored as sent): a 400 with an error, no
    budget set."""
    got = env.api.post(
        f"/api/{endpoint}",
        content=raw,
        headers={**_auth(env, "admin"), "Content-Type": "application/json"},
    )
    assert got.status_code == 400, got.text[:200]
    assert got.json()["error"]
    budgets = env.api.get("/api/admin/research/budgets", headers=_auth(env, "admin")).json()
    assert budgets["budgets"] == []


def test_a_large_body_is_refused_without_being_read(env) -> None:
    """A 20 MB JSON body, a Content-Length of a terabyte, and 100 KB in chunks with no
    Content-Length: 413 after at most 64 KB. Before: the 20 MB body was parsed (200)."""
    admin = [(b"authorization", f"Bearer {env.tokens['admin']}".encode())]
    big = orjson.dumps({"customer": "c1", "pad": "a" * 20_000_000})
    got = env.api.post("/api/admin/export", content=big, headers=_auth(env, "admin"))
    assert got.status_code == 413 and "at most 65536 bytes" in got.json()["error"]
    declared = [*admin, (b"content-length", b"1000000000000")]
    status, _, _ = _asgi(env.app, "POST", "/api/admin/export", headers=declared)
    assert status == 413
    chunks = [b'{"customer": "c1", "pad": "'] + [b"a" * 10_000] * 10 + [b'"}']
    status, _, _ = _asgi(env.app, "POST", "/api/admin/export", headers=admin, chunks=chunks)
    assert status == 413


def test_a_client_gone_before_the_body_ends_is_no_server_error(env) -> None:
    """The connection closed half-way through an erasure's body: nothing erased, no 500 and
    no traceback (Starlette's ClientDisconnect went up to the server)."""
    admin = [(b"authorization", f"Bearer {env.tokens['admin']}".encode())]
    status, _, body = _asgi(
        env.app,
        "POST",
        "/api/admin/erase",
        headers=admin,
        chunks=[b'{"customer": '],
        complete=False,
    )
    assert status == 400 and b"went away" in body


# --- the same on a real server (uvicorn as `mayak dashboards` runs it) ----------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[tuple[int, dict[str, str]]]:
    """The dashboards on uvicorn as every Mayak process serves them (``dashboards.serve``),
    logging to the root logger so that ``caplog`` sees a traceback."""

    wh = fresh_database()
    migrate(wh)
    insert_events(wh, synthetic_events(200))
    data = tmp_path_factory.mktemp("hostile")
    settings = Settings(data_dir=data, dashboards_unauth_burst=10_000)
    tokens = {role: add_token(tokens_path(settings), f"t.{role}", role) for role in ROLES}
    keys = KeyStore(data / "keys.db")
    port = free_port()
    with serving(server_config(settings, wh, keys, port=port, log_config=None, lifespan="off")):
        yield port, tokens
    keys.close()
    drop(wh)


def _exchange(port: int, request: bytes, timeout: float = 5) -> bytes:
    return exchange(port, request, timeout)


def _get(path: bytes, *lines: bytes) -> bytes:
    head = b"GET " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    return head + b"".join(line + b"\r\n" for line in lines) + b"\r\n"


def _status(answer: bytes) -> int:
    return int(answer.split(b"\r\n", 1)[0].split(b" ")[1])


@pytest.mark.parametrize(
    "path",
    [
        b"//api/admin/audit",
        b"/api/./admin/audit",
        b"/api/research/../admin/audit",
        b"/api/research/%2e%2e/admin/audit",
        b"/api/research%2F..%2Fadmin/audit",
        b"/api/admin%2Faudit",  # uvicorn decodes it to /api/admin/audit: the admin check runs
        b"/API/admin/audit",
        b"/api/Admin/Audit",
        b"/api/admin/audit/",
        b"/api/admin/audit;.css",
        b"/api/admin/audit%00",
        b"/api/admin/audit%20",
        b"/api/stats/summary?site=s1",  # a product endpoint
        b"/api/admin/research/budgets",
    ],
)
def test_path_tricks_give_a_researcher_no_admin_answer(served, path) -> None:
    """Each route checks its own roles, so a path that reaches an admin endpoint is a 403 and
    any other spelling is a 404; never a 200, never a redirect (Starlette answered the
    trailing slash with a 307 to an absolute URL)."""
    port, tokens = served
    answer = _exchange(port, _get(path, b"Authorization: Bearer " + tokens["researcher"].encode()))
    assert _status(answer) in (403, 404), answer[:300]
    assert b"\r\nlocation:" not in answer.lower()


@pytest.mark.parametrize(
    "path",
    [
        b"/static/../auth.py",
        b"/static/%2e%2e/auth.py",
        b"/static/..%2fapp.py",
        b"/static/vendor/..%2F..%2Fapp.py",
        b"/static/%2e%2e%2f%2e%2e%2fpyproject.toml",
        b"/static//etc/passwd",
    ],
)
def test_static_path_traversal_reads_no_source(served, path) -> None:
    """The static mount serves its directory only: the dashboards' Python source (with the
    tokens logic) or the project's files are never served."""
    port, _ = served
    answer = _exchange(port, _get(path))
    assert _status(answer) == 404, answer[:300]
    assert b"import" not in answer and b"root:" not in answer


def test_raw_authorization_lines_on_the_wire(served) -> None:
    """On the wire: two Authorization lines are a 400; a NUL in the header is refused by the
    server (400); obs-text bytes (``\\xff``) are read as Latin-1 and are no token (401); a
    lower-case ``bearer`` is the token's own."""
    port, tokens = served
    admin, product = (b"Authorization: Bearer " + tokens[r].encode() for r in ("admin", "product"))
    assert _status(_exchange(port, _get(b"/api/admin/audit", product, admin))) == 400
    assert _status(_exchange(port, _get(b"/api/admin/audit", admin, product))) == 400
    assert _status(_exchange(port, _get(b"/api/me", admin + b"\x00"))) == 400
    assert _status(_exchange(port, _get(b"/api/me", admin + b"\xff"))) == 401
    lower = b"Authorization: bearer " + tokens["admin"].encode()
    assert _status(_exchange(port, _get(b"/api/admin/audit", lower))) == 200


def test_a_poisoned_host_is_never_sent_back(served) -> None:
    """``Host: evil.example`` on the wire, with a trailing slash: a 404, no Location."""
    port, tokens = served
    request = _get(b"/api/me/", b"Authorization: Bearer " + tokens["admin"].encode()).replace(
        b"Host: 127.0.0.1", b"Host: " + EVIL.encode()
    )
    answer = _exchange(port, request)
    assert _status(answer) == 404 and EVIL.encode() not in answer


def test_a_body_announced_huge_is_refused_at_once(served) -> None:
    """``Content-Length: 10**11`` and no body, or 100 KB chunked: 413 at once, not a wait for
    bytes that never come (before: the call hung until the client gave up)."""
    port, tokens = served
    head = (
        b"POST /api/admin/export HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        b"Authorization: Bearer " + tokens["admin"].encode() + b"\r\n"
        b"Content-Type: application/json\r\n"
    )
    started = time.monotonic()
    answer = _exchange(port, head + b"Content-Length: 100000000000\r\n\r\n", timeout=3)
    assert answer and _status(answer) == 413
    assert time.monotonic() - started < 2
    chunks = b"".join(b"4000\r\n" + b" " * 0x4000 + b"\r\n" for _ in range(7)) + b"0\r\n\r\n"
    answer = _exchange(port, head + b"Transfer-Encoding: chunked\r\n\r\n" + chunks)
    assert _status(answer) == 413


# --- who the client is, as the rate limit of token-less calls counts it ------------------------


@contextlib.contextmanager
def _limited(tmp_path, wh, **over) -> Iterator[int]:
    """A real server whose token-less calls get a burst of 3 and then 429 (no refill within
    the test), with ``over`` settings; yields its port."""
    settings = Settings(
        data_dir=tmp_path,
        dashboards_unauth_burst=3,
        dashboards_unauth_rate_per_s=0.001,
        **over,
    )
    add_token(tokens_path(settings), "t.admin", "admin")
    port = free_port()
    with serving(server_config(settings, wh, None, port=port, log_config=None, lifespan="off")):
        yield port


def _tokenless(port: int, *lines: bytes) -> int:
    return _status(_exchange(port, _get(b"/api/me", *lines)))


def test_a_client_cannot_name_its_own_address_without_a_trusted_proxy(tmp_path, wh) -> None:
    """No proxy configured: X-Forwarded-For and Forwarded are not read, so a new forged address
    per call does not get a new burst. Before, uvicorn's default believed X-Forwarded-For from
    127.0.0.1 (any process on the host, or a proxy passing a client's header on): six calls,
    six 401s, and the audit as full as the client liked."""
    with _limited(tmp_path, wh) as port:
        codes = [
            _tokenless(port, f"X-Forwarded-For: 198.51.100.{i}".encode(), b"Forwarded: for=1.2.3.4")
            for i in range(6)
        ]
    assert codes == [401] * 3 + [429] * 3


def test_a_trusted_proxy_names_the_client(tmp_path, wh) -> None:
    """With the proxy trusted, each client gets its own burst; the right-most address that is
    not a trusted proxy is the client (a forged left-most hop changes nothing), and every
    header line counts (a client's own line first does not win)."""
    with _limited(tmp_path, wh, dashboards_trusted_proxies=["127.0.0.1"]) as port:
        one = b"X-Forwarded-For: 198.51.100.7"
        first = [_tokenless(port, one) for _ in range(3)]
        forged = [
            _tokenless(port, b"X-Forwarded-For: 6.6.6.6, 198.51.100.7"),
            _tokenless(port, b"X-Forwarded-For: 6.6.6.7", one),
        ]
        other = _tokenless(port, b"X-Forwarded-For: 198.51.100.8")
        # the proxy's own address on the left is skipped too: the client stays .7
        behind_two = _tokenless(port, b"X-Forwarded-For: 198.51.100.7, 127.0.0.1")
    assert first == [401] * 3
    assert forged == [429, 429]
    assert other == 401
    assert behind_two == 429


def test_rfc_7239_forwarded_behind_a_proxy_that_writes_it(tmp_path, wh) -> None:
    """``dashboards_proxy_header=forwarded``: the for= values are read, X-Forwarded-For is not
    (the proxy passes a client's own header of the other kind through untouched)."""
    over = {"dashboards_trusted_proxies": ["127.0.0.1"], "dashboards_proxy_header": "forwarded"}
    with _limited(tmp_path, wh, **over) as port:
        named = [
            _tokenless(port, b'Forwarded: for="198.51.100.9:4711";proto=https') for _ in range(4)
        ]
        forged = _tokenless(port, b"Forwarded: for=198.51.100.9", b"X-Forwarded-For: 203.0.113.1")
        other = _tokenless(port, b"Forwarded: for=198.51.100.10")
    assert named == [401] * 3 + [429]
    assert forged == 429
    assert other == 401


def test_an_ipv6_client_draws_from_its_slash_64(tmp_path, wh) -> None:
    """One home line or VM holds a whole /64: a new address from it is the same client."""
    with _limited(tmp_path, wh, dashboards_trusted_proxies=["127.0.0.1"]) as port:
        codes = [
            _tokenless(port, f"X-Forwarded-For: 2001:db8:1:2::{i:x}".encode()) for i in range(1, 6)
        ]
        other_line = _tokenless(port, b"X-Forwarded-For: 2001:db8:1:3::1")
    assert codes == [401] * 3 + [429] * 2
    assert other_line == 401


@pytest.mark.parametrize("spec", ["localhost", "10.0.0.0/33", "1.2.3.4.5", ""])
def test_a_trusted_proxy_that_is_no_address_is_a_clear_settings_error(tmp_path, spec) -> None:
    for name in ("dashboards_trusted_proxies", "collector_trusted_proxies"):
        with pytest.raises(ValueError, match="is not an IP address or network"):
            Settings(data_dir=tmp_path, **{name: ["10.0.0.1", spec]})


def test_an_endless_header_is_cut_off_not_buffered(served) -> None:
    """One header line streamed for ever: the server answers 400 and closes once the head
    passes 16 KB. uvicorn's httptools protocol buffered it whole (200 MB sent, the process
    199 MB larger; with embedded ClickHouse that process is the worker)."""
    port, _ = served
    offered, sent, chunk = 8 << 20, 0, b"a" * (64 << 10)
    answer = b""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        try:
            sock.sendall(b"GET /api/me HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ")
            while sent < offered:
                sock.sendall(chunk)
                sent += len(chunk)
        except OSError:  # closed by the server: what is wanted
            pass
        with contextlib.suppress(OSError):
            while data := sock.recv(65536):
                answer += data
    assert sent < offered // 2, "the server kept reading the endless header"
    assert answer == b"" or _status(answer) == 400
