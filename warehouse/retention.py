"""The retention schedule (``retention.toml``): loads it, renders TTL clauses, checks deployments.

Responsible for turning "purpose -> how long" into ClickHouse TTL expressions, and for
proving that what is deployed still matches the schedule (``mayak retention check``).
"""

from __future__ import annotations

import re
import tomllib
import uuid
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from clickhouse_connect.driver.client import Client

_KEEP = re.compile(r"^\s*(\d+)\s+(DAY|WEEK|MONTH|YEAR)\s*$", re.IGNORECASE)
_TTL_IN_ENGINE = re.compile(r"\sTTL\s(.+?)(?:\sSETTINGS\s.*)?$")


@dataclass(frozen=True)
class Rule:
    purpose: str
    keep: str
    where: str | None


@dataclass(frozen=True)
class TableRetention:
    table: str
    time: str
    rules: tuple[Rule, ...]

    def ttl(self) -> str:
        """The TTL clause body: one DELETE rule per purpose, the catch-all excluding the others."""
        conditions = [r.where for r in self.rules if r.where]
        parts = []
        for rule in self.rules:
            where = rule.where or " AND ".join(f"NOT ({c})" for c in conditions)
            expr = f"{self.time} + INTERVAL {rule.keep}"
            parts.append(f"{expr} DELETE WHERE {where}" if where else expr)
        return ", ".join(parts)


@dataclass(frozen=True)
class Schedule:
    purposes: dict[str, dict]
    tables: dict[str, TableRetention]
    exempt: dict[str, str]

    def ttl(self, table: str) -> str:
        if table not in self.tables:
            raise KeyError(f"table {table!r} has no entry in the retention schedule")
        return self.tables[table].ttl()


def load_schedule(path: Path | None = None) -> Schedule:
    """Parse and validate the schedule (the packaged ``retention.toml`` unless ``path``)."""
    text = (
        path.read_text()
        if path
        else resources.files("warehouse").joinpath("retention.toml").read_text()
    )
    raw = tomllib.loads(text)
    purposes = raw.get("purposes", {})
    for name, purpose in purposes.items():
        match = _KEEP.match(purpose.get("keep", ""))
        if not match:
            raise ValueError(f"purpose {name!r}: keep must look like '13 MONTH'")
        purpose["keep"] = f"{match.group(1)} {match.group(2).upper()}"
    tables = {}
    for table, spec in raw.get("tables", {}).items():
        rules = []
        for rule in spec["rules"]:
            if rule["purpose"] not in purposes:
                raise ValueError(f"table {table!r}: unknown purpose {rule['purpose']!r}")
            rules.append(
                Rule(rule["purpose"], purposes[rule["purpose"]]["keep"], rule.get("where"))
            )
        if sum(r.where is None for r in rules) != 1:
            raise ValueError(f"table {table!r}: exactly one rule must have no 'where'")
        tables[table] = TableRetention(table, spec["time"], tuple(rules))
    return Schedule(purposes, tables, raw.get("exempt", {}))


def deployed_ttl(client: Client, table: str) -> str | None:
    """The table TTL as ClickHouse normalised it, or None when the table has none."""
    rows = client.query(
        "SELECT engine_full FROM system.tables "
        "WHERE database = currentDatabase() AND name = {t:String}",
        parameters={"t": table},
    ).result_rows
    if not rows:
        raise LookupError(f"table {table!r} does not exist")
    match = _TTL_IN_ENGINE.search(rows[0][0])
    return match.group(1) if match else None


def normalised_ttl(client: Client, table: str, ttl: str) -> str | None:
    """How ClickHouse prints ``ttl`` on a copy of ``table``'s columns (same normaliser as
    deployed)."""
    probe = f"_ttl_probe_{uuid.uuid4().hex[:12]}"
    # columns only (EMPTY AS SELECT): `AS table` would also copy keys such as SAMPLE BY
    client.command(
        f"CREATE TABLE {probe} ENGINE = MergeTree ORDER BY tuple() TTL {ttl} "
        f"EMPTY AS SELECT * FROM `{table}`"
    )
    try:
        return deployed_ttl(client, probe)
    finally:
        client.command(f"DROP TABLE IF EXISTS {probe}")


def merge_tree_tables(client: Client) -> list[str]:
    rows = client.query(
        "SELECT name FROM system.tables WHERE database = currentDatabase() "
        "AND engine LIKE '%MergeTree%' AND NOT startsWith(name, '_ttl_probe_') "
        "ORDER BY name"
    ).result_rows
    return [r[0] for r in rows]


def check(client: Client, schedule: Schedule | None = None) -> list[str]:
    """Every problem between the deployed tables of the current database and the schedule."""
    schedule = schedule or load_schedule()
    problems = []
    deployed = merge_tree_tables(client)
    logical = {}
    for table in deployed:
        # on a cluster the rows live in NAME_local (warehouse.ddl.Layout)
        name = table.removesuffix("_local") if table.endswith("_local") else table
        logical[name] = table
        if name in schedule.exempt:
            continue
        if name not in schedule.tables:
            problems.append(f"{table}: MergeTree table missing from the retention schedule")
            continue
        actual = deployed_ttl(client, table)
        expected = normalised_ttl(client, table, schedule.ttl(name))
        if actual != expected:
            problems.append(f"{table}: TTL is {actual!r}, the schedule says {expected!r}")
    for table in sorted(set(schedule.tables) - set(logical)):
        problems.append(f"{table}: in the schedule but not deployed")
    return problems
