"""Collector behaviour at the door, with the Kafka outbox replaced by a recording fake."""

from __future__ import annotations

import base64
import json
import time
import uuid

import pytest
from starlette.testclient import TestClient

from contract import crypto
from mayak.settings import Settings
from producers.collector.app import GIF, create_app
from producers.collector.outbox import Unavailable

KEY = base64.b64encode(b"m" * 32).decode()
UA = "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0"


class FakeOutbox:
    """Records what would be produced; ``down`` makes it refuse like an unreachable broker."""

    def __init__(self) -> None:
        self.records: list[tuple[bytes, bytes]] = []
        self.down = False
        self.pending = 0

    async def produce(self, records):
        if self.down:
            raise Unavailable("down")
        self.records.extend(records)

    def events(self) -> list[dict]:
        return [json.loads(v) for _, v in self.records]

    def status(self) -> tuple[bool, str]:
        return (False, "down") if self.down else (True, "ok")

    def seconds_since_ack(self) -> float | None:
        return 0.0

    def close(self) -> None:
        pass


def make(tmp_path, **over):
    settings = Settings(data_dir=tmp_path, ip_key=KEY, **over)
    box = FakeOutbox()
    client = TestClient(create_app(settings, outbox=box), client=("203.0.113.9", 5000))
    return client, box


def ev(**fields) -> dict:
    return {
        "id": str(uuid.uuid4()),
        "type": "pageview",
        "site": "elegal",
        "ts": int(time.time() * 1000),
        "url": "https://e-legal.az/a?b=1#c",
    } | fields


@pytest.fixture
def c(tmp_path):
    client, box = make(tmp_path)
    with client:
        yield client, box


def test_single_json_event_is_enriched_scrubbed_and_encrypted(c) -> None:
    client, box = c
    e = ev(
        url="https://e-legal.az/xidmet?utm_source=mail&email=a@b.az&id=5#frag",
        ref="https://user:pw@google.com/search?q=my+name",
    )
    r = client.post(
        "/e",
        json=e,
        headers={
            "User-Agent": UA,
            "Accept-Language": "az-AZ,ru;q=0.8",
            "Origin": "https://e-legal.az",
        },
    )
    assert r.status_code == 202 and r.json() == {"accepted": 1}
    assert r.headers["access-control-allow-origin"] == "https://e-legal.az"
    ((key, value),) = box.records
    out = json.loads(value)
    assert out["id"] == e["id"] and out["v"] == 1 and out["type"] == "pageview"
    assert out["url"] == "https://e-legal.az/xidmet?utm_source=mail"
    assert out["ref"] == "https://google.com/search"
    assert (
        out["ua"] == UA
        and out["lang"] == "az-AZ"
        and abs(out["received"] - time.time() * 1000) < 5000
    )
    assert "ip" not in out and b"203.0.113.9" not in value and b"203.0.113.9" not in key
    ip_key = crypto.ip_cipher_key(base64.b64decode(KEY))
    assert crypto.decrypt_ip(ip_key, out["ip_enc"]) == "203.0.113.9"


def test_text_plain_array_from_send_beacon(c) -> None:
    client, box = c
    batch = [ev(), ev(type="engagement", engaged_ms=1234, scroll_pct=40, sections={"faq": 900})]
    r = client.post("/e", content=json.dumps(batch), headers={"Content-Type": "text/plain"})
    assert r.status_code == 202 and r.json() == {"accepted": 2}
    assert [e["type"] for e in box.events()] == ["pageview", "engagement"]
    assert box.events()[1]["sections"] == {"faq": 900}


def test_beacon_hex_ids_are_normalised_to_uuid(c) -> None:
    client, box = c
    u = uuid.uuid4()
    assert client.post("/e", json=ev(id=u.hex)).status_code == 202
    assert box.events()[0]["id"] == str(u)


@pytest.mark.parametrize(
    "bad, field",
    [
        ({"type": "email_open"}, "type"),
        ({"ts": "yesterday"}, "ts"),
        ({"extra": 1}, "extra"),
        ({"engaged_ms": -5}, "engaged_ms"),
        ({"id": "nope"}, "id"),
        ({"vid": "abcdefgh12"}, "vid"),
    ],
)
def test_invalid_event_is_400_naming_the_field(c, bad, field) -> None:
    client, box = c
    r = client.post("/e", json=ev(**bad))
    assert r.status_code == 400 and r.json()["field"] == field
    r = client.post("/e", json=[ev(), ev(**bad)])
    assert r.status_code == 400 and r.json()["field"] == f"1.{field}"
    assert box.records == []


