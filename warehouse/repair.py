"""Keeps every rollup equal to a recount of its source table, for the days an insert touched.

ClickHouse commits the part of a landed table (``events``, ``failed_events``) and the parts of
the materialized views it feeds one after the other. A process killed (or an insert failing)
in between leaves a rollup short of rows its source holds, or holding rows of an insert whose
source part never landed (the sink then lands them again: counted twice). The sink journals
the UTC days of each insert before it starts (``InflightJournal``) and, after a crash or a
failed attempt, ``repair_days`` rewrites those days of every rollup whose rows differ from a
recount.

Rollups are not listed here: they are read from ClickHouse (``system.tables``). Every
materialized view whose source is the landed table is a root; a view fed by a root's target
(``agg_dim_daily`` from ``agg_dim_hourly``) is its child. A recount is the view's own SELECT
(``as_select``) over the source restricted to the days; a child's recount is its SELECT over
its parent's recount. A new migration's rollup is covered without a line here, if its time
column (its first Date/DateTime key column) buckets by at most a day, or is the ``toMonday``
of its parent's day (``agg_dim_weekly``, 0018). Such a weekly child holds whole weeks, which
a recount of some days cannot rebuild: it is compared with its SELECT over its parent's
stored rows of the weeks touched, and a repair rewrites those whole weeks from the parent
(after the parent's days were rewritten).

Detection compares, per day, a fingerprint of the grouped rows: the number of keys and a sum
of hashes of each key with its exact values (sum/min/max columns, count/sum states; merged
uniq* sketches only in a rollup without any of those, as their merge is not quite
order-independent). A part missing or landed twice changes a count of every row it holds.
``any``/``argMin``/``argMax`` values depend on row order and are left out of it (a
rewritten day recomputes them too). Repair: delete the day's rows from the root's target and
all its descendants, then insert the recount into the root's target; the views carry it on
to the children, as they do for any insert. Run it only when no other process writes the
tables (the embedded worker before it lands anything): a concurrent insert between the
delete and the insert-select could be lost or counted twice.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

log = logging.getLogger("mayak.warehouse.repair")

_TO = re.compile(r"\bTO\s+(`?[\w.]+`?)\s", re.I)
_SIMPLE = re.compile(r"^SimpleAggregateFunction\((\w+),")
_STATE = re.compile(r"^AggregateFunction\((\w+)(\([^()]*\))?,")
_DETERMINISTIC = {"sum", "min", "max", "count", "uniqExact"}
_NUMBER = re.compile(r"^(U?Int\d+|Float\d+|Decimal.*)$")
_TIME = re.compile(r"^(Date|Date32|DateTime|DateTime\(.*\))$")


@dataclass
class Rollup:
    """One view's target table: how to recount it and what to compare."""

    table: str
    select: str  # the view's SELECT, reading ``source``
    source: str
    time_column: str
    keys: list[str]
    values: dict[str, str]  # column -> expression folding it per key (for the fingerprint)
    columns: list[str]
    children: list[Rollup] = field(default_factory=list)
    weekly: bool = False  # the time column is toMonday(parent's day): rewritten by whole weeks

    def tables(self) -> list[str]:
        return [self.table] + [t for child in self.children for t in child.tables()]


def _unquote(name: str) -> str:
    return name.replace("`", "").split(".")[-1]


