"""Hostile headers and requests against the collector (red team, beyond test_collector_strict):
spoofed client addresses from untrusted peers and mis-read ones from trusted proxies, rate-limit
keys of one client in many spellings, Origin look-alikes, DNT/Sec-GPC variants, raw HTTP that
the parser must refuse (control bytes, Content-Length lies, smuggling), JSON edge cases, and
hostile e-mail pixel URLs. Each test states the right answer: a clear 4xx, or accepted with
the hostile part neutralised; never a 5xx or a logged traceback."""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from contract import crypto
from mayak.client_address import forwarded_hops
from mayak.settings import Settings
from producers.collector import door
from producers.collector.app import create_app
from producers.collector.limits import TooLarge, read_capped
from tests.producers.test_collector import KEY, FakeOutbox, ev
from tests.raw_http import exchange, serving

IP_KEY = crypto.ip_cipher_key(base64.b64decode(KEY))
PROXY = "203.0.113.9"  # the load balancer, in collector_trusted_proxies
ALLOWED = "https://www.e-legal.az"


def _client(tmp_path, peer: str = PROXY, **over) -> tuple[TestClient, FakeOutbox]:
    box = FakeOutbox()
    app = create_app(Settings(data_dir=tmp_path, ip_key=KEY, **over), outbox=box)
    return TestClient(app, client=(peer, 5000), raise_server_exceptions=False), box


def _ip(record: dict) -> str | None:
    return crypto.decrypt_ip(IP_KEY, record["ip_enc"]) if record.get("ip_enc") else None


# --- the client address ------------------------------------------------------------------


def test_no_proxy_header_is_believed_from_an_untrusted_peer(tmp_path) -> None:
    """RFC 7239 Forwarded, nginx X-Real-IP, Cloudflare CF-Connecting-IP, Akamai/Cloudflare
    True-Client-IP, AWS ALB / HAProxy X-Forwarded-For (with port): all forgeable by a client
    that talks to the collector directly."""
    client, box = _client(tmp_path, peer="198.51.100.20")
    spoof = [
        ("Forwarded", 'for="[2001:db8:cafe::17]:4711";proto=https, for=192.0.2.43'),
        ("X-Real-IP", "192.0.2.43"),
        ("CF-Connecting-IP", "192.0.2.43"),
        ("True-Client-IP", "192.0.2.43"),
        ("X-Forwarded-For", "192.0.2.43:41234, 192.0.2.44"),
        ("X-Forwarded-For", "192.0.2.45"),
    ]
    assert client.post("/e", json=ev(), headers=spoof).status_code == 202
    assert client.get("/o/spring-2026/tok_12345678.gif", headers=spoof).status_code == 200
    assert [_ip(r) for r in box.events()] == ["198.51.100.20", "198.51.100.20"]


@pytest.mark.parametrize(
    "peer, xff",
    [
        # a dual-stack listener (host "::") reports IPv4 peers as IPv4-mapped IPv6 addresses
        pytest.param(f"::ffff:{PROXY}", "198.51.100.7", id="mapped-peer"),
        # a second trusted hop written in the mapped form by the first proxy
        pytest.param(PROXY, "198.51.100.7, ::ffff:203.0.113.8", id="mapped-hop"),
    ],
)
def test_a_trusted_proxy_in_ipv4_mapped_form_is_still_trusted(tmp_path, peer, xff) -> None:
    client, box = _client(tmp_path, peer=peer, collector_trusted_proxies=["203.0.113.0/24"])
    assert client.post("/e", json=ev(), headers={"X-Forwarded-For": xff}).status_code == 202
    assert _ip(box.events()[0]) == "198.51.100.7"  # the client, not the proxy


