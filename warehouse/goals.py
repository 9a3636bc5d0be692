"""Goals: a named custom event or a page-path pattern, and the visits that reached it.

A goal is written ``event:<name>`` (a custom event, ``mayak('event', name, props)``) or
``page:<pattern>`` (a pageview whose path matches; ``*`` matches any run of characters,
e.g. ``page:/services/*``). For each goal: *conversions* = web visits with at least one
matching event, *visitors* = distinct visitors among them, *completions* = matching events,
*conversion_rate* = conversions / web visits of the range. Counts are exact (``uniqExact``
over raw events): a conversion rate is a figure people act on. Names and patterns travel as
bound parameters; the SQL comes only from the templates here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from clickhouse_connect.driver.client import Client

from mayak.settings import REPORT_TIMEZONE
from warehouse.metrics import WEB
from warehouse.query import Query, QueryError, filter_sql, utc_bounds

MAX_GOALS = 10
MAX_LENGTH = 200
DEFAULT_GOALS = 20  # with no goal named: the most completed custom events of the range

_KINDS = {
    "event": "event_type = 'custom' AND event_name = {{g{i}:String}}",
    "page": "event_type = 'pageview' AND path LIKE {{g{i}:String}}",
}

_RANGE = (
    "site_id = {site:String} AND ts >= {start:DateTime64(3, 'UTC')} "
    "AND ts < {end:DateTime64(3, 'UTC')}"
)

_EVENT_NAMES = f"""
SELECT event_name FROM events
WHERE {_RANGE} AND event_type = 'custom' AND event_name != ''
GROUP BY event_name ORDER BY count() DESC, event_name LIMIT {DEFAULT_GOALS}
"""


def web_visits(client: Client, where: str, params: dict) -> int:
    """The web visits (distinct sessions with a web event) of the events ``where`` keeps:
    the denominator of conversion rates and funnels, the costly part (every session id)."""
    sql = f"SELECT uniqExact(session_id) FROM events WHERE {where} AND {WEB} AND session_id != ''"
    return int(client.query(sql, parameters=params).result_rows[0][0])


@dataclass(frozen=True)
class Goal:
    """One goal as the caller wrote it, e.g. ``event:signup`` or ``page:/services/*``."""

    kind: str
    target: str

    @classmethod
    def parse(cls, text: str) -> Goal:
        kind, sep, target = text.partition(":")
        if not sep or kind not in _KINDS or not target:
            raise QueryError(f"goal {text!r} must look like event:<name> or page:<pattern>")
        if len(target) > MAX_LENGTH:
            raise QueryError(f"goal {text[:40]!r}... is longer than {MAX_LENGTH} characters")
        if kind == "page" and not target.startswith("/"):
            raise QueryError(f"goal {text!r}: a page pattern starts with '/'")
        return cls(kind, target)

    def __str__(self) -> str:
        return f"{self.kind}:{self.target}"

    def value(self) -> str:
        """The bound value: the event name, or the pattern as a LIKE pattern."""
        if self.kind == "event":
            return self.target
        escaped = self.target.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return escaped.replace("*", "%")


def parse_goals(texts: list[str]) -> list[Goal]:
    if len(texts) > MAX_GOALS:
        raise QueryError(f"at most {MAX_GOALS} goals per question")
    goals = [Goal.parse(t) for t in texts]
    if len({str(g) for g in goals}) != len(goals):
        raise QueryError("a goal may appear once")
    return goals


def conversions(
    client: Client,
    site: str,
    date_from: date,
    date_to: date,
    goals: list[Goal],
    tz: str = REPORT_TIMEZONE,
    filters: tuple[tuple[str, str], ...] = (),
) -> dict:
    """Visits, and per goal conversions, visitors, completions and conversion rate. With
    ``filters`` (dimension, value): the visits as seen through them (their matching events)."""
    query = Query(
        site=site, metrics=("visits",), date_from=date_from, date_to=date_to, tz=tz, filters=filters
    )
    start, end = utc_bounds(query)
    params: dict = {"site": site, "start": start, "end": end}
    where = " AND ".join([_RANGE, *filter_sql(query, params)])
    if not goals:
        names = client.query(_EVENT_NAMES.replace(_RANGE, where), parameters=params).result_rows
        goals = [Goal("event", name) for (name,) in names]
    visits = web_visits(client, where, params)
    select, conditions = [], []
    for i, goal in enumerate(goals):
        params[f"g{i}"] = goal.value()
        condition = _KINDS[goal.kind].format(i=i)
        conditions.append(f"({condition})")
        select += [
            f"uniqExactIf(session_id, {condition})",
            f"uniqExactIf(visitor_id, {condition})",
            f"countIf({condition})",
        ]
    row: Sequence = ()
    if goals:  # only the events that reach a goal: the figures count nothing else
        sql = (
            f"SELECT {', '.join(select)} FROM events WHERE {where} AND session_id != '' "
            f"AND ({' OR '.join(conditions)})"
        )
        row = client.query(sql, parameters=params).result_rows[0]
    rows = []
    for i, goal in enumerate(goals):
        converted, visitors, completions = row[3 * i : 3 + 3 * i]
        rows.append(
            {
                "goal": str(goal),
                "conversions": converted,
                "visitors": visitors,
                "completions": completions,
                "conversion_rate": round(converted / visits, 4) if visits else None,
            }
        )
    return {
        "site": site,
        "from": str(date_from),
        "to": str(date_to),
        "visits": visits,
        "goals": rows,
    }
