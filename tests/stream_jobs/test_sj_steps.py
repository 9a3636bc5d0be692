"""Every processing step and every drop reason, on plain dicts (no Kafka, no ClickHouse)."""

from __future__ import annotations

import base64
import secrets
from datetime import timedelta

import orjson

from stream_jobs.testing import AZ_IP, CHROME, IPHONE, TR_IP, raw_event
from stream_jobs.models import ENRICHED_FIELDS
from stream_jobs.pipeline import Rejected


def test_a_pageview_becomes_a_contract_event(make_pipeline) -> None:
    event = make_pipeline().run(raw_event(
        url="https://e-legal.az/cases/12345?utm_source=fb&utm_campaign=spring&email=a@b.az",
        ref="https://www.google.com/search?q=x", section="Cases", engaged_ms=1200, scroll_pct=40))
    assert set(ENRICHED_FIELDS) <= set(event)
    assert event["path"] == "/cases/:id"
    assert (event["utm_source"], event["utm_campaign"]) == ("fb", "spring")
    assert event["referrer_domain"] == "google.com"
    assert (event["browser"], event["browser_major"], event["os"], event["os_major"]) == \
        ("Chrome", "131", "Windows", "10")
    assert event["device_type"] == "desktop"
    assert (event["country"], event["isp"], event["asn"]) == ("AZ", "Delta Telecom", 29049)
    assert event["consent"] == "none" and event["is_bot"] == 0
    assert len(event["visitor_id"]) == 32 and event["session_id"] and event["customer_pid"] == ""


def test_no_secret_survives_in_the_output(make_pipeline) -> None:
    event = make_pipeline().run(raw_event(uid="cust-77", props={"phone": "+994 50 123 45 67",
                                                               "mail": "x@y.az"}))
    blob = orjson.dumps(event).decode()
    for secret in (AZ_IP, CHROME, "cust-77", "x@y.az", "123 45 67"):
        assert secret not in blob
    assert event["props"] == {"phone": "[phone]", "mail": "[email]"}


def test_mobile_tablet_and_asn_fallback(make_pipeline) -> None:
    event = make_pipeline().run(raw_event(ua=IPHONE, ip=TR_IP))
    assert (event["device_type"], event["device_brand"], event["browser"]) == \
        ("mobile", "Apple", "Mobile Safari")
    assert (event["country"], event["isp"], event["asn"]) == ("TR", "Turk Telekom", 9121)
    ipad = IPHONE.replace("iPhone; CPU iPhone OS", "iPad; CPU OS")
    assert make_pipeline().run(raw_event(ua=ipad))["device_type"] == "tablet"


def _rejected(result) -> Rejected:
    assert isinstance(result, Rejected), result
    return result


def test_size_reason(make_pipeline) -> None:
    big = orjson.dumps(raw_event(props={"k": "x" * 200})) + b" " * 20_000
    assert _rejected(make_pipeline().run(big)).reason == "size"


def test_schema_reasons(make_pipeline) -> None:
    pipeline = make_pipeline()
    assert _rejected(pipeline.run(b"{not json")).detail == "not_json"
    assert _rejected(pipeline.run(raw_event(v=2))).detail == "unsupported_version"
    bad = _rejected(pipeline.run(raw_event(type="teleport", scroll_pct=400, extra="x")))
    assert bad.reason == "schema" and bad.step == "validate"
    assert {"type:literal_error", "scroll_pct:less_than_equal", "extra:extra_forbidden"} <= \
        set(bad.detail.split(","))
    assert _rejected(pipeline.run(raw_event(ip="not-an-ip"))).detail == "ip:invalid"
    assert pipeline.counters["schema"] == 4


def test_bot_reasons(make_pipeline) -> None:
    pipeline = make_pipeline()
    google = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
    headless = CHROME.replace("Chrome/", "HeadlessChrome/")
    custom = "E-Legal-Monitor/1.0"
    details = [_rejected(pipeline.run(raw_event(ua=ua))) for ua in (google, headless, custom)]
    assert [d.reason for d in details] == ["bot"] * 3
    assert [d.step for d in details] == ["useragent"] * 3
    assert details[0].detail == "Googlebot" and details[1].detail == "HeadlessChrome"
    assert pipeline.counters["bot"] == 3
    assert "ua" not in details[0].event and "ip" not in details[0].event


def test_consent_reason_for_opted_out_customer(make_pipeline, keys) -> None:
    keys.opt_out("cust-9")
    result = _rejected(make_pipeline().run(raw_event(type="service_request", uid="cust-9")))
    assert (result.reason, result.step) == ("consent", "consent")
    assert "uid" not in result.event


def test_enrichment_reason_for_undecryptable_ip(make_pipeline) -> None:
    from producers.crypto import decrypt_ip, encrypt_ip

    key = secrets.token_bytes(32)
    pipeline = make_pipeline(decrypt_ip=lambda blob: decrypt_ip(key, blob))
    good = pipeline.run(raw_event(ip=None, ip_enc=encrypt_ip(key, AZ_IP)))
    assert good["country"] == "AZ"
    forged = base64.b64encode(secrets.token_bytes(40)).decode()
    result = _rejected(pipeline.run(raw_event(ip=None, ip_enc=forged)))
    assert (result.reason, result.detail) == ("enrichment", "ip_enc:undecryptable")
    assert "ip_enc" not in result.event


