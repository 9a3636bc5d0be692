"""Every processing step and every drop reason, on plain dicts (no Kafka, no ClickHouse)."""

from __future__ import annotations

import base64
import re
import secrets
from datetime import UTC

import orjson

from stream_jobs.dead_letters import DeadLetter
from stream_jobs.models import DETAIL_FIELDS, ENRICHED_FIELDS, WHO_FIELDS
from tests.stream_jobs.samples import AZ_IP, CHROME, IPHONE, TR_IP, raw_event


def test_a_pageview_becomes_a_contract_event(make_pipeline) -> None:
    event = make_pipeline().run(
        raw_event(
            url="https://e-legal.az/cases/12345?utm_source=fb&utm_campaign=spring&email=a@b.az",
            ref="https://www.google.com/search?q=x",
            section="Cases",
            engaged_ms=1200,
            scroll_pct=40,
        )
    )
    assert set(ENRICHED_FIELDS) | set(DETAIL_FIELDS) | set(WHO_FIELDS) <= set(event)
    assert event["path"] == "/cases/:id"
    assert (event["utm_source"], event["utm_campaign"]) == ("fb", "spring")
    assert event["referrer_domain"] == "google.com"
    assert (event["browser"], event["browser_major"], event["os"], event["os_major"]) == (
        "Chrome",
        "131",
        "Windows",
        "10",
    )
    assert event["device_type"] == "desktop"
    assert (event["country"], event["isp"], event["asn"]) == ("AZ", "Delta Telecom", 29049)
    assert event["consent"] == "none" and event["is_bot"] == 0
    assert len(event["visitor_id"]) == 32 and event["session_id"] and event["customer_pid"] == ""


def test_no_secret_survives_in_the_output(make_pipeline) -> None:
    event = make_pipeline().run(
        raw_event(uid="cust-77", props={"phone": "+994 50 123 45 67", "mail": "x@y.az"})
    )
    blob = orjson.dumps(event).decode()
    for secret in (AZ_IP, CHROME, "cust-77", "x@y.az", "123 45 67"):
        assert secret not in blob
    assert event["props"] == {"phone": "[phone]", "mail": "[email]"}


def test_mobile_tablet_and_asn_fallback(make_pipeline) -> None:
    event = make_pipeline().run(raw_event(ua=IPHONE, ip=TR_IP))
    assert (event["device_type"], event["device_brand"], event["browser"]) == (
        "mobile",
        "Apple",
        "Mobile Safari",
    )
    assert (event["country"], event["isp"], event["asn"]) == ("TR", "Turk Telekom", 9121)
    ipad = IPHONE.replace("iPhone; CPU iPhone OS", "iPad; CPU OS")
    assert make_pipeline().run(raw_event(ua=ipad))["device_type"] == "tablet"


def _rejected(result) -> DeadLetter:
    assert isinstance(result, DeadLetter), result
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
    assert {"type:literal_error", "scroll_pct:less_than_equal", "extra:extra_forbidden"} <= set(
        bad.detail.split(",")
    )
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
    # detail = category:family (issue 13: bot_hits by family and category, migration 0013)
    assert [d.detail for d in details] == [
        "search:Googlebot",
        "headless:HeadlessChrome",
        "other:E-Legal-Monitor",
    ]
    assert pipeline.counters["bot"] == 3
    assert "ua" not in details[0].event and "ip" not in details[0].event


def test_consent_reason_for_opted_out_customer(make_pipeline, keys) -> None:
    keys.opt_out("cust-9")
    result = _rejected(make_pipeline().run(raw_event(type="service_request", uid="cust-9")))
    assert (result.reason, result.step) == ("consent", "consent")
    assert "uid" not in result.event


def test_enrichment_reason_for_undecryptable_ip(make_pipeline) -> None:
    from contract.crypto import decrypt_ip, encrypt_ip

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
    assert (result.reason, result.step, result.detail) == (
        "enrichment",
        "boom",
        "ZeroDivisionError",
    )
    assert result.event["url"] == "https://e-legal.az/u/[email]"
    assert pipeline.counters["enrichment"] == 1