# RFC 7239 examples (section 7.4 and 6) and what a proxy in collector_trusted_proxies appends
@pytest.mark.parametrize(
    "lines, client_ip",
    [
        pytest.param(["for=198.51.100.17"], "198.51.100.17", id="plain"),
        pytest.param(['For="[2001:db8:cafe::17]:4711"'], "2001:db8:cafe::17", id="v6-port"),
        pytest.param(['for="198.51.100.17:47011";proto=https'], "198.51.100.17", id="v4-port"),
        pytest.param(
            ["for=192.0.2.43, for=198.51.100.17;by=203.0.113.60;proto=http;host=example.com"],
            "198.51.100.17",
            id="chain",
        ),
        # the client forged a whole chain; the proxy appended the peer it saw, on its own line
        pytest.param(
            ['for=192.0.2.1, for="6.6.6.6"', "for=198.51.100.7;proto=https"],
            "198.51.100.7",
            id="forged-line-first",
        ),
        # a forged quoted value hiding ", for=" inside quotes: split into junk hops left of the
        # proxy's own element, which alone is read
        pytest.param(
            ['for="6.6.6.6, for=192.0.2.9", for=198.51.100.8'], "198.51.100.8", id="quoted-comma"
        ),
        pytest.param(["for=198.51.100.9, for=203.0.113.8"], "198.51.100.9", id="second-proxy"),
        # the proxy itself does not know the client: no address, not the proxy's
        pytest.param(["for=198.51.100.10, for=unknown"], None, id="unknown"),
        pytest.param(["for=198.51.100.11, for=_hidden"], None, id="obfuscated"),
        pytest.param(["for=198.51.100.12, proto=https"], None, id="element-without-for"),
        pytest.param(['for=198.51.100.13, for="unterminated'], None, id="stray-quote"),
    ],
)
def test_rfc_7239_forwarded_from_trusted_proxies(tmp_path, lines, client_ip) -> None:
    """Proxies that write only ``Forwarded`` (RFC 7239; HAProxy's ``option forwarded``, Envoy,
    nginx configured to): with collector_proxy_header=forwarded the client is the right-most
    for= value that is not a trusted proxy, and X-Forwarded-For is then not read at all (the
    proxy passes a client's own X-Forwarded-For through untouched)."""
    client, box = _client(
        tmp_path, collector_trusted_proxies=["203.0.113.0/24"], collector_proxy_header="forwarded"
    )
    headers = [("Forwarded", line) for line in lines] + [("X-Forwarded-For", "192.0.2.200")]
    assert client.post("/e", json=ev(), headers=headers).status_code == 202
    assert client.get("/o/spring-2026/tok_12345678.gif", headers=headers).status_code == 200
    assert [_ip(r) for r in box.events()] == [client_ip, client_ip]


def test_a_client_forwarded_header_costs_the_collector_no_time(tmp_path) -> None:
    """A client's 16 KB of escaped quotes in its own Forwarded line, passed on by the trusted
    proxy (a quoted-string regular expression took 1.6 s of the event loop for 8,000)."""
    client, box = _client(
        tmp_path, collector_trusted_proxies=["203.0.113.0/24"], collector_proxy_header="forwarded"
    )
    headers = [("Forwarded", 'for="' + '\\"' * 8_000), ("Forwarded", "for=198.51.100.7")]
    started = time.monotonic()
    assert client.post("/e", json=ev(), headers=headers).status_code == 202
    assert time.monotonic() - started < 0.5
    assert _ip(box.events()[0]) == "198.51.100.7"


def test_only_the_configured_proxy_header_is_read(tmp_path) -> None:
    """The default proxies write X-Forwarded-For: a client's Forwarded is not believed even
    through a trusted proxy, and the other way round."""
    spoof = [("Forwarded", "for=192.0.2.66"), ("X-Forwarded-For", "198.51.100.7")]
    client, box = _client(tmp_path, collector_trusted_proxies=["203.0.113.0/24"])
    assert client.post("/e", json=ev(), headers=spoof).status_code == 202
    rfc, rfc_box = _client(
        tmp_path, collector_trusted_proxies=["203.0.113.0/24"], collector_proxy_header="forwarded"
    )
    spoof = [("X-Forwarded-For", "192.0.2.66"), ("Forwarded", "for=198.51.100.7")]
    assert rfc.post("/e", json=ev(), headers=spoof).status_code == 202
    assert [_ip(r) for r in box.events() + rfc_box.events()] == ["198.51.100.7"] * 2
    with pytest.raises(ValueError, match="collector_proxy_header"):
        Settings(data_dir=tmp_path, ip_key=KEY, collector_proxy_header="x-real-ip")


