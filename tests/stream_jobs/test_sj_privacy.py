"""Personal values sent in every free-text field: none reaches an enriched event, a dead letter,
a table or a rollup key; and after erasing the customer nothing of theirs is left anywhere."""

from __future__ import annotations

import json

import orjson
import pytest

from mayak.clock import SYSTEM_CLOCK
from stream_jobs.dead_letters import DeadLetter
from stream_jobs.sink import event_row, failed_row
from tests.stream_jobs.samples import AZ_IP, CHROME, raw_event

UID = "ELG-CUST-7QX9"
APP_UA = "E-Legal-App/3.1 (Android 14; SM-S918B; Build/UP1A)"  # no pattern knows this one
PHONES = [
    "050/123/45/67",
    "050_123_45_67",
    "(050) 123-45-67",
    "+994 50 123 45 67",
    "0501234567",
    "994501234567",
    "050.123.45.67",
]
SECRETS = [
    *PHONES,
    "198.18.7.77",
    "2001:db8::77",
    "ali@mail.az",
    UID,
    "1234567",
    "123-45-67",
    "123_45_67",
    "123/45/67",
    "123.45.67",
    "123 45 67",
    "501234567",
    "7QX9",
    "7qx9",
    "db8::77",
    "198.18",
    "SM-S918B",
    AZ_IP,
    "Windows NT 10.0",
]