def test_batch_and_body_limits(c) -> None:
    client, _box = c
    assert client.post("/e", json=[ev() for _ in range(51)]).json()["field"] == "body"
    assert client.post("/e", json=[]).status_code == 400
    assert client.post("/e", content=b"{not json").json()["field"] == "body"
    big = ev(props={"x": "y" * 100})
    r = client.post("/e", content=b"[" + b",".join([json.dumps(big).encode()] * 300) + b"]")
    assert r.status_code == 413
    assert client.post("/e", json=[ev() for _ in range(50)]).status_code == 202
    metrics = client.get("/metrics").text
    assert 'mayak_collector_refused_total{reason="too_large"} 1' in metrics
    assert 'mayak_collector_refused_total{reason="invalid"}' in metrics
    assert "mayak_collector_accepted_events_total 50" in metrics


def test_unknown_site_and_foreign_origin_are_403(c) -> None:
    client, box = c
    r = client.post("/e", json=ev(site="evil"))
    assert r.status_code == 403 and r.json()["reason"] == "unknown_site"
    r = client.post("/e", json=ev(), headers={"Origin": "https://evil.example"})
    assert r.status_code == 403 and r.json()["reason"] == "origin_not_allowed"
    assert (
        client.post("/e", json=ev(), headers={"Origin": "https://www.e-legal.az"}).status_code
        == 202
    )
    assert (
        client.post("/e", json=ev(), headers={"Origin": "http://localhost:8080"}).status_code == 202
    )
    assert len(box.records) == 2
    assert 'reason="origin_not_allowed"} 1' in client.get("/metrics").text


def test_rate_limit_is_429_per_client(tmp_path) -> None:
    client, _box = make(tmp_path, collector_rate_per_s=0.001, collector_rate_burst=3)
    codes = [client.post("/e", json=ev()).status_code for _ in range(5)]
    assert codes == [202, 202, 202, 429, 429]
    other = TestClient(client.app, client=("198.51.100.1", 1))
    assert other.post("/e", json=ev()).status_code == 202
    assert 'reason="rate_limited"} 2' in client.get("/metrics").text


def test_a_batch_is_rate_limited_per_event(tmp_path) -> None:
    client, box = make(tmp_path, collector_rate_per_s=0.001, collector_rate_burst=60)
    batch = [ev() for _ in range(50)]
    codes = [client.post("/e", json=batch).status_code for _ in range(3)]
    assert codes == [202, 202, 429]  # 60 - 50 = 10 left, let in, then 40 in debt
    assert len(box.records) == 100
    assert client.post("/e", json=ev()).status_code == 429  # one event waits out the debt too
    other = TestClient(client.app, client=("198.51.100.1", 1))
    assert other.post("/e", json=batch).status_code == 202


def test_x_forwarded_for_only_from_trusted_proxies(tmp_path) -> None:
    ip_key = crypto.ip_cipher_key(base64.b64decode(KEY))
    client, box = make(tmp_path)
    client.post("/e", json=ev(), headers={"X-Forwarded-For": "1.2.3.4"})
    assert crypto.decrypt_ip(ip_key, box.events()[0]["ip_enc"]) == "203.0.113.9"
    client, box = make(tmp_path, collector_trusted_proxies=["203.0.113.0/24"])
    client.post("/e", json=ev(), headers={"X-Forwarded-For": "9.9.9.9, 1.2.3.4, 203.0.113.7"})
    assert crypto.decrypt_ip(ip_key, box.events()[0]["ip_enc"]) == "1.2.3.4"


