"""Renders migration templates for one node (embedded chDB, one server) or a replicated cluster.

Migrations are written once, with placeholders; this module is responsible for what they
become in each layout:

=================================  ==========================  ===================================
placeholder                        single node                 cluster ``C``
=================================  ==========================  ===================================
``{{on_cluster}}``                 (nothing)                   ``ON CLUSTER C``
``{{table:events}}``               ``events``                  ``events_local`` (one per shard)
``{{engine:MergeTree}}``           ``MergeTree``               ``ReplicatedMergeTree('/clickhouse/
                                                               tables/{shard}/DB/events',
                                                               '{replica}')``
``{{distributed:events:KEY}}``     (nothing)                   ``CREATE TABLE events ON CLUSTER C AS
                                                               events_local ENGINE =
                                                               Distributed(..)``
``{{ttl:events}}``                 the schedule's TTL for the table (``retention.toml``)
=================================  ==========================  ===================================

Readers and writers always use the plain name (``events``): on a cluster that is the
Distributed table, which routes inserts to a shard by KEY and fans reads out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from warehouse.retention import Schedule, load_schedule

_PLACEHOLDER = re.compile(r"\{\{(\w+)(?::([^{}]*?))?\}\}")
_ENGINE = re.compile(r"^(\w*MergeTree)(?:\((.*)\))?$", re.DOTALL)
_CREATE_TABLE = re.compile(r"CREATE\s+TABLE\s+IF\s+NOT\s+EXISTS\s+\{\{table:(\w+)\}\}", re.I)


class _Connected(Protocol):
    """A ClickHouse client (anything that names the database it is connected to)."""

    @property
    def database(self) -> str | None: ...


@dataclass(frozen=True)
class Layout:
    """Where tables live: ``cluster`` empty means one node; else the cluster name of
    remote_servers."""

    database: str
    cluster: str = ""

    @classmethod
    def of(cls, client: _Connected, cluster: str = "") -> Layout:
        """The layout of the database ``client`` is connected to (``default`` if it names none)."""
        return cls(database=client.database or "default", cluster=cluster)

    @property
    def clustered(self) -> bool:
        return bool(self.cluster)

    def local(self, table: str) -> str:
        """The name that holds the rows on each node (mutations such as erasure target it)."""
        return f"{table}_local" if self.clustered else table

    def on_cluster(self) -> str:
        return f"ON CLUSTER `{self.cluster}`" if self.clustered else ""


def render(sql: str, layout: Layout, schedule: Schedule | None = None) -> str:
    """Replace every placeholder of one migration file for ``layout``."""
    schedule = schedule or load_schedule()

    def replace(match: re.Match) -> str:
        kind, arg = match.group(1), match.group(2)
        if kind == "on_cluster":
            return layout.on_cluster()
        if kind == "table":
            return layout.local(arg)
        if kind == "ttl":
            return schedule.ttl(arg)
        if kind == "engine":
            return _engine(arg, layout, _table_of_engine(sql, match.start()))
        if kind == "distributed":
            table, _, key = arg.partition(":")
            return _distributed(table, key, layout)
        raise ValueError(f"unknown migration placeholder {match.group(0)}")

    return _PLACEHOLDER.sub(replace, sql)


def _table_of_engine(sql: str, position: int) -> str:
    # the engine belongs to the nearest CREATE TABLE before it
    before = _CREATE_TABLE.findall(sql[:position])
    if not before:
        raise ValueError(
            "an {{engine:...}} placeholder must follow CREATE TABLE IF NOT EXISTS {{table:...}}"
        )
    return before[-1]


def _engine(spec: str, layout: Layout, table: str) -> str:
    match = _ENGINE.match(spec.strip())
    if not match:
        raise ValueError(f"unsupported engine in migration: {spec!r}")
    name, args = match.group(1), match.group(2)
    if not layout.clustered:
        return spec.strip()
    path = f"'/clickhouse/tables/{{shard}}/{layout.database}/{layout.local(table)}'"
    all_args = ", ".join(a for a in (path, "'{replica}'", args) if a)
    return f"Replicated{name}({all_args})"


def _distributed(table: str, key: str, layout: Layout) -> str:
    if not layout.clustered:
        return ""
    return (
        f"CREATE TABLE IF NOT EXISTS {table} {layout.on_cluster()} AS {layout.local(table)} "
        f"ENGINE = Distributed(`{layout.cluster}`, `{layout.database}`, "
        f"{layout.local(table)}, {key or 'rand()'})"
    )
