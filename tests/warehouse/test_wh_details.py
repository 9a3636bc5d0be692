"""Event details in reports: sections read, custom events and their props, outbound clicks."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from tests.warehouse.samples import START, insert_rows
from warehouse.details import sections_report
from warehouse.query import build, choose_source, run
from warehouse.question import Query, QueryError, utc_bounds

D1 = START.date()


def q(**kw) -> Query:
    return Query(
        **{
            "site": "s1",
            "metrics": ("events",),
            "date_from": D1,
            "date_to": D1 + timedelta(days=1),
            "tz": "UTC",
            **kw,
        }
    )


def _row(kind: str, visitor: str, minute: int, path: str = "/article", **fields) -> dict:
    return {
        "event_id": uuid.uuid4(),
        "event_type": kind,
        "site_id": "s1",
        "ts": START + timedelta(hours=10, minutes=minute),
        "visitor_id": visitor,
        "session_id": f"{visitor}-1",
        "path": path,
        "section": "",
        "event_name": "",
        "props": {},
        "outbound_url": "",
        "section_names": [],
        "section_ms": [],
        **fields,
    }


def _seed(client) -> None:
    rows = [
        # three readers of /article; a reads intro and fees, b intro only (in two reports)
        _row("pageview", "a", 0),
        _row("pageview", "b", 1),
        _row("pageview", "c", 2),
        _row("engagement", "a", 3, section_names=["intro", "fees"], section_ms=[4114, 3002]),
        _row("engagement", "b", 4, section_names=["intro"], section_ms=[1500]),
        _row("engagement", "b", 5, section_names=["intro"], section_ms=[500]),
        _row("engagement", "c", 5),  # engaged without any section on screen
        # a service request naming a section is not a reader: sections are web-only
        _row("service_request", "d", 6, path="/apply", section="fees"),
        _row("custom", "a", 7, event_name="download", props={"format": "pdf", "lang": "az"}),
        _row("custom", "b", 8, event_name="download", props={"format": "docx"}),
        _row("custom", "b", 9, event_name="share", props={"lang": "en"}),
        _row("outbound", "a", 10, outbound_url="https://gov.az/services/notary"),
        _row("outbound", "b", 11, outbound_url="https://gov.az/services/notary"),
        _row("outbound", "c", 12, outbound_url="https://e-gov.az/"),
    ]
    insert_rows(client, rows)


def _by(result, key: str) -> dict:
    return {r[key]: {k: v for k, v in r.items() if k != key} for r in result.records()}


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"dimensions": ("prop:a b",)}, "unknown dimension 'prop:a b'"),
        ({"dimensions": ("prop:",)}, "unknown dimension"),
        ({"dimensions": ("prop:x') OR 1=1 --",)}, "unknown dimension"),
        ({"filters": (("prop:k}", "v"),)}, "unknown filter"),
    ],
)
def test_prop_keys_follow_the_raw_contract(kw, message) -> None:
    with pytest.raises(QueryError, match=message):
        q(**kw)


def test_detail_questions_read_raw_events_with_keys_bound() -> None:
    for kw in (
        {"dimensions": ("event_name",)},
        {"dimensions": ("outbound_url",)},
        {"dimensions": ("prop:format",)},
        {"metrics": ("section_seconds",)},
        {"dimensions": ("section", "path")},
        {"dimensions": ("path",), "filters": (("section", "fees"),)},
    ):
        assert choose_source(q(**kw)) == "events"
    for kw in (
        {"dimensions": ("section",)},
        {"dimensions": ("day", "section")},
        {"dimensions": ("hour",), "filters": (("section", "fees"),)},
    ):
        assert choose_source(q(**kw)) == "agg_section_hourly"
    sql = build(q(dimensions=("prop:format",), filters=(("prop:lang", "az"),)))
    assert "format" not in sql.text and "lang" not in sql.text and "az" not in sql.text
    assert (sql.parameters["pk_d0"], sql.parameters["pk_f0"]) == ("format", "lang")
    assert sql.columns == ["prop:format", "events"]
    with pytest.raises(QueryError, match=r"unknown dimension 'nope'.*prop:<key>"):
        q(dimensions=("nope",))


@pytest.mark.clickhouse
def test_sections_roll_up_per_section(wh) -> None:
    _seed(wh)
    got = _by(
        run(
            wh,
            q(
                dimensions=("section",),
                metrics=("visitors", "section_seconds", "sessions", "events"),
            ),
        ),
        "section",
    )
    assert got == {
        "intro": {"visitors": 2, "section_seconds": 6, "sessions": 2, "events": 3},
        "fees": {"visitors": 1, "section_seconds": 3, "sessions": 1, "events": 1},
    }
    # one section as a filter, another dimension alongside
    by_path = _by(
        run(
            wh,
            q(
                dimensions=("path",),
                filters=(("section", "fees"),),
                metrics=("visitors", "section_seconds"),
            ),
        ),
        "path",
    )
    assert by_path == {"/article": {"visitors": 1, "section_seconds": 3}}
    # without the section dimension: every section's dwell of the rows asked about
    total = run(wh, q(metrics=("section_seconds", "pageviews"))).records()
    assert total == [{"section_seconds": 9, "pageviews": 3}]


@pytest.mark.clickhouse
@pytest.mark.parametrize(
    "kw",
    [
        {
            "dimensions": ("section",),
            "metrics": (
                "visitors",
                "section_seconds",
                "sessions",
                "events",
                "pageviews",
                "engaged_seconds",
            ),
        },
        {"dimensions": ("hour", "section"), "metrics": ("section_seconds", "visitors")},
        {"dimensions": ("day",), "metrics": ("visitors",), "filters": (("section", "intro"),)},
        {"dimensions": ("section",), "metrics": ("section_seconds",), "limit": 1},
    ],
)
def test_the_section_rollup_agrees_with_raw_events(wh, kw) -> None:
    _seed(wh)
    rolled, raw = run(wh, q(**kw)), run(wh, q(**kw), source="events")
    assert rolled.source == "agg_section_hourly" and raw.source == "events"
    assert rolled.rows and rolled.rows == raw.rows


@pytest.mark.clickhouse
def test_custom_events_props_and_outbound_destinations(wh) -> None:
    _seed(wh)
    names = _by(
        run(wh, q(dimensions=("event_name",), metrics=("events", "visitors"))), "event_name"
    )
    assert names == {
        "download": {"events": 2, "visitors": 2},
        "share": {"events": 1, "visitors": 1},
    }
    formats = _by(run(wh, q(dimensions=("prop:format",), metrics=("events",))), "prop:format")
    assert formats == {"pdf": {"events": 1}, "docx": {"events": 1}}
    langs = _by(
        run(
            wh,
            q(
                dimensions=("prop:lang",),
                metrics=("events",),
                filters=(("event_name", "download"),),
            ),
        ),
        "prop:lang",
    )
    assert langs == {"az": {"events": 1}}
    out = _by(
        run(wh, q(dimensions=("outbound_url",), metrics=("events", "visitors"))), "outbound_url"
    )
    assert out == {
        "https://gov.az/services/notary": {"events": 2, "visitors": 2},
        "https://e-gov.az/": {"events": 1, "visitors": 1},
    }
    two = run(wh, q(dimensions=("event_name", "prop:format"), metrics=("events",)))
    assert sorted(map(tuple, two.rows)) == [("download", "docx", 1), ("download", "pdf", 1)]


@pytest.mark.clickhouse
def test_sections_report_gives_dwell_and_reach_per_page(wh) -> None:
    _seed(wh)
    start, end = utc_bounds(q())
    rows = sections_report(wh, "s1", start, end)
    got = {(r["path"], r["section"]): r for r in rows}
    intro, fees = got[("/article", "intro")], got[("/article", "fees")]
    assert (
        intro["visitors"],
        intro["visits"],
        intro["section_seconds"],
        intro["readers"],
        intro["reach"],
        intro["avg_seconds"],
    ) == (2, 2, 6, 3, 0.667, 3.1)
    assert (fees["visitors"], fees["section_seconds"], fees["reach"], fees["avg_seconds"]) == (
        1,
        3,
        0.333,
        3.0,
    )
    apply = got[("/apply", "fees")]  # no page view of /apply in the range: reach stays <= 1
    assert (apply["visitors"], apply["readers"], apply["reach"]) == (1, 1, 1.0)
    only = sections_report(wh, "s1", start, end, path="/article")
    assert {r["section"] for r in only} == {"intro", "fees"}


@pytest.mark.clickhouse
def test_the_section_rollup_is_backfilled_from_events_landed_before_it(ch) -> None:
    from warehouse.migrate import migrate

    migrate(ch, upto=8)
    _seed(ch)
    assert migrate(ch)[0] == "0009_section_rollup.sql"
    _seed(ch)  # and what lands afterwards goes through the view
    query = q(dimensions=("section",), metrics=("visitors", "section_seconds", "events"))
    rolled, raw = run(ch, query), run(ch, query, source="events")
    assert rolled.source == "agg_section_hourly" and rolled.rows == raw.rows
    assert {r["section"]: r["events"] for r in rolled.records()} == {"intro": 6, "fees": 2}
