"""Erasure and export against chDB with the anonymizer's real key store.

(The end-to-end variant through broker + worker is tests/warehouse/test_wh_erasure_pipeline.py.)
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from anonymizer.keystore import KeyStore
from anonymizer.pseudonym import customer_pid
from tests.clock import FakeClock
from tests.warehouse.samples import START, insert_events, insert_rows, synthetic_events
from warehouse.erasure import erase_customer, export_customer, pseudonym_of

pytestmark = pytest.mark.clickhouse
UID = "portal-customer-4711"


@pytest.fixture
def keys(tmp_path) -> KeyStore:
    store = KeyStore(tmp_path / "keys.db")
    yield store
    store.close()


def _customer_rows(pid: str, tag: str = "cust") -> list[dict]:
    base = {"site_id": "s1", "visitor_id": f"v-{tag}", "session_id": f"sess-{tag}", "country": "AZ"}
    return [
        {
            **base,
            "event_id": uuid.uuid4(),
            "event_type": "service_request",
            "ts": START,
            "customer_pid": pid,
            "service_type": "notary",
            "path": "/services/notary",
        },
        # the same visit's anonymous page view before logging in: linked by session and visitor
        {**base, "event_id": uuid.uuid4(), "event_type": "pageview", "ts": START, "path": "/"},
        {
            **base,
            "session_id": f"sess-{tag}-2",
            "event_id": uuid.uuid4(),
            "event_type": "pageview",
            "ts": START,
            "path": "/faq",
        },
    ]


def test_erase_removes_every_linked_row_and_the_key(wh, keys) -> None:
    pid = customer_pid(keys.customer_key(UID), UID)
    other_pid = customer_pid(keys.customer_key("someone-else"), "someone-else")
    background = synthetic_events(200)
    insert_events(wh, background + _customer_rows(pid) + _customer_rows(other_pid, "other")[:1])
    insert_rows(
        wh,
        [
            {
                "failed_at": START,
                "reason": "enrichment",
                "step": "geo",
                "site_id": "s1",
                "event_id": "x",
                "payload": f'{{"pid":"{pid}"}}',
            }
        ],
        "failed_events",
    )
    assert len(export_customer(wh, keys, UID)) == 1

    done = erase_customer(
        wh,
        keys,
        UID,
        actor="admin-ana",
        via="cli",
        opt_out=True,
        clock=FakeClock(datetime(2026, 5, 1, tzinfo=UTC)),
    )

    assert done.rows_deleted == {"events": 3, "sessions": 2, "failed_events": 1}
    assert done.key_destroyed and done.opted_out and done.subject == pid
    assert not keys.has_customer(UID) and keys.is_opted_out(UID)
    assert pseudonym_of(keys, UID) is None and export_customer(wh, keys, UID) == []
    for table, condition in [
        (
            "events",
            "customer_pid = {p:String} OR visitor_id = 'v-cust' "
            "OR startsWith(session_id, 'sess-cust')",
        ),
        ("sessions", "startsWith(session_id, 'sess-cust')"),
        ("failed_events", "position(payload, {p:String}) > 0"),
    ]:
        left = wh.query(f"SELECT count() FROM {table} WHERE {condition}", parameters={"p": pid})
        assert left.result_rows[0][0] == 0, table
    # everyone else is untouched, including the other customer
    assert wh.query("SELECT count() FROM events").result_rows[0][0] == len(background) + 1
    log = wh.query(
        "SELECT subject, actor, via, rows_deleted, key_destroyed, opted_out FROM erasure_log"
    ).result_rows
    assert log == [(pid, "admin-ana", "cli", done.rows_deleted, 1, 1)]
    assert str(wh.query("SELECT ts FROM erasure_log").result_rows[0][0]).startswith("2026-05-01")
    dump = str(wh.query("SELECT * FROM erasure_log").result_rows)
    assert UID not in dump


def test_erasing_an_unknown_customer_is_logged_and_harmless(wh, keys) -> None:
    insert_events(wh, synthetic_events(50))
    done = erase_customer(wh, keys, "never-seen", actor="admin", via="api")
    assert done.as_dict() == {
        "subject": "",
        "rows_deleted": {},
        "key_destroyed": False,
        "opted_out": False,
    }
    assert not keys.has_customer("never-seen")
    assert wh.query("SELECT count() FROM events").result_rows[0][0] == 50
    assert wh.query("SELECT count() FROM erasure_log").result_rows[0][0] == 1


def test_export_gives_pseudonymized_events_only(wh, keys) -> None:
    pid = customer_pid(keys.customer_key(UID), UID)
    insert_events(wh, _customer_rows(pid) + synthetic_events(30))
    exported = export_customer(wh, keys, UID)
    assert [e["event_type"] for e in exported] == ["service_request"]
    assert exported[0]["customer_pid"] == pid and UID not in str(exported)
    assert "kafka_offset" not in exported[0] and exported[0]["ts"].startswith(str(START.date()))
    # what the beacon's details carry is the customer's data too (migration 0008)
    assert {
        "event_name": "",
        "props": {},
        "outbound_url": "",
        "section_names": [],
        "section_ms": [],
    }.items() <= exported[0].items()


def test_colliding_visitor_ids_never_erase_another_customer(wh, keys) -> None:
    # server-hook events without IP: two customers with the same UA share a cookieless visitor id
    mine = customer_pid(keys.customer_key(UID), UID)
    theirs = customer_pid(keys.customer_key("neighbour"), "neighbour")
    shared = {
        "site_id": "s1",
        "visitor_id": "v-shared",
        "session_id": "sess-shared",
        "event_type": "service_request",
        "ts": START,
    }
    insert_events(
        wh,
        [
            {**shared, "event_id": uuid.uuid4(), "customer_pid": mine},
            {**shared, "event_id": uuid.uuid4(), "customer_pid": theirs},
            {**shared, "event_id": uuid.uuid4(), "event_type": "pageview"},
        ],
    )
    done = erase_customer(wh, keys, UID, actor="a", via="cli")
    assert done.rows_deleted == {"events": 2, "sessions": 0, "failed_events": 0}
    left = wh.query("SELECT customer_pid FROM events").result_rows
    assert left == [(theirs,)]
    assert wh.query("SELECT count() FROM sessions").result_rows[0][0] == 1


def test_sweep_removes_events_that_land_after_erasure(wh, keys) -> None:
    from warehouse.erasure import sweep_late_arrivals

    pid = customer_pid(keys.customer_key(UID), UID)
    insert_events(wh, _customer_rows(pid)[:1])
    erase_customer(wh, keys, UID, actor="a", via="cli")
    late = _customer_rows(pid)[:1]  # enriched before the key died, landed after
    insert_events(wh, late + synthetic_events(20))
    assert sweep_late_arrivals(wh) == 1
    assert (
        wh.query(
            "SELECT count() FROM events WHERE customer_pid = {p:String}", parameters={"p": pid}
        ).result_rows[0][0]
        == 0
    )
    assert wh.query("SELECT count() FROM events").result_rows[0][0] == 20
    assert sweep_late_arrivals(wh) == 0