def test_an_exception_in_a_step_becomes_a_dead_letter(make_pipeline) -> None:
    pipeline = make_pipeline()
    pipeline.steps.insert(2, ("boom", lambda hit: 1 / 0))
    result = _rejected(pipeline.run(raw_event(url="https://e-legal.az/u/ali@mail.az?t=secret")))
    assert (result.reason, result.step, result.detail) == ("enrichment", "boom", "ZeroDivisionError")
    assert result.event["url"] == "https://e-legal.az/u/[email]"
    assert pipeline.counters["enrichment"] == 1


def test_consent_decides_cookie_or_cookieless(make_pipeline, clock) -> None:
    pipeline = make_pipeline()
    with_cookie = dict(consent="analytics", vid="cookie-id-123456")
    a = pipeline.run(raw_event(**with_cookie))
    b = pipeline.run(raw_event(**with_cookie, ip=TR_IP, ua=IPHONE))
    assert a["visitor_id"] == b["visitor_id"] and a["consent"] == "analytics"
    dnt = pipeline.run(raw_event(consent="analytics", dnt=True))
    gpc = pipeline.run(raw_event(consent="analytics", gpc=True))
    plain = pipeline.run(raw_event())
    assert dnt["consent"] == gpc["consent"] == "none"
    assert dnt["visitor_id"] == gpc["visitor_id"] == plain["visitor_id"]  # same IP+UA, cookieless


def test_cookieless_ids_rotate_daily(make_pipeline, clock) -> None:
    pipeline = make_pipeline()
    today = pipeline.run(raw_event())["visitor_id"]
    assert pipeline.run(raw_event())["visitor_id"] == today
    clock.now += timedelta(days=1)
    assert pipeline.run(raw_event())["visitor_id"] != today


def test_customer_pid_is_stable_until_erasure(make_pipeline, keys) -> None:
    pipeline = make_pipeline()
    first = pipeline.run(raw_event(type="service_request", uid="cust-1", service_type="notary"))
    again = pipeline.run(raw_event(type="service_request", uid="cust-1"))
    assert first["customer_pid"] == again["customer_pid"] != ""
    assert first["service_type"] == "notary"
    keys.forget_customer("cust-1")
    after = pipeline.run(raw_event(type="service_request", uid="cust-1"))
    assert after["customer_pid"] not in ("", first["customer_pid"])


def test_email_open_counts_per_recipient_and_campaign(make_pipeline) -> None:
    pipeline = make_pipeline()
    one = dict(type="email_open", campaign="spring", recipient="tok_12345678", url=None)
    a, b = pipeline.run(raw_event(**one)), pipeline.run(raw_event(**one, ip=TR_IP))
    assert a["visitor_id"] == b["visitor_id"] and a["campaign_id"] == "spring"
    other = pipeline.run(raw_event(**{**one, "recipient": "tok_87654321"}))
    assert other["visitor_id"] != a["visitor_id"]


def test_sessions_split_after_30_minutes(make_pipeline) -> None:
    sessions: dict = {}
    pipeline = make_pipeline(sessions)
    t0 = 1_790_000_000_000
    ids = [pipeline.run(raw_event(ts=t0 + minutes * 60_000))["session_id"]
           for minutes in (0, 10, 39, 70, 71)]
    assert ids[0] == ids[1] == ids[2]  # 29 minutes apart at most
    assert ids[3] != ids[2] and ids[3] == ids[4]
    late = pipeline.run(raw_event(ts=t0 + 65 * 60_000))["session_id"]  # out of order, same session
    assert late == ids[3]
    assert len(sessions) == 1
    other = pipeline.run(raw_event(ts=t0, ip=TR_IP))["session_id"]
    assert other not in ids


def test_events_without_device_identity_are_one_event_visitors(make_pipeline) -> None:
    pipeline = make_pipeline()
    a = pipeline.run(raw_event(ip=None, ua=None))
    b = pipeline.run(raw_event(ip=None, ua=None))
    assert a["visitor_id"] != b["visitor_id"]
    assert a["browser"] == "" and a["device_type"] == "other"


def test_missing_geo_databases_leave_fields_empty(keys, classifier, clock, caplog) -> None:
    from stream_jobs.geo import GeoLookup
    from stream_jobs.processors import build_pipeline

    with caplog.at_level("WARNING"):
        geo = GeoLookup("/nonexistent/city.mmdb", None, None)
    assert sum("City/Country" in r.message for r in caplog.records) == 1
    pipeline = build_pipeline(keys=keys, geo=geo, classifier=classifier, sessions={},
                              clock=clock, allow_clear_ip=True)
    event = pipeline.run(raw_event())
    assert (event["country"], event["isp"], event["asn"]) == ("", "", 0)