def test_forwarded_hops_parse_quoted_values_and_escapes() -> None:
    assert forwarded_hops('for="a\\"b";by=x, FOR = 1.2.3.4 ;proto=http,,for=') == [
        'a"b',
        "1.2.3.4",
        "",
    ]


def test_one_client_in_many_spellings_is_one_rate_limit_bucket(tmp_path) -> None:
    forms = [
        "2001:db8::7",
        "2001:DB8::7",
        "2001:0db8:0000:0000:0000:0000:0000:0007",
        "[2001:db8::7]:443",
        "[2001:db8::7%eth0]:443",
        "2001:db8::7%25eth0",
        " 2001:db8::7\t",
    ]
    client, _ = _client(
        tmp_path,
        collector_trusted_proxies=[f"{PROXY}/32"],
        collector_rate_per_s=0.001,
        collector_rate_burst=len(forms) - 1,
    )
    codes = [
        client.post("/e", json=ev(), headers={"X-Forwarded-For": f}).status_code for f in forms
    ]
    assert codes == [202] * (len(forms) - 1) + [429]
    # 10,000 forged hops to the left of the proxy's own: the right-most one is the client
    chain = ", ".join(f"10.{i // 256 % 256}.{i % 256}.1" for i in range(10_000))
    other, box = _client(tmp_path, collector_trusted_proxies=[f"{PROXY}/32"])
    started = time.monotonic()
    r = other.post("/e", json=ev(), headers={"X-Forwarded-For": chain + ", 198.51.100.99"})
    assert r.status_code == 202 and time.monotonic() - started < 2
    assert _ip(box.events()[0]) == "198.51.100.99"


def test_addresses_of_one_ipv6_subnet_share_a_rate_limit_bucket(tmp_path) -> None:
    """One home or cloud VM gets a whole /64 (2^64 addresses): a per-/128 bucket is no limit,
    so IPv6 clients share their /64's bucket."""
    client, _ = _client(tmp_path, collector_rate_per_s=0.001, collector_rate_burst=3)
    codes = [
        TestClient(client.app, client=(f"2001:db8:1:2::{i:x}", 1)).post("/e", json=ev()).status_code
        for i in range(1, 7)
    ]
    assert codes.count(429) >= 3, codes


# --- Origin ------------------------------------------------------------------------------

ELEGAL = ["https://e-legal.az", "https://*.e-legal.az", "http://localhost:*", "http://127.0.0.1:*"]


@pytest.mark.parametrize(
    "origin",
    [
        "https://e-legal.az.",  # trailing dot: another origin to a browser
        "https://www.e-legal.az.",
        "http://localhost.:8080",
        "https://xn--e-legl-9ua.az",  # punycode look-alike
        "https://e-leg\u0430l.az",  # Cyrillic a
        "https://\uff45-legal.az",  # fullwidth e
        "https://e-legal.az:0443",
        "https://e-legal.az:",
        "https://e-legal.az:443:443",
        "https://*.e-legal.az",  # the pattern itself
        "https://evil-e-legal.az",
        "https://e-legal.az\\@evil.example",
        "https://e-legal.az%2eevil.example",
        "https://evil.example#.e-legal.az",
        "https://e-legal.az, https://evil.example",
        "http://127.1:80",
        "http://2130706433",
        "http://[::ffff:127.0.0.1]:80",
        "http://127.0.0.1.nip.io",
        " https://e-legal.az",
        "https://" + "a" * 64 + ".e-legal.az",  # a label over 63
    ],
)
def test_origin_look_alikes_are_refused(origin) -> None:
    assert door.origin_allowed(origin, ELEGAL) is False


