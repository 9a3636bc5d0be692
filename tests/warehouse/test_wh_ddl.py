"""The same migrations rendered for one node and for a replicated, sharded cluster."""

from __future__ import annotations

import re

import pytest

from warehouse.ddl import Layout, render
from warehouse.migrate import discover
from warehouse.retention import load_schedule

CLUSTER = Layout(database="mayak", cluster="prod")
SINGLE = Layout(database="mayak")


def statements(layout: Layout) -> list[str]:
    return [s for m in discover() for s in m.statements(layout)]


def _code(statement: str) -> str:
    return "\n".join(
        line for line in statement.splitlines() if not line.strip().startswith("--")
    ).strip()


def test_single_node_has_no_cluster_artifacts() -> None:
    sql = "\n".join(statements(SINGLE))
    assert "{{" not in sql
    for marker in ("ON CLUSTER", "Replicated", "Distributed", "_local"):
        assert marker not in sql


def test_cluster_ddl_is_replicated_and_distributed() -> None:
    stmts = statements(CLUSTER)
    assert all("{{" not in s for s in stmts)
    # a backfill INSERT runs once, through the Distributed tables: no ON CLUSTER
    ddl = [s for s in stmts if not _code(s).startswith("INSERT")]
    assert all(" ON CLUSTER `prod`" in s for s in ddl)
    assert all(not re.search(r"\b\w+_local\b", s) for s in stmts if s not in ddl)
    creates = [s for s in stmts if re.search(r"ENGINE = (?!Replicated)\w*MergeTree", s)]
    assert creates == [], "every MergeTree engine must be Replicated on a cluster"
    locals_ = re.findall(
        r"CREATE TABLE IF NOT EXISTS (\w+)_local ON CLUSTER `prod`\s*\(", "\n".join(stmts)
    )
    assert set(locals_) == set(load_schedule().tables)
    for table in locals_:
        engine = next(s for s in stmts if f"EXISTS {table}_local ON" in s)
        assert (
            "Replicated" in engine
            and f"'/clickhouse/tables/{{shard}}/mayak/{table}_local', '{{replica}}'" in engine
        )
        distributed = [
            s for s in stmts if re.search(rf"^CREATE TABLE IF NOT EXISTS {table} ON", s, re.M)
        ]
        assert len(distributed) == 1
        assert (
            f"AS {table}_local ENGINE = Distributed(`prod`, `mayak`, {table}_local,"
            in distributed[0]
        )
    # rows of a site stay on one shard, so per-site reads and sessions stay shard-local
    assert "events_local, cityHash64(site_id))" in "\n".join(stmts)


def test_cluster_views_read_and_write_shard_local_tables() -> None:
    views = [s for s in statements(CLUSTER) if "MATERIALIZED VIEW" in s]
    assert len(views) >= 3
    for view in views:
        assert re.search(r"TO \w+_local AS", view) and re.search(r"FROM \w+_local\b", view)


def test_engine_arguments_follow_the_replication_path() -> None:
    sql = (
        "CREATE TABLE IF NOT EXISTS {{table:t}} {{on_cluster}} (d Date, n UInt64)\n"
        "ENGINE = {{engine:SummingMergeTree(n)}} ORDER BY d"
    )
    assert render(sql, SINGLE).endswith("ENGINE = SummingMergeTree(n) ORDER BY d")
    assert (
        "ENGINE = ReplicatedSummingMergeTree('/clickhouse/tables/{shard}/mayak/t_local', "
        "'{replica}', n)"
    ) in render(sql, CLUSTER)
    with pytest.raises(ValueError, match="unknown migration placeholder"):
        render("{{bogus:x}}", SINGLE)


@pytest.mark.clickhouse
def test_cluster_ddl_parses(ch) -> None:
    # no cluster here: ClickHouse's own parser checks every statement without running it
    for statement in statements(CLUSTER):
        assert ch.query("EXPLAIN AST " + statement).result_rows
