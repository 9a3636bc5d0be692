"""Fuzzing the dashboards API with hypothesis: whatever a caller sends, the answer is never a 5xx
(bad input is a 4xx naming the problem), against a real chDB warehouse with data in it."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from anonymizer.keystore import KeyStore
from dashboards.app import create_app
from dashboards.auth import add_token, cli_token_path, tokens_path
from mayak.settings import Settings
from tests.warehouse.samples import START, insert_events, synthetic_events
from warehouse.question import DIMENSIONS, METRICS, TIME_BUCKETS

pytestmark = pytest.mark.clickhouse

GETS = [
    "stats/summary",
    "stats/breakdown",
    "stats/series",
    "marketing/campaigns",
    "research/query",
    "admin/audit",
]
POSTS = ["marketing/campaigns/{}/sends", "admin/erase", "admin/export", "admin/sweep"]
NAMES = sorted({*DIMENSIONS, *TIME_BUCKETS, *METRICS}) + ["visitor_id", "", "ts"]

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
iso_date = st.dates().map(str)  # years 1..9999
# a year either side in days: replace(year=...) fails when START is 29 February
near_date = st.dates(START.date() - timedelta(days=366), START.date() + timedelta(days=366)).map(
    str
)
number = st.one_of(st.integers(-(10**20), 10**20), st.integers(-3, 2000)).map(str)
names = st.lists(st.sampled_from(NAMES), max_size=4).map(",".join)
filters = st.lists(
    st.one_of(text, st.tuples(st.sampled_from(NAMES), text).map(":".join)), max_size=3
)
param_value = st.one_of(text, iso_date, near_date, number, names)
params = st.fixed_dictionaries(
    {},
    optional={
        "site": st.one_of(st.just("s1"), text),
        "from": st.one_of(iso_date, near_date, text),
        "to": st.one_of(iso_date, near_date, text),
        "metrics": names,
        "dimensions": names,
        "limit": number,
        "filter": filters,
        "x": param_value,
    },
)
json_value = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(10**30), 10**30),
        st.floats(allow_nan=False),
        text,
        iso_date,
    ),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=6,
)
body = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "site": st.one_of(st.just("s1"), json_value),
            "sent": json_value | st.integers(-5, 10**9),
            "sent_on": st.one_of(iso_date, json_value),
            "customer": json_value,
            "opt_out": json_value,
        },
    ),
    json_value,
)
# what a URL path and a header can carry at all (the HTTP client refuses the rest)
campaign = st.one_of(
    st.just("spring"),
    st.text(
        st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/?#%"),
        min_size=1,
        max_size=80,
    ),
)
header = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60)


@pytest.fixture
def api(tmp_path, wh):
    insert_events(wh, synthetic_events())
    conf = Settings(data_dir=tmp_path, dashboards_unauth_burst=10_000)
    roles = {
        role: add_token(tokens_path(conf), f"fuzz.{role}", role)
        for role in ("product", "marketing", "researcher")
    }
    keys = KeyStore(tmp_path / "keys.db")
    client = TestClient(create_app(conf, wh, keys), raise_server_exceptions=False)
    roles["admin"] = cli_token_path(conf).read_text()
    yield client, roles
    keys.close()


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_no_input_makes_a_server_error(api, data) -> None:
    client, roles = api
    role = data.draw(st.sampled_from([*roles, "none", "junk"]))
    headers = (
        {"Authorization": f"Bearer {roles[role]}"}
        if role in roles
        else ({"Authorization": data.draw(header)} if role == "junk" else {})
    )
    if data.draw(st.booleans()):
        got = client.get(
            f"/api/{data.draw(st.sampled_from(GETS))}", params=data.draw(params), headers=headers
        )
    else:
        path = data.draw(st.sampled_from(POSTS)).format(data.draw(campaign))
        raw = data.draw(
            st.one_of(body.map(lambda b: json.dumps(b).encode()), st.binary(max_size=30))
        )
        got = client.post(f"/api/{path}", content=raw, headers=headers)
    assert got.status_code < 500, got.text
    if got.status_code >= 400 and got.status_code != 404:
        assert got.json()["error"]
