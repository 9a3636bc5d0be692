"""Applies the numbered ``migrations/NNNN_name.sql`` files once each, in order, and records them.

A file may hold several statements separated by ``;`` at the end of a line, and the
placeholders of ``warehouse.ddl`` (tables, engines, ON CLUSTER, Distributed tables, TTLs from
``retention.toml``). Applied versions are kept in ``schema_migrations``; re-running is a no-op.
On a cluster, run migrations from one place: the DDL itself goes ``ON CLUSTER``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources

from clickhouse_connect.driver.client import Client

from warehouse.ddl import Layout, render

_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")

_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations
(
    version UInt32,
    name String,
    applied_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree ORDER BY version
"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    def statements(self, layout: Layout) -> list[str]:
        parts = re.split(r";\s*$", render(self.sql, layout), flags=re.MULTILINE)
        return [p.strip() for p in parts if _has_code(p)]


def _has_code(text: str) -> bool:
    return any(line.strip() and not line.strip().startswith("--") for line in text.splitlines())


def discover() -> list[Migration]:
    folder = resources.files("warehouse.migrations")
    found = []
    for entry in folder.iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), entry.name, entry.read_text()))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(versions) != len(set(versions)):
        raise ValueError(f"two migrations share a number: {versions}")
    return found


def applied_versions(client: Client) -> set[int]:
    client.command(_LEDGER)
    return {row[0] for row in client.query("SELECT version FROM schema_migrations").result_rows}


def migrate(
    client: Client,
    log: Callable[[str], object] = lambda msg: None,
    cluster: str = "",
    upto: int | None = None,
) -> list[str]:
    """Apply every migration not yet recorded; return the names applied now.

    ``cluster``: the ClickHouse cluster name for replicated/distributed DDL (empty: one node).
    ``upto``: stop after this version (upgrade tests build the database a release had).
    """
    layout = Layout.of(client, cluster)
    done = applied_versions(client)
    applied = []
    for migration in discover():
        if migration.version in done or (upto is not None and migration.version > upto):
            continue
        for statement in migration.statements(layout):
            client.command(statement)
        client.insert(
            "schema_migrations",
            [[migration.version, migration.name]],
            column_names=["version", "name"],
        )
        log(f"applied {migration.name}")
        applied.append(migration.name)
    return applied
