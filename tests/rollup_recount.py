"""Compares every rollup with a recount of its source, for the tests (independent of the
repair code in warehouse/repair.py).

For each materialized view, the target table's rows grouped by its sorting-key columns (sums, min,
max and the merged uniq* states as numbers) must equal the same grouping of the view's own
SELECT run over its whole source table now. A view fed by another rollup is compared with
that rollup's stored rows, which are themselves compared with their source. ``any`` and
``argMin``/``argMax`` values depend on row order and are not compared. Distinct counts
(uniqCombined sketches) are compared within 2% + 1: merging the same values' states in
another order can end one off near the switch to HyperLogLog (129 vs 128 seen); the
counts, sums, minima and maxima must be equal.

Run as ``python -m tests.rollup_recount`` with a stack's environment: prints one JSON object,
table -> rows that differ (0 everywhere when every rollup equals its recount).
"""

from __future__ import annotations

import re

_SIMPLE = re.compile(r"^SimpleAggregateFunction\((sum|min|max),")
_STATE = re.compile(r"^AggregateFunction\((uniq\w*|sum|count|min|max)(\([^()]*\))?,")


def _folded(
    columns: list[tuple[str, str, int]], summing: bool
) -> tuple[list[str], list[str], list[str]]:
    keys, exact, sketches = [], [], []
    for name, type_, in_key in columns:
        if in_key:
            keys.append(f"`{name}`")
        elif summing and re.match(r"^U?Int\d+$", type_):  # SummingMergeTree: bot_hits.hits
            exact.append(f"sum(`{name}`) AS `{name}`")
        elif simple := _SIMPLE.match(type_):
            exact.append(f"{simple.group(1)}(`{name}`) AS `{name}`")
        elif state := _STATE.match(type_):
            merged = f"{state.group(1)}Merge{state.group(2) or ''}(`{name}`) AS `{name}`"
            (sketches if state.group(1).startswith("uniq") else exact).append(merged)
    return keys, exact, sketches


def differences(client) -> dict[str, int]:
    """Target table -> rows of its stored grouping and its recount that differ."""
    db = client.database
    out = {}
    for view, select, create in client.query(
        "SELECT name, as_select, create_table_query FROM system.tables "
        "WHERE database = currentDatabase() AND engine = 'MaterializedView'"
    ).result_rows:
        target = re.search(r"\bTO\s+`?[\w]+`?\.`?(\w+)`?", create).group(1)
        columns = client.query(
            "SELECT name, type, is_in_sorting_key FROM system.columns "
            "WHERE database = {db:String} AND table = {t:String} ORDER BY position",
            parameters={"db": db, "t": target},
        ).result_rows
        # only what the view fills: a legacy column it no longer writes (the all-event
        # sketches after 0010) is not the view's to answer for
        filled = {
            name
            for (name,) in client.query(
                "SELECT name FROM system.columns WHERE database "
                "= {db:String} AND table = {v:String}",
                parameters={"db": db, "v": view},
            ).result_rows
        }
        columns = [c for c in columns if c[0] in filled]
        engine = client.query(
            "SELECT engine FROM system.tables WHERE database = {db:String} AND name = {t:String}",
            parameters={"db": db, "t": target},
        ).result_rows[0][0]
        keys, exact, sketches = _folded(columns, "SummingMergeTree" in engine)
        group = ", ".join(keys)
        fields = ", ".join(keys + exact + sketches)
        stored = f"SELECT {fields} FROM `{target}` GROUP BY {group}"
        recount = f"SELECT {fields} FROM ({select}) GROUP BY {group}"
        names = [k.strip("`") for k in keys] + [e.rsplit(" AS ", 1)[1].strip("`") for e in exact]
        same = " AND ".join(
            [f"s.`{n}` = r.`{n}`" for n in names]
            + [
                f"abs(toInt64(s.`{n}`) - toInt64(r.`{n}`)) <= 0.02 * r.`{n}` + 1"
                for n in (e.rsplit(" AS ", 1)[1].strip("`") for e in sketches)
            ]
        )
        using = ", ".join(keys)
        n = client.query(
            f"SELECT countIf(NOT ifNull(({same}), 0)) FROM ({stored}) "
            f"AS s FULL OUTER JOIN ({recount}) AS r "
            f"USING ({using}) SETTINGS join_use_nulls = 1"
        ).result_rows[0][0]
        out[target] = n
    return out


if __name__ == "__main__":
    import orjson

    from mayak.settings import Settings
    from warehouse.client import client_from_settings

    print(orjson.dumps(differences(client_from_settings(Settings()))).decode())
