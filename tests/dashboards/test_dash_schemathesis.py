"""Schemathesis over the dashboards app's own OpenAPI description (``/openapi.json``): every
operation is called with generated parameters and bodies, valid and invalid, with a real token
of a role the operation admits, against a small seeded chDB warehouse. Never a 5xx, the status
is one the description lists, and the content type is the one it names."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from anonymizer.keystore import KeyStore
from dashboards import openapi
from dashboards.app import create_app
from dashboards.auth import add_token, cli_token_path, tokens_path
from mayak.settings import Settings
from tests.warehouse.samples import drop, fresh_database, insert_events, synthetic_events
from warehouse.migrate import migrate

pytestmark = pytest.mark.clickhouse
# per operation (29 of them; ~460 cases, 30-80 s on a busy 2-core machine); deeper runs:
# SCHEMATHESIS_EXAMPLES=300 (6,600 cases)
EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "20"))
CALLS: dict[str, int] = {}  # cases run per path (the figures in the notes)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, dict[str, str]]]:
    """The dashboards app over a seeded warehouse, and one real token per role."""
    wh = fresh_database()
    migrate(wh)
    insert_events(wh, synthetic_events())
    data: Path = tmp_path_factory.mktemp("schemathesis")
    conf = Settings(data_dir=data, dashboards_unauth_burst=10_000)
    tokens = {
        role: add_token(tokens_path(conf), f"st.{role}", role)
        for role in ("product", "marketing", "researcher")
    }
    keys = KeyStore(data / "keys.db")
    app = create_app(conf, wh, keys)
    tokens["admin"] = cli_token_path(conf).read_text().strip()
    try:
        yield app, tokens
    finally:
        keys.close()
        drop(wh)


@pytest.fixture(scope="module")
def api_schema(served):
    return schemathesis.openapi.from_asgi("/openapi.json", served[0])


# (path, method) of every operation the dashboards serve; schemathesis's own pytest loader
# (``from_fixture``) does not run under this pytest, so hypothesis drives its strategies here
OPERATIONS = [
    (path, method)
    for path, ops in openapi.PATHS.items()
    for method, op in ops.items()
    if "collector" not in op["tags"]
]


@pytest.mark.parametrize(("path", "method"), OPERATIONS)
def test_no_operation_answers_a_server_error(api_schema, served, path, method) -> None:
    operation = api_schema[path][method]
    roles = operation.definition.raw.get("x-roles") or []
    headers = {"Authorization": f"Bearer {served[1][roles[0]]}"} if roles else {}
    cases = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )

    @given(case=cases, known=st.booleans())
    @settings(
        max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    def run(case, known: bool) -> None:
        if known and isinstance(case.query, dict) and "site" in case.query:
            case.query["site"] = "s1"  # the seeded site: past the 404, into the queries
        CALLS[path] = CALLS.get(path, 0) + 1
        response = case.call(headers=headers)
        case.validate_response(response, checks=CHECKS)

    run()


def teardown_module() -> None:
    print(f"\nschemathesis: {sum(CALLS.values())} cases over {len(CALLS)} paths")