def test_a_refusal_to_an_allowed_origin_is_readable_by_the_page(tmp_path) -> None:
    """The beacon reads the status of a cross-origin fetch; without Access-Control-Allow-Origin
    a 400 or 413 is an opaque network error, which it retries 3 times like a 503.
    Refusals to an Origin some site allows carry the CORS headers (the page stops retrying);
    no others (the default ``demo`` site takes any Origin, so it is left out here)."""
    client, _ = _client(tmp_path, collector_sites={"elegal": ["https://*.e-legal.az"]})
    for body in (b"{not json", json.dumps(ev(ts="now")).encode()):
        r = client.post("/e", content=body, headers={"Origin": ALLOWED})
        assert r.status_code == 400 and r.json()["reason"] == "invalid"
        assert r.headers.get("access-control-allow-origin") == ALLOWED
    r = client.post("/e", content=b"{}", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers  # never for a foreign Origin


# --- privacy signals, User-Agent ---------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param([("DNT", "1x")], id="dnt-with-w3c-extension"),
        pytest.param([("DNT", "0"), ("DNT", "1")], id="dnt-duplicated"),
        pytest.param([("Sec-GPC", "0"), ("Sec-GPC", "1")], id="gpc-duplicated"),
    ],
)
def test_a_privacy_signal_in_any_form_a_browser_may_send_is_honoured(tmp_path, headers) -> None:
    """W3C Tracking Preference Expression (a retired Note): DNT-field-value = ("0" / "1")
    *DNT-extension, so "1x" means 1. Two conflicting fields: a privacy-first collector
    honours the signal (no browser sends two: a proxy or an extension may)."""
    client, box = _client(tmp_path)
    consented = ev(consent="analytics", vid="0123456789abcdef")
    assert client.post("/e", json=consented, headers=headers).status_code == 202
    out = box.events()[0]
    assert (out["dnt"] or out["gpc"]) and "vid" not in out and out["consent"] == "none"


def test_a_utf8_user_agent_is_recorded_as_text_not_mojibake_with_c1_controls(tmp_path) -> None:
    """Header bytes arrive decoded as latin-1: an app UA naming a device in UTF-8 was stored
    as 'Galaxy Æ\\x8f', with C1 control characters (the kind issue 16 keeps out of every
    other text field). RFC 9110 calls such bytes opaque; valid UTF-8 is read as UTF-8."""
    client, box = _client(tmp_path)
    ua = "Mozilla/5.0 (Linux; Android 14; Galaxy Ə) MyApp/2.0"
    assert client.post("/e", json=ev(), headers={"User-Agent": ua.encode()}).status_code == 202
    stored = box.events()[0]["ua"]
    assert not any("\x80" <= ch <= "\x9f" for ch in stored), repr(stored)
    assert stored == ua


# --- raw HTTP on the real server (httptools) ---------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[tuple[int, FakeOutbox]]:
    """The collector app on uvicorn with the collector's protocol, logging to the root
    logger (so ``caplog`` sees a traceback), and a fake outbox."""
    import uvicorn

    from mayak.kafka_local import free_port

    box = FakeOutbox()
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("hostile"), ip_key=KEY, collector_rate_burst=10**6
    )
    port = free_port()
    config = uvicorn.Config(
        create_app(settings, outbox=box),
        host="127.0.0.1",
        port=port,
        log_config=None,
        http="producers.collector.server:CoalescingHttpToolsProtocol",
        ws="none",
        lifespan="off",
    )
    with serving(config):
        yield port, box


def _exchange(port: int, request: bytes) -> bytes:
    return exchange(port, request, half_close=True)


_BODY = json.dumps(ev()).encode()


def _post(extra: bytes, body: bytes = _BODY, length: bool = True) -> bytes:
    head = b"POST /e HTTP/1.1\r\nHost: c\r\nConnection: close\r\n" + extra
    return head + (b"Content-Length: %d\r\n" % len(body) if length else b"") + b"\r\n" + body