def rollups_of(client: Client, source: str) -> list[Rollup]:
    """The rollup trees fed by ``source`` in the client's database."""
    db = client.database or "default"
    views = client.query(
        "SELECT name, as_select, create_table_query FROM system.tables "
        "WHERE database = {db:String} AND engine = 'MaterializedView' ORDER BY name",
        parameters={"db": db},
    ).result_rows
    columns: dict[str, list[tuple[str, str, bool]]] = {}
    for table, name, type_, key, engine in client.query(
        "SELECT c.table, c.name, c.type, c.is_in_sorting_key, t.engine "
        "FROM system.columns AS c JOIN system.tables AS t "
        "ON t.database = c.database AND t.name = c.table "
        "WHERE c.database = {db:String} ORDER BY c.table, c.position",
        parameters={"db": db},
    ).result_rows:
        # a SummingMergeTree sums its numeric columns outside the key (bot_hits.hits)
        summed = "SummingMergeTree" in engine and not key and _NUMBER.match(type_) is not None
        columns.setdefault(table, []).append(
            (name, f"SimpleAggregateFunction(sum, {type_})" if summed else type_, bool(key))
        )
    edges = []
    for view, select, create in views:
        target = _TO.search(create)
        found = re.findall(rf"\bFROM\s+`?{re.escape(db)}`?\.`?(\w+)`?", select)
        if target and len(found) == 1:
            edges.append((found[0], _unquote(target.group(1)), select, view))
        elif target:
            log.warning(
                "the view into %s reads %d tables: its rollup is not checked",
                _unquote(target.group(1)),
                len(found),
            )

    def build(parent: str) -> list[Rollup]:
        made = []
        for src, target, select, view in edges:
            if src == parent and target in columns:
                # only the columns the view fills (a legacy column a later view no longer
                # writes, e.g. the all-event sketches after 0010, is neither compared nor
                # recounted)
                filled = {name for name, _, _ in columns.get(view, [])}
                rollup = _describe(
                    target, select, src, [c for c in columns[target] if c[0] in filled]
                )
                if rollup is not None:
                    rollup.children = build(target)
                    made.append(rollup)
        return made

    return build(source)


def _describe(
    table: str, select: str, source: str, cols: list[tuple[str, str, bool]]
) -> Rollup | None:
    keys, exact, sketches = [], {}, {}
    for name, type_, in_key in cols:
        simple, state = _SIMPLE.match(type_), _STATE.match(type_)
        if simple:
            if simple.group(1) in {"sum", "min", "max"}:
                exact[name] = f"{simple.group(1)}(`{name}`)"
        elif state:
            func, params = state.group(1), state.group(2) or ""
            if func in _DETERMINISTIC:
                exact[name] = f"{func}Merge{params}(`{name}`)"
            elif func.startswith("uniq"):
                sketches[name] = f"{func}Merge{params}(`{name}`)"
        elif in_key:
            keys.append(name)  # other plain columns keep any one row's value: not compared
    time_columns = [name for name, type_, _ in cols if name in keys and _TIME.match(type_)]
    if not time_columns:
        log.warning("rollup %s has no Date/DateTime key column: not checked", table)
        return None
    # uniqCombined & co. are not quite independent of the order states merge in (129 vs 128
    # distinct seen near the switch to HyperLogLog): compared only in a rollup with no exact
    # column
    weekly = re.search(rf"\btoMonday\([^()]*\)\s+AS\s+`?{time_columns[0]}`?", select)
    return Rollup(
        table,
        select,
        source,
        time_columns[0],
        keys,
        exact or sketches,
        [n for n, _, _ in cols],
        weekly=weekly is not None,
    )


def _days_sql(days: Iterable[date]) -> str:
    return "[" + ",".join(f"toDate('{d.isoformat()}')" for d in sorted(days)) + "]"


def _mondays(days: Iterable[date]) -> list[date]:
    return sorted({d - timedelta(days=d.weekday()) for d in days})


def _recount(rollup: Rollup, db: str, source_sql: str) -> str:
    """The view's SELECT over ``source_sql`` (a subquery) instead of its source table."""
    pattern = rf"\bFROM\s+`?{re.escape(db)}`?\.`?{re.escape(rollup.source)}`?(?=[\s)]|$)"
    return re.sub(
        pattern, lambda _: f"FROM ({source_sql}) AS `{rollup.source}`", rollup.select, count=1
    )


def _fingerprint(client: Client, rollup: Rollup, rows_sql: str) -> dict[date, tuple[int, int]]:
    keys = ", ".join(f"`{k}`" for k in rollup.keys)
    folded = ", ".join(f"{expr} AS `{name}`" for name, expr in rollup.values.items())
    hashed = ", ".join([f"`{k}`" for k in rollup.keys] + [f"`{v}`" for v in rollup.values])
    sql = (
        f"SELECT toDate(`{rollup.time_column}`) AS d, count(), sum(cityHash64({hashed})) "
        f"FROM (SELECT {keys}{', ' if folded else ''}{folded} FROM ({rows_sql}) "
        f"GROUP BY {keys}) GROUP BY d"
    )
    return {row[0]: (row[1], row[2]) for row in client.query(sql).result_rows}