def test_consent_decides_cookie_or_cookieless(make_pipeline, clock) -> None:
    pipeline = make_pipeline()
    with_cookie = {"consent": "analytics", "vid": "cookie-id-123456"}
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
    clock.advance(days=1)
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
    one = {"type": "email_open", "campaign": "spring", "recipient": "tok_12345678", "url": None}
    a, b = pipeline.run(raw_event(**one)), pipeline.run(raw_event(**one, ip=TR_IP))
    assert a["visitor_id"] == b["visitor_id"] and a["campaign_id"] == "spring"
    other = pipeline.run(raw_event(**{**one, "recipient": "tok_87654321"}))
    assert other["visitor_id"] != a["visitor_id"]


def test_sessions_split_after_30_minutes(make_pipeline) -> None:
    sessions: dict = {}
    pipeline = make_pipeline(sessions)
    t0 = 1_790_000_000_000
    ids = [
        pipeline.run(raw_event(ts=t0 + minutes * 60_000))["session_id"]
        for minutes in (0, 10, 39, 70, 71)
    ]
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
    pipeline = build_pipeline(
        keys=keys, geo=geo, classifier=classifier, sessions={}, clock=clock, allow_clear_ip=True
    )
    event = pipeline.run(raw_event())
    assert (event["country"], event["isp"], event["asn"]) == ("", "", 0)


def test_custom_event_name_and_props_are_bounded_scrubbed_strings(make_pipeline) -> None:
    pipeline = make_pipeline()
    props = {f"k{i}": i for i in range(20)}
    props.update(k0="call +994 50 123 45 67", k1=True, k2=2.5, k3="x" * 200)
    event = pipeline.run(raw_event(type="custom", name="download 123456789", props=props))
    assert (
        event["event_name"] == "download [phone]"
    )  # 9 digits: an Azerbaijani mobile without its 0
    assert len(event["props"]) == 20
    assert event["props"]["k0"] == "call [phone]"
    assert (event["props"]["k1"], event["props"]["k2"], event["props"]["k4"]) == (
        "true",
        "2.5",
        "4",
    )
    assert event["props"]["k3"] == "x" * 200
    too_many = _rejected(
        pipeline.run(raw_event(type="custom", name="x", props={**props, "k20": 1}))
    )
    assert too_many.detail == "props:too_long"
    assert all(isinstance(v, str) for v in event["props"].values())
    assert (event["outbound_url"], event["section_names"], event["section_ms"]) == ("", [], [])


def test_outbound_click_keeps_its_destination_origin_and_path(make_pipeline) -> None:
    pipeline = make_pipeline()
    event = pipeline.run(
        raw_event(
            type="outbound",
            props={
                "to": "https://user:pw@www.gov.az:8443/cases/123456/a@b.az?q=secret#x",
                "via": "footer",
            },
        )
    )
    assert event["outbound_url"].startswith("https://www.gov.az:8443/cases/:id/")
    assert "a@b.az" not in event["outbound_url"] and "pw" not in event["outbound_url"]
    assert event["props"] == {"via": "footer"}  # the destination is not also a prop
    for bad in ("javascript:alert(1)", "not a url", "", "http://x.az:99999/"):
        assert pipeline.run(raw_event(type="outbound", props={"to": bad}))["outbound_url"] == ""
    # a custom event's own `to` prop stays a prop
    assert pipeline.run(raw_event(type="custom", name="x", props={"to": "me"}))["props"] == {
        "to": "me"
    }


def test_section_dwell_lands_as_parallel_bounded_arrays(make_pipeline) -> None:
    from stream_jobs.steps import event_details

    sections = {"intro": 4114, "fees": 3002, "contact 0501234567": 3692}
    sections.update({f"s{i}": i for i in range(29)})
    event = make_pipeline().run(raw_event(type="engagement", engaged_ms=11000, sections=sections))
    names, ms = event["section_names"], event["section_ms"]
    assert len(names) == len(ms) == 32
    assert names[:2] == ["intro", "fees"] and ms[:3] == [4114, 3002, 3692]
    assert names[2].startswith("contact ") and "1234567" not in names[2]  # scrubbed
    assert dict(zip(names, ms))["s5"] == 5
    # the step bounds what it gets even past the schema (e.g. a replayed old event)
    many = {f"s{i}": 10 for i in range(40)}
    many.update({"tel 0501234567": 5, "tel 0551234567": 7, " ": 9, "s0": 99_999_999_999})
    details = event_details({"type": "engagement", "sections": many})
    assert len(details["section_names"]) == 32
    assert details["section_ms"][0] == 86_400_000
    clean = event_details({"type": "engagement", "sections": dict(list(many.items())[-3:])})
    assert clean["section_ms"] == [12] and "1234567" not in clean["section_names"][0]