_HOPS = b", ".join(b"10.0.%d.%d" % (i // 256, i % 256) for i in range(10_000))
_CHUNKS = b"".join(b"4000\r\n" + b" " * 0x4000 + b"\r\n" for _ in range(6)) + b"0\r\n\r\n"


@pytest.mark.parametrize(
    "request_, status",
    [
        pytest.param(_post(b"User-Agent: a\x00b\r\n"), 400, id="ua-nul"),
        pytest.param(_post(b"User-Agent: a\x1b[31mb\r\n"), 400, id="ua-esc"),
        pytest.param(_post(b"User-Agent: a\x7fb\r\n"), 400, id="ua-del"),
        pytest.param(_post(b"User-Agent: a\nX-Forwarded-For: 1.2.3.4\r\n"), 400, id="bare-lf"),
        pytest.param(_post(b"User-Agent: a\r\n b\r\n"), 400, id="obs-fold"),
        pytest.param(_post(b"Origin: https://e-legal.az\x00.evil\r\n"), 400, id="origin-nul"),
        pytest.param(_post(b"Content-Length: \xb2\r\n", length=False), 400, id="cl-latin1-digit"),
        pytest.param(_post(b"Content-Length: -1\r\n", length=False), 400, id="cl-negative"),
        pytest.param(_post(b"Content-Length: 1e3\r\n", length=False), 400, id="cl-non-numeric"),
        pytest.param(_post(b"Content-Length: 5\r\n"), 400, id="cl-duplicated"),
        pytest.param(_post(b"Content-Length: 10, 10\r\n", length=False), 400, id="cl-list"),
        pytest.param(
            _post(b"Content-Length: " + b"9" * 30 + b"\r\n", b"{}", False), 400, id="cl-huge"
        ),
        pytest.param(_post(b"Transfer-Encoding: chunked\r\n", b"0\r\n\r\n"), 400, id="te-and-cl"),
        pytest.param(_post(b"Content-Length: 10\r\n", length=False), 400, id="cl-short"),
        pytest.param(
            _post(b"Transfer-Encoding: chunked\r\n", _CHUNKS, length=False), 413, id="chunked-96k"
        ),
        pytest.param(_post(b"Content-Length: 70000\r\n", length=False), 413, id="cl-over-cap"),
        pytest.param(_post(b"X-Forwarded-For: " + _HOPS + b"\r\n"), 431, id="xff-10000-hops"),
        pytest.param(
            _post(b"".join(b"X-%d: v\r\n" % i for i in range(1000))), 431, id="1000-fields"
        ),
        pytest.param(_post(b"User-Agent: " + b"u" * 65536 + b"\r\n"), 431, id="ua-64k"),
    ],
)
def test_raw_http_abuse_is_a_4xx_never_recorded_never_a_traceback(
    served, caplog, request_, status
) -> None:
    port, box = served
    before = len(box.records)
    answer = _exchange(port, request_)
    assert answer.split(b"\r\n", 1)[0].split(b" ")[1] == b"%d" % status, answer[:200]
    assert len(box.records) == before
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_a_content_length_of_non_ascii_digits_is_not_a_crash() -> None:
    """LATENT (httptools refuses the byte first): '²' is str.isdigit() but not int()."""

    async def receive() -> dict:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    for declared in ("\xb2", "\u0661\u0660\u0660\u0660\u0660\u0660\u0660"):  # ², Arabic-Indic
        try:
            assert await read_capped(receive, declared, 64 * 1024) == b"{}"
        except TooLarge:
            pass


# --- JSON bodies -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"\xef\xbb\xbf" + json.dumps(ev()).encode(), id="utf8-bom"),
        pytest.param(json.dumps(ev()).encode("utf-16"), id="utf16"),
        pytest.param(json.dumps(ev()).replace('"ts": ', '"ts": 1e400, "x":').encode(), id="inf"),
        pytest.param(json.dumps(ev(props={"n": 1})).replace("1}", "NaN}").encode(), id="nan"),
        pytest.param(json.dumps(ev(props={"n": 1})).replace("1}", "Infinity}").encode(), id="Inf"),
        pytest.param(json.dumps(ev(ts=2**64)).encode(), id="ts-2^64"),
        pytest.param(json.dumps(ev(ts=-(2**70))).encode(), id="ts-negative-huge"),
        pytest.param(json.dumps(ev(name="\\ud800")).replace("\\\\", "\\").encode(), id="surrogate"),
        pytest.param(b"[" * 5000 + b"]" * 5000, id="deep-array"),
        pytest.param(b'{"a":' * 3000 + b"1" + b"}" * 3000, id="deep-object"),
        pytest.param(json.dumps(ev(props={"a": {"b": {"c": 1}}})).encode(), id="nested-props"),
        pytest.param(b"\x00" + json.dumps(ev()).encode(), id="leading-nul"),
    ],
)
def test_hostile_json_is_a_400_and_nothing_is_recorded(tmp_path, body) -> None:
    client, box = _client(tmp_path)
    r = client.post("/e", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["reason"] == "invalid", r.text
    assert box.records == []


# --- the e-mail pixel --------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/o/spring/someone%40mail.az.gif",
        "/o/spring/tok_1234567%00.gif",
        "/o/spring/t%C3%B6k_12345678.gif",
        "/o/spring/tok_1234567%ff.gif",
        "/o/spring/" + "a" * 129 + ".gif",
        "/o/spring/tok_12345678.gif.gif",
        "/o/../tok_12345678.gif",
        "/o/..%2F..%2Fetc/tok_12345678.gif",
        "/o/sp%2Fring/tok_12345678.gif",
        "/o/Spring/tok_12345678.gif",
        "/o/spring%0d%0aX-Evil:%201/tok_12345678.gif",
        "/o/" + "c" * 65 + "/tok_12345678.gif",
    ],
)
def test_hostile_pixel_paths_are_refused_and_never_recorded(tmp_path, path) -> None:
    client, box = _client(tmp_path)
    r = client.get(path)
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    assert box.records == []