def _stored(rollup: Rollup, days: list[date]) -> str:
    return (
        f"SELECT * FROM `{rollup.table}` WHERE toDate(`{rollup.time_column}`) IN {_days_sql(days)}"
    )


def repair_days(
    client: Client, source: str, time_column: str, days: list[date]
) -> dict[str, list[date]]:
    """Rewrite the days of every rollup of ``source`` that differ from a recount.

    Returns root table -> the days rewritten (empty when every rollup matched)."""
    days = sorted(set(days))
    if not days:
        return {}
    db = client.database or "default"
    source_sql = (
        f"SELECT * FROM `{db}`.`{source}` WHERE toDate(`{time_column}`) IN {_days_sql(days)}"
    )
    repaired: dict[str, list[date]] = {}
    for root in rollups_of(client, source):
        bad = sorted(_check(client, root, db, source_sql, days))
        if not bad:
            continue
        weekly = _weekly(root)
        for table in root.tables():
            if table in {child.table for child, _ in weekly}:
                continue  # rewritten by whole weeks below
            rollup_time = _time_column_of(root, table)
            client.command(
                f"DELETE FROM `{table}` WHERE toDate(`{rollup_time}`) IN {_days_sql(bad)}"
            )
        only_bad = (
            f"SELECT * FROM `{db}`.`{source}` WHERE toDate(`{time_column}`) IN {_days_sql(bad)}"
        )
        cols = ", ".join(f"`{c}`" for c in root.columns)
        client.command(
            f"INSERT INTO `{root.table}` ({cols}) SELECT {cols} FROM "
            f"({_recount(root, db, only_bad)})"
        )
        for child, parent in weekly:  # parents first: a parent's weeks are whole again
            weeks = _days_sql(_mondays(bad))
            client.command(f"DELETE FROM `{child.table}` WHERE `{child.time_column}` IN {weeks}")
            cols = ", ".join(f"`{c}`" for c in child.columns)
            client.command(
                f"INSERT INTO `{child.table}` ({cols}) SELECT {cols} FROM "
                f"({_recount(child, db, _parent_weeks(parent, db, bad))})"
            )
        repaired[root.table] = bad
        log.warning(
            "rewrote %s (and the rollups fed by it) for %s: they differed from a "
            "recount of %s (an insert was interrupted)",
            root.table,
            ", ".join(d.isoformat() for d in bad),
            source,
        )
    return repaired


def _check(client: Client, rollup: Rollup, db: str, source_sql: str, days: list[date]) -> set[date]:
    recount = _recount(rollup, db, source_sql)
    want = _fingerprint(client, rollup, recount)
    have = _fingerprint(client, rollup, _stored(rollup, days))
    bad = {d for d in days if want.get(d) != have.get(d)}
    for child in rollup.children:
        if child.weekly:
            bad |= _check_weeks(client, child, rollup, db, days)
        else:
            bad |= _check(client, child, db, recount, days)
    return bad


def _check_weeks(
    client: Client, rollup: Rollup, parent: Rollup, db: str, days: list[date]
) -> set[date]:
    """The days whose week in ``rollup`` differs from its SELECT over the parent's stored
    rows of the whole week (the parent itself is checked against its recount)."""
    weeks = _mondays(days)
    want = _fingerprint(client, rollup, _recount(rollup, db, _parent_weeks(parent, db, days)))
    have = _fingerprint(
        client,
        rollup,
        f"SELECT * FROM `{rollup.table}` WHERE `{rollup.time_column}` IN {_days_sql(weeks)}",
    )
    bad = {w for w in weeks if want.get(w) != have.get(w)}
    return {d for d in days if _mondays([d])[0] in bad}


def _parent_weeks(parent: Rollup, db: str, days: Iterable[date]) -> str:
    return (
        f"SELECT * FROM `{db}`.`{parent.table}` "
        f"WHERE toMonday(toDate(`{parent.time_column}`)) IN {_days_sql(_mondays(days))}"
    )


def _weekly(rollup: Rollup) -> list[tuple[Rollup, Rollup]]:
    """(weekly child, its parent) pairs under ``rollup``, parents before children."""
    found = []
    for child in rollup.children:
        if child.weekly:
            found.append((child, rollup))
        found += _weekly(child)
    return found