def _leaks(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


def _personal_events() -> list[dict]:
    """Each format of issue 16 in each free-text field a raw event has."""
    events = []
    for n, value in enumerate([*PHONES, "198.18.7.77", "2001:db8::77", "ali@mail.az", UID]):
        # campaign ids are slugs: the phones, the IPv4 address and the customer id fit one
        slug = (
            value.lower()
            .replace(" ", "-")
            .replace("(", "")
            .replace(")", "")
            .replace("+", "")
            .replace("/", "_")
            if "@" not in value and ":" not in value
            else None
        )
        events.append(
            raw_event(
                uid=UID if n % 2 else None,
                type="service_request" if n % 2 else "pageview",
                url=f"https://e-legal.az/kabinet/{value}/ariza?utm_source={value}&utm_medium={value}"
                f"&utm_campaign={value}&q={value}",
                ref=f"https://{value}.example.az/from/{value}",
                section=f"Kabinet {value}",
                service_type=f"notary {value}",
                name=f"apply {value}",
                campaign=slug,
                props={
                    "phone": value,
                    "ua": CHROME,
                    "ip": AZ_IP,
                    "who": UID,
                    "agent": APP_UA,
                    "note": f"call {value} re {UID}",
                },
                ua=APP_UA if n == 0 else CHROME,
            )
        )
    # a service request whose route carries a method prefix and a customer id
    events.append(
        raw_event(
            type="service_request",
            uid=UID,
            url=None,
            route="POST /kabinet/ELG-CUST-7QX9/apply",
            method="POST",
        )
    )
    return events


def test_no_personal_value_reaches_an_enriched_event(make_pipeline) -> None:
    pipeline = make_pipeline()
    out = [pipeline.run(e) for e in _personal_events()]
    assert not any(isinstance(o, DeadLetter) for o in out), out
    blob = orjson.dumps(out).decode()
    assert _leaks(blob) == []
    assert {o["campaign_id"] for o in out} == {"[phone]", "[ip]", "[customer]", ""}
    assert out[-1]["path"] == "/kabinet/[customer]/apply"  # no "/POST ..."
    first = out[0]
    assert first["path"] == "/kabinet/[phone]/ariza"
    assert (first["section"], first["utm_source"], first["service_type"]) == (
        "Kabinet [phone]",
        "[phone]",
        "notary [phone]",
    )
    assert first["props"] == {
        "phone": "[phone]",
        "ua": "[ua]",
        "ip": "[ip]",
        "who": "[customer]",
        "agent": "[ua]",
        "note": "call [phone] re [customer]",
    }
    assert out[7]["referrer_domain"] == "[ip].example.az"


def test_the_events_own_ua_and_customer_id_leave_the_props_even_without_a_pattern(
    make_pipeline,
) -> None:
    event = make_pipeline().run(
        raw_event(
            type="service_request",
            uid="portal-4711",
            ua=APP_UA,
            props={"client": APP_UA, "account": "portal-4711", "ip": AZ_IP, "plan": "gold"},
        )
    )
    assert event["props"] == {
        "client": "[ua]",
        "account": "[customer]",
        "ip": "[ip]",
        "plan": "gold",
    }


def test_dead_letters_lose_the_events_own_identity_too(make_pipeline) -> None:
    bad = raw_event(
        uid="portal-4711",
        ua=APP_UA,
        scroll_pct=900,
        props={"client": APP_UA, "account": "portal-4711", "call": "050/123/45/67"},
    )
    rejected = make_pipeline().run(bad)
    assert isinstance(rejected, DeadLetter) and rejected.reason == "schema"
    blob = orjson.dumps(rejected.to_record()).decode()
    assert "portal-4711" not in blob and "SM-S918B" not in blob and "123/45" not in blob
    assert rejected.event["props"] == {"client": "[ua]", "account": "[customer]", "call": "[phone]"}


def _land(wh, rows: list[dict], table: str) -> None:
    wh.raw_insert(
        table,
        None,
        insert_block=orjson.dumps(rows),
        fmt="JSONEachRow",
        settings={"input_format_skip_unknown_fields": 1},
    )


def _every_table(wh) -> str:
    tables = [
        r[0]
        for r in wh.query(
            "SELECT name FROM system.tables WHERE database = currentDatabase() "
            "AND engine NOT IN ('MaterializedView', 'View') AND name != 'schema_migrations'"
        ).result_rows
    ]
    assert {"events", "sessions", "agg_dim_hourly", "agg_dim_daily", "failed_events"} <= set(tables)
    return "\n".join(
        json.dumps(
            [r[0] for r in wh.query(f"SELECT formatRow('JSONEachRow', *) FROM {table}").result_rows]
        )
        for table in tables
    )


@pytest.mark.clickhouse
def test_no_personal_value_in_any_table_or_rollup_key_and_erasure_leaves_nothing(
    make_pipeline, keys, wh, clock
) -> None:
    from warehouse.audit import record_query
    from warehouse.erasure import erase_customer

    # today, not the fake clock's fixed day: the dead letter's failed_at comes from the clock,
    # and failed_events' 30-day TTL would drop it on insert once that day is a month old
    clock.set(SYSTEM_CLOCK.now())
    pipeline = make_pipeline()
    results = [pipeline.run(e) for e in _personal_events()]
    # and a dead letter carrying the same values
    results.append(
        pipeline.run(
            raw_event(
                uid=UID,
                scroll_pct=900,
                url=f"https://e-legal.az/{UID}",
                props={"phone": PHONES[0], "who": UID},
            )
        )
    )
    events = [event_row(r) for r in results if not isinstance(r, DeadLetter)]
    failed = [failed_row(r.to_record()) for r in results if isinstance(r, DeadLetter)]
    assert len(events) == len(results) - 1 and len(failed) == 1
    _land(wh, events, "events")
    _land(wh, failed, "failed_events")
    assert wh.query("SELECT count() FROM failed_events").result_rows == [(1,)]  # scanned below
    # a dashboard user filtering by a customer's URL: the audit keeps the question, scrubbed
    record_query(
        wh,
        "ana",
        "product",
        "stats/breakdown",
        {"dimension": "path", "filters": {"path": f"/kabinet/{UID}", "q": PHONES[0]}},
        cells=0,
        status=200,
    )
    assert "/kabinet/[customer]" in wh.query("SELECT request FROM query_audit").result_rows[0][0]

    keys_in_rollups = {
        r[0]
        for r in wh.query(
            "SELECT DISTINCT value FROM agg_dim_hourly UNION DISTINCT "
            "SELECT DISTINCT value FROM agg_dim_daily"
        ).result_rows
    }
    assert "/kabinet/[phone]/ariza" in keys_in_rollups and "[customer]" in keys_in_rollups
    assert _leaks("\n".join(keys_in_rollups)) == []
    assert _leaks(_every_table(wh)) == []

    done = erase_customer(wh, keys, UID, actor="admin", via="cli")
    assert done.rows_deleted["events"] >= sum(1 for e in events if e["customer_pid"]) > 0
    assert wh.query("SELECT count() FROM events WHERE customer_pid != ''").result_rows[0][0] == 0
    assert _leaks(_every_table(wh)) == []