@pytest.mark.parametrize(
    "recipient",
    ["050-123-45-67", "994-50-123-45-67", "994_50_123_45_67", "+994501234567", "12-345-678"],
)
def test_a_phone_or_customer_number_with_separators_is_no_recipient_token(
    tmp_path, recipient
) -> None:
    """The contract refuses a bare number (a phone or customer id in clear on mayak.raw);
    written with dashes or underscores it is refused too (a random token of 8+ characters
    is digits and separators only with a chance of about 1 in 650,000)."""
    client, box = _client(tmp_path)
    r = client.get(f"/o/spring/{recipient}.gif")
    assert r.status_code == 400 and r.json()["field"] == "recipient", r.text
    assert box.records == []


@pytest.mark.parametrize(
    "sent",
    [
        "%C2%B2",  # '²': str.isdigit() is True, int() raises
        "%C2%B9%C2%B3",  # '¹³'
        "%D9%A1%D9%A7%D9%A9%D9%A6%D9%A0%D9%A0%D9%A0%D9%A0%D9%A0%D9%A0",  # Arabic-Indic digits
        "%EF%BC%91%EF%BC%97%EF%BC%99%EF%BC%96%EF%BC%90%EF%BC%90%EF%BC%90%EF%BC%90%EF%BC%90%EF%BC%90",
        "-1796000000",
        "+1796000000",
        "1796000000.5",
        "9" * 5000,
    ],
)
def test_a_malformed_send_time_is_ignored_and_the_open_still_counts(tmp_path, sent) -> None:
    client, box = _client(tmp_path)
    r = client.get(f"/o/spring/tok_12345678.gif?s={sent}")
    assert r.status_code == 200 and r.headers["content-type"] == "image/gif", r.text
    (out,) = box.events()
    assert "sent_at" not in out  # only ASCII digits are a send time


def test_a_client_refusing_gzip_gets_the_beacon_uncompressed(tmp_path) -> None:
    """RFC 9110 12.5.3: ``gzip;q=0`` means gzip is not acceptable (minor)."""
    client, _ = _client(tmp_path)
    for accept in ("gzip;q=0", "identity, gzip;q=0"):
        r = client.get("/t.js", headers={"Accept-Encoding": accept})
        assert r.status_code == 200 and "content-encoding" not in r.headers, accept
