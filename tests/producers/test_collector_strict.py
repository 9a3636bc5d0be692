"""The collector refuses what it should and never fails on what a client sends (issue 16):
strict JSON types, the event time tied to the receive time, exact Origin matching, CORS
preflight only for allowed Origins, and a fuzzer over bodies, headers and paths (no 5xx)."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from producers.collector import door
from producers.collector.events import MAX_AHEAD_MS, MAX_BEHIND_MS, event_time
from tests.producers.test_collector import KEY, FakeOutbox, ev, make


@pytest.fixture
def c(tmp_path):
    client, box = make(tmp_path)
    with client:
        yield client, box


@pytest.mark.parametrize(
    "field, value",
    [
        # a fixed id: each xdist worker collects at its own time, and must collect the same ids
        pytest.param("ts", str(int(time.time() * 1000)), id="ts-now-as-string"),
        pytest.param("ts", float(int(time.time() * 1000)), id="ts-now-as-float"),
        ("engaged_ms", "5"),
        ("engaged_ms", 5.0),
        ("scroll_pct", "40"),
        ("scroll_pct", True),
        ("dnt", "yes"),
        ("dnt", 1),
        ("gpc", "true"),
        ("url", 5),
        ("sections", {"faq": "900"}),
        ("v", "1"),
        ("consent", 1),
        ("site", ["elegal"]),
    ],
)
def test_a_wrong_json_type_is_400_naming_the_field_never_coerced(c, field, value) -> None:
    client, box = c
    r = client.post("/e", json=ev(type="engagement", **{field: value}))
    assert r.status_code == 400, r.text
    assert r.json()["field"].split(".")[0] == field
    assert box.records == []


@pytest.mark.parametrize(
    "field, value",
    [
        ("name", "sign\x00up"),
        ("name", "\x1b[31mred"),
        ("name", "invoice\u202efdp.exe"),
        ("section", "faq\r\nX-Injected: 1"),
        ("props", {"plan": "gold\x07"}),
        ("sections", {"faq\x00": 900}),
        ("url", "https://e-legal.az/a\x00b"),
        ("ref", "https://www.google.com/\x9b"),
    ],
)
def test_control_and_bidi_characters_in_text_are_400_naming_the_field(c, field, value) -> None:
    """NUL, ESC, CR/LF, BEL, C1 and U+202E in names, property values and URLs: a browser
    sends none of them (red team, 2026-12-02: accepted and stored as sent)."""
    client, box = c
    r = client.post("/e", json=ev(type="custom", **{field: value}))
    assert r.status_code == 400, r.text
    assert r.json()["field"].split(".")[0] == field
    assert box.records == []
    # Unicode text that is not a control passes: names and paths in Azerbaijani
    ok = ev(type="custom", name="Azərbaycan dili", url="https://e-legal.az/xidmətlər")
    assert client.post("/e", json=ok).status_code == 202


def test_right_types_still_pass_and_beacon_hex_ids_too(c) -> None:
    client, box = c
    e = ev(
        id=uuid.uuid4().hex,
        type="engagement",
        engaged_ms=5,
        scroll_pct=40,
        dnt=True,
        sections={"faq": 900},
        props={"n": 1, "x": 0.5, "ok": True, "s": "a"},
    )
    e.pop("url")
    r = client.post("/e", json=[e | {"type": "custom", "name": "x"}])
    assert r.status_code == 202, r.text
    out = box.events()[0]
    assert out["props"] == {"n": 1, "x": 0.5, "ok": True, "s": "a"}
    assert out["engaged_ms"] == 5 and out["dnt"] is True


def test_event_time_is_the_clients_only_within_the_stated_skew(c) -> None:
    client, box = c
    now = int(time.time() * 1000)
    sent = {
        "2098": 4_070_908_800_000,  # accepted by the contract (< 2100), far in the future
        "ahead_11min": now + 11 * 60_000,
        "ahead_9min": now + 9 * 60_000,
        "behind_23h": now - 23 * 3_600_000,
        "behind_25h": now - 25 * 3_600_000,
        "2020": 1_577_836_800_000,
    }
    ids = {}
    for name, ts in sent.items():
        e = ev(ts=ts)
        ids[e["id"]] = name
        assert client.post("/e", json=e).status_code == 202
    got = {ids[o["id"]]: o for o in box.events()}
    for name in ("2098", "ahead_11min", "behind_25h", "2020"):  # dated when received
        assert got[name]["ts"] == got[name]["received"], name
    for name in ("ahead_9min", "behind_23h"):  # the client's clock, believed
        assert got[name]["ts"] == sent[name], name
    assert abs(got["2098"]["received"] - now) < 60_000


def test_event_time_bounds_are_inclusive() -> None:
    received = 1_800_000_000_000
    assert event_time(received + MAX_AHEAD_MS, received) == received + MAX_AHEAD_MS
    assert event_time(received + MAX_AHEAD_MS + 1, received) == received
    assert event_time(received - MAX_BEHIND_MS, received) == received - MAX_BEHIND_MS
    assert event_time(received - MAX_BEHIND_MS - 1, received) == received


ELEGAL = ["https://e-legal.az", "https://*.e-legal.az", "http://localhost:*", "http://127.0.0.1:*"]


@pytest.mark.parametrize(
    "origin, allowed",
    [
        ("https://e-legal.az", True),
        ("https://E-Legal.AZ", True),
        ("https://e-legal.az:443", True),
        ("https://www.e-legal.az", True),
        ("https://a.b.e-legal.az", True),
        ("http://localhost:8080", True),
        ("http://localhost", True),
        ("http://127.0.0.1:3000", True),
        # what the old fnmatch globs let through
        ("http://localhost:1@evil.example", False),
        ("http://localhost:*@evil.example", False),
        ("https://e-legal.az.evil.example", False),
        ("https://evil.example/.e-legal.az", False),
        ("https://www.e-legal.az@evil.example", False),
        ("http://127.0.0.1:1@evil.example", False),
        ("http://localhost:80/x", False),
        ("http://localhost:8080/", False),
        # scheme, port, host must match
        ("http://e-legal.az", False),
        ("https://e-legal.az:8443", False),
        ("https://xe-legal.az", False),
        ("https://.e-legal.az", False),
        ("https://a..e-legal.az", False),
        ("null", False),
        ("http://localhost:99999", False),
        ("http://localhost:0", False),
        ("", False),
        ("https://e-legal.az\r\n", False),
        ("javascript://e-legal.az", False),
    ],
)
def test_origin_is_matched_by_scheme_host_and_port(origin, allowed) -> None:
    assert door.origin_allowed(origin, ELEGAL) is allowed


def test_origin_star_allows_any_and_a_bad_pattern_fails_at_start_up(tmp_path) -> None:
    assert door.origin_allowed("http://localhost:1@evil.example", ["*"])
    with pytest.raises(ValueError, match="bad Origin pattern"):
        door.parse_origin_glob("http://*localhost")
    with pytest.raises(ValueError, match="bad Origin pattern"):
        make(tmp_path, collector_sites={"s": ["https://x.az/path"]})


def test_post_from_a_userinfo_origin_is_403(c) -> None:
    client, box = c
    r = client.post("/e", json=ev(), headers={"Origin": "http://localhost:1@evil.example"})
    assert r.status_code == 403 and r.json()["reason"] == "origin_not_allowed"
    assert box.records == []


def test_preflight_answers_cors_only_for_an_allowed_origin(tmp_path) -> None:
    client, _ = make(tmp_path, collector_sites={"elegal": ELEGAL})
    ask = {"Access-Control-Request-Method": "POST"}
    for bad in ("https://evil.example", "http://localhost:1@evil.example", "null"):
        r = client.options("/e", headers=ask | {"Origin": bad})
        assert r.status_code == 403, bad
        assert "access-control-allow-origin" not in r.headers
        assert bad not in "".join(r.headers.values())
    r = client.options("/e", headers=ask | {"Origin": "https://www.e-legal.az"})
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == "https://www.e-legal.az"
    assert r.headers["vary"] == "Origin"
    r = client.options("/e", headers=ask)  # no Origin: nothing to allow
    assert r.status_code == 204 and "access-control-allow-origin" not in r.headers


# --- fuzzing: whatever arrives, the answer is never a 5xx -----------------------------------

_json_leaf = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
_json = st.recursive(
    _json_leaf,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
_fields = st.fixed_dictionaries(
    {},
    optional={
        "id": st.uuids().map(str) | st.text(max_size=40),
        "type": st.sampled_from(["pageview", "engagement", "custom", "outbound", "email_open", "x"])
        | _json,
        "site": st.sampled_from(["elegal", "demo", "nope"]) | _json,
        "ts": st.integers(min_value=-(2**70), max_value=2**70) | _json,
        "url": st.text(max_size=300) | st.just("https://e-legal.az/a?utm_x=1#f") | _json,
        "ref": st.text(max_size=100) | _json,
        "engaged_ms": st.integers() | _json,
        "scroll_pct": st.integers() | _json,
        "name": st.text(max_size=80) | _json,
        "sections": st.dictionaries(st.text(max_size=70), st.integers(), max_size=40) | _json,
        "props": st.dictionaries(st.text(max_size=45), _json_leaf, max_size=20) | _json,
        "consent": st.sampled_from(["analytics", "none"]) | _json,
        "vid": st.text(max_size=130) | _json,
        "dnt": st.booleans() | _json,
        "gpc": st.booleans() | _json,
        "v": st.just(1) | _json,
    },
)
_bodies = (
    _fields.map(lambda d: json.dumps(d).encode())
    | st.lists(_fields, max_size=55).map(lambda d: json.dumps(d).encode())
    | _json.map(lambda d: json.dumps(d).encode())
    | st.binary(max_size=300)
)
_header_value = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=80)
_headers = st.dictionaries(
    st.sampled_from(
        [
            "origin",
            "content-type",
            "content-length",
            "x-forwarded-for",
            "dnt",
            "sec-gpc",
            "user-agent",
            "accept-language",
            "accept-encoding",
        ]
    ),
    _header_value,
    max_size=6,
)
_paths = st.sampled_from(
    [
        "/e",
        "/t.js",
        "/healthz",
        "/readyz",
        "/metrics",
        "/o/c1/tok_12345678.gif",
        "/o/x/y",
        "/",
        "/e/",
    ]
) | st.text(
    st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="?#"), max_size=40
).map(lambda p: "/" + p.lstrip("/"))  # "//x:y" would be a host to the client


@pytest.fixture(scope="module")
def fuzz_client(tmp_path_factory):
    from mayak.settings import Settings
    from producers.collector.app import create_app

    settings = Settings(
        data_dir=tmp_path_factory.mktemp("fuzz"),
        ip_key=KEY,
        collector_rate_per_s=1e9,
        collector_rate_burst=10**9,
        collector_trusted_proxies=["0.0.0.0/0"],
    )
    box = FakeOutbox()
    with TestClient(create_app(settings, outbox=box), raise_server_exceptions=True) as client:
        yield client, box


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    method=st.sampled_from(["POST", "GET", "OPTIONS", "PUT", "HEAD"]),
    path=_paths,
    body=_bodies,
    headers=_headers,
    down=st.booleans(),
)
def test_fuzzed_requests_never_get_a_5xx_but_503_when_kafka_is_down(
    fuzz_client, method, path, body, headers, down
) -> None:
    client, box = fuzz_client
    box.down = down
    headers = {k: v for k, v in headers.items() if k != "content-length"}
    r = client.request(
        method, path, content=body if method in ("POST", "PUT") else None, headers=headers
    )
    assert r.status_code < 500 or (r.status_code == 503 and down), (r.status_code, r.text)
    if path == "/readyz" and method == "GET":
        assert r.json() == (
            {"ready": False, "kafka": "down"} if down else {"ready": True, "kafka": "ok"}
        )
    if (
        r.status_code >= 400
        and r.headers.get("content-type") == "application/json"
        and method != "HEAD"
    ):  # a refusal says why
        assert r.json()["kafka" if path == "/readyz" else "reason"]


@pytest.mark.parametrize(
    "url, kept",
    [
        (
            "http://[2001:db8::1]:8080/x?utm_source=a&q=1#f",
            "http://[2001:db8::1]:8080/x?utm_source=a",
        ),
        ("https://[2001:db8::1]/", "https://[2001:db8::1]/"),
        ("https://user:pw@e-legal.az:8443/a?b=1", "https://e-legal.az:8443/a"),
        ("javascript:alert(1)", None),
    ],
)
def test_urls_are_trimmed_and_ipv6_hosts_keep_their_brackets(url, kept) -> None:
    # an IPv6 host lost its brackets (red team, 2026-12-02): http://2001:db8::1:8080/x
    assert door.trim_url(url, frozenset()) == kept


@pytest.mark.parametrize(
    "header, lang",
    [
        ("az-AZ,az;q=0.9,en;q=0.8", "az-AZ"),
        ("en", "en"),
        ("zh-Hant-TW", "zh-Hant-TW"),
        ("*", None),
        ("john@x.az", None),  # accepted as a language before (red team, 2026-12-02)
        ("+994501234567", None),
        ("a" * 40, None),
        ("", None),
    ],
)
def test_only_a_language_tag_is_kept_from_accept_language(header, lang) -> None:
    assert door.language(header) == lang