def _time_column_of(root: Rollup, table: str) -> str:
    if root.table == table:
        return root.time_column
    for child in root.children:
        if table in child.tables():
            return _time_column_of(child, table)
    raise KeyError(table)


#: Bot hits of the dead letters still kept that ``bot_hits`` lacks, per day, site and bot.
_MISSING_BOT_HITS = """
SELECT f.day, f.site_id, f.bot, f.n - b.h
FROM (SELECT toDate(failed_at) AS day, site_id, detail AS bot, count() AS n
      FROM failed_events WHERE reason = 'bot' GROUP BY day, site_id, bot) AS f
LEFT JOIN (SELECT day, site_id, bot, sum(hits) AS h FROM bot_hits GROUP BY day, site_id, bot) AS b
    USING (day, site_id, bot)
WHERE f.n > b.h
"""


def recount_bot_hits(client: Client) -> int:
    """Add to ``bot_hits`` the hits its materialized view missed; returns how many.

    ClickHouse commits an insert's part of ``failed_events`` and the view's part of
    ``bot_hits`` one after the other, so a worker killed in between leaves landed bot
    rejections that were never counted (and the restarted sink rightly skips them as landed).
    Run before landing starts, by the only writer: a concurrent insert between its two parts
    would look missing too and be counted twice. Days whose dead letters have partly expired
    have fewer rows than hits and are left alone.
    """
    missing = client.query(_MISSING_BOT_HITS).result_rows
    hits = sum(row[3] for row in missing)
    if missing:
        client.insert(
            "bot_hits",
            [list(row) for row in missing],
            column_names=["day", "site_id", "bot", "hits"],
        )
        log.warning("counted %d bot hit(s) that bot_hits had missed (a crash mid-insert)", hits)
    return hits


def days_of_ms(stamps: Iterable[int]) -> list[date]:
    """UTC days of epoch-millisecond timestamps."""
    epoch = date(1970, 1, 1)
    return [epoch + timedelta(days=d) for d in sorted({int(ms) // 86_400_000 for ms in stamps})]


class InflightJournal:
    """A small file naming the days of the insert in flight into one table (none: empty).

    Written before an insert starts and removed after it succeeded, so after a crash it names
    exactly the days whose rollups may have got part of an insert. A process kill leaves the
    file in the page cache, which is all a SIGKILL needs (no fsync)."""

    def __init__(self, path: Path, table: str, time_column: str) -> None:
        self.path, self.table, self.time_column = path, table, time_column
        self.unchecked = False  # a check failed: the file holds days still to check

    def begin(self, days: list[date]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        earlier = self.pending()  # days an earlier check did not finish: check them too
        self.unchecked = self.unchecked or bool(earlier)
        pending = set(earlier) | set(days)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps(sorted(d.isoformat() for d in pending)))
        os.replace(tmp, self.path)

    def pending(self) -> list[date]:
        try:
            return [date.fromisoformat(d) for d in orjson.loads(self.path.read_bytes())]
        except FileNotFoundError:
            return []

    def finish(self, client: Client, check: bool) -> None:
        """The insert succeeded: forget its days, after checking them if ``check`` (or if
        an earlier check failed). A check that fails keeps the days for the next one."""
        if not (check or self.unchecked):
            self.path.unlink(missing_ok=True)
            return
        try:
            self.repair(client)
        except Exception as exc:  # the warehouse is flaky again: check at the next insert
            self.unchecked = True
            log.warning(
                "checking the rollups of %s failed (%s); trying again after the next insert",
                self.table,
                type(exc).__name__,
            )

    def repair(self, client: Client) -> dict[str, list[date]]:
        """Repair the days named (if any), then forget them."""
        days = self.pending()
        if days:
            log.warning(
                "an insert into %s was interrupted (%s): checking the rollups of %s",
                self.table,
                "failed attempt" if self.unchecked else "crash or failure",
                ", ".join(d.isoformat() for d in days),
            )
        repaired = repair_days(client, self.table, self.time_column, days) if days else {}
        self.path.unlink(missing_ok=True)
        self.unchecked = False
        return repaired
