"""Writes the access audit (``query_audit``) and the erasure log (``erasure_log``).

Responsible for what an audit row may hold: who (a token's name, never the token), the role,
what was asked (the whitelisted question as JSON, scrubbed: a filter value typed by a user
can be a phone or a customer id, and the audit is kept for years), how many cells came back;
for erasures the pseudonym that was erased, never the customer id.
"""

from __future__ import annotations

import orjson
from clickhouse_connect.driver.client import Client

from anonymizer.scrub import scrub_value
from mayak.clock import SYSTEM_CLOCK, Clock


def record_query(
    client: Client,
    actor: str,
    role: str,
    endpoint: str,
    request: dict,
    cells: int,
    status: int,
    clock: Clock = SYSTEM_CLOCK,
) -> None:
    client.insert(
        "query_audit",
        [
            [
                clock.now(),
                actor,
                role,
                endpoint,
                orjson.dumps(scrub_value(request), default=str).decode(),
                cells,
                status,
            ]
        ],
        column_names=["ts", "actor", "role", "endpoint", "request", "cells", "status"],
    )


def record_erasure(
    client: Client,
    subject: str,
    actor: str,
    via: str,
    rows_deleted: dict[str, int],
    key_destroyed: bool,
    opted_out: bool,
    clock: Clock = SYSTEM_CLOCK,
) -> None:
    client.insert(
        "erasure_log",
        [[clock.now(), subject, actor, via, rows_deleted, int(key_destroyed), int(opted_out)]],
        column_names=[
            "ts",
            "subject",
            "actor",
            "via",
            "rows_deleted",
            "key_destroyed",
            "opted_out",
        ],
    )


def recent_queries(client: Client, limit: int = 100) -> list[dict]:
    result = client.query(
        "SELECT ts, actor, role, endpoint, request, cells, status FROM query_audit "
        "ORDER BY ts DESC LIMIT {n:UInt32}",
        parameters={"n": limit},
    )
    return [{**row, "ts": row["ts"].isoformat()} for row in result.named_results()]