def test_consent_mid_visit_stays_one_visitor_and_one_visit(make_pipeline) -> None:
    sessions: dict = {}
    pipeline = make_pipeline(sessions)
    t0 = 1_790_000_000_000
    cookie = {"consent": "analytics", "vid": "cookie-id-123456"}
    before = pipeline.run(raw_event(ts=t0))
    after = [
        pipeline.run(raw_event(ts=t0 + s * 1000, type=t, **cookie))
        for s, t in ((5, "custom"), (9, "pageview"), (20, "engagement"))
    ]
    assert {e["visitor_id"] for e in after} == {before["visitor_id"]}
    assert {e["session_id"] for e in after} == {before["session_id"]}
    assert all(e["consent"] == "analytics" for e in after)
    # the next visit (after 30 idle minutes) is counted under the cookie id
    later = pipeline.run(raw_event(ts=t0 + 3_600_000, **cookie))
    assert later["visitor_id"] != before["visitor_id"]
    again = pipeline.run(raw_event(ts=t0 + 3_700_000, ip=TR_IP, **cookie))  # other network
    assert again["visitor_id"] == later["visitor_id"]
    assert again["session_id"] == later["session_id"]


def test_a_known_cookie_is_never_merged_into_a_cookieless_visit(make_pipeline) -> None:
    from stream_jobs.steps import visitor_on_consent

    t0 = 1_790_000_000_000
    active = {"start": t0, "last": t0 + 60_000}
    assert visitor_on_consent("c", "ip", t0 + 120_000, {"ip": active}, 1_800_000) == "ip"
    assert (
        visitor_on_consent("c", "ip", t0 + 120_000, {"ip": active, "c": active}, 1_800_000) == "c"
    )
    assert visitor_on_consent("c", "ip", t0 + 3_600_000, {"ip": active}, 1_800_000) == "c"
    assert visitor_on_consent("c", "ip", t0, {}, 1_800_000) == "c"
    # a second consented browser behind the same IP and UA, with a cookie seen before
    sessions: dict = {}
    pipeline = make_pipeline(sessions)
    known = pipeline.run(raw_event(ts=t0 - 86_400_000, consent="analytics", vid="known-1234567"))
    pipeline.run(raw_event(ts=t0))  # someone else, cookieless, same IP and UA
    other = pipeline.run(raw_event(ts=t0 + 1000, consent="analytics", vid="known-1234567"))
    assert other["visitor_id"] == known["visitor_id"]


def test_every_dead_letter_reason_is_in_the_one_list() -> None:
    """``dead_letters.REASONS`` is the only list of reasons: each one a step, the pipeline or
    the sink gives is in it, and the ``Reason`` type says the same."""
    from datetime import datetime
    from pathlib import Path
    from typing import get_args

    import stream_jobs
    from stream_jobs.dead_letters import NOT_REPLAYABLE, REASONS, Reason
    from stream_jobs.poison import poison_record, valid_dead_letter

    assert list(REASONS) == list(get_args(Reason)) and set(REASONS) >= NOT_REPLAYABLE
    given = set()
    for source in Path(stream_jobs.__file__).parent.glob("*.py"):
        given |= set(re.findall(r'DeadLetter\(\s*"([a-z_]+)"', source.read_text()))
    assert given and given <= set(REASONS), given - set(REASONS)
    assert given >= {"size", "schema", "consent", "bot", "enrichment", "undecodable"}
    poison = orjson.loads(
        poison_record("mayak.events", 0, 7, "zlib.error", datetime(2026, 1, 1, tzinfo=UTC))
    )
    assert valid_dead_letter(poison) and poison["reason"] == "undecodable"
    assert poison["detail"] == "mayak.events/0/7: zlib.error" and poison["step"] == "sink"