def test_x_forwarded_for_of_every_line_ports_and_zones(tmp_path) -> None:
    """A trusted proxy that adds its own X-Forwarded-For line after the client's forged one
    (HAProxy's ``option forwardfor``) must not let the forged one win (red team,
    2026-12-02: the first line won); hops with ports or IPv6 zones are addresses, not junk
    (every such client became "" and shared one rate-limit bucket)."""
    ip_key = crypto.ip_cipher_key(base64.b64decode(KEY))
    client, box = make(tmp_path, collector_trusted_proxies=["203.0.113.0/24"])
    two_lines = [("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-For", "198.51.100.7")]
    assert client.post("/e", json=ev(), headers=two_lines).status_code == 202
    pixel = client.get("/o/spring-2026/Rk9PYmFyMTIzNDU2.gif", headers=two_lines)
    assert pixel.status_code == 200
    forms = {
        "198.51.100.8:41234": "198.51.100.8",
        "[2001:db8::7]:443": "2001:db8::7",
        "[2001:db8::8]": "2001:db8::8",
        "fe80::9%eth0": "fe80::9",
        "::ffff:198.51.100.10": "198.51.100.10",
        "198.51.100.11:99999999": None,  # not an address: no IP at all, as before
    }
    for hop in forms:
        assert client.post("/e", json=ev(), headers={"X-Forwarded-For": hop}).status_code == 202
    ips = [
        crypto.decrypt_ip(ip_key, e["ip_enc"]) if e.get("ip_enc") else None for e in box.events()
    ]
    assert ips == ["198.51.100.7", "198.51.100.7", *forms.values()]


def test_a_pixel_recipient_that_is_a_number_is_refused(c) -> None:
    """A phone number or customer id as the "opaque" recipient would sit in clear on
    mayak.raw (red team, 2026-12-02: ``994501234567`` was accepted)."""
    client, box = c
    for number in ("994501234567", "12345678"):
        r = client.get(f"/o/spring-2026/{number}.gif")
        assert r.status_code == 400 and r.json()["field"] == "recipient", r.text
    assert box.records == []
    assert client.get("/o/spring-2026/r00000042.gif").status_code == 200  # a token with digits
    assert len(box.records) == 1


def test_dnt_and_gpc_anonymous_by_default_dropped_by_site_setting(tmp_path) -> None:
    client, box = make(tmp_path)
    consented = ev(consent="analytics", vid="0123456789abcdef")
    assert client.post("/e", json=consented, headers={"Sec-GPC": "1"}).status_code == 202
    out = box.events()[0]
    assert out["gpc"] is True and "vid" not in out and out["consent"] == "none"
    client.post("/e", json=consented)
    assert box.events()[1]["vid"] == "0123456789abcdef"
    client, box = make(tmp_path, collector_dnt_drop_sites=["elegal"])
    r = client.post("/e", json=ev(), headers={"DNT": "1"})
    assert r.status_code == 202 and r.json() == {"accepted": 0} and box.records == []
    assert 'reason="privacy_signal"} 1' in client.get("/metrics").text


def test_broker_down_is_503_and_counted(c) -> None:
    client, box = c
    assert "mayak_collector_kafka_ready 1" in client.get("/metrics").text
    box.down = True
    r = client.post("/e", json=ev())
    assert r.status_code == 503 and r.headers["retry-after"]
    assert 'reason="unavailable"} 1' in client.get("/metrics").text
    assert "mayak_collector_kafka_ready 0" in client.get("/metrics").text
    r = client.get("/readyz")
    assert r.status_code == 503 and r.json() == {"ready": False, "kafka": "down"}
    assert client.get("/healthz").text == "ok"


def test_email_open_pixel(c) -> None:
    client, box = c
    r = client.get("/o/spring-2026/Rk9PYmFyMTIzNDU2.gif", headers={"User-Agent": UA})
    assert r.status_code == 200 and r.content == GIF and r.headers["content-type"] == "image/gif"
    assert "no-store" in r.headers["cache-control"] and r.headers["pragma"] == "no-cache"
    out = box.events()[0]
    assert (out["type"], out["campaign"], out["recipient"]) == (
        "email_open",
        "spring-2026",
        "Rk9PYmFyMTIzNDU2",
    )
    assert out["site"] == "elegal" and out["ip_enc"]
    r = client.get("/o/spring-2026/someone@mail.az.gif")
    assert r.status_code == 400 and r.json()["field"] == "recipient"
    assert len(box.records) == 1


def test_beacon_script_health_and_preflight(c) -> None:
    client, _box = c
    r = client.get("/t.js")
    assert r.status_code == 200 and "javascript" in r.headers["content-type"]
    assert b"sendBeacon" in r.content and r.headers["content-encoding"] == "gzip"
    assert client.get("/healthz").text == "ok"
    r = client.options(
        "/e", headers={"Origin": "https://e-legal.az", "Access-Control-Request-Method": "POST"}
    )
    assert r.status_code == 204 and r.headers["access-control-allow-methods"] == "POST"
