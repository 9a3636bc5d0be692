"""Goals: a named custom event or a page-path pattern, and the visits that reached it.

A goal is written ``event:<name>`` (a custom event, ``mayak('event', name, props)``) or
``page:<pattern>`` (a pageview whose path matches; ``*`` matches any run of characters,
e.g. ``page:/services/*``). For each goal: *conversions* = web visits with at least one
matching event, *visitors* = distinct visitors among them, *completions* = matching events,
*conversion_rate* = conversions / web visits of the range. Counts are exact (``uniqExact``
over raw events): a conversion rate is a figure people act on. Except on a busy range without
filters, where grouping every visit of the range is the cost: there the visits and the
conversions are estimated from a sample of whole visits (``visit_sample``), visitors by
``uniqCombined``, completions stay exact, and ``sampled`` names the share (None when exact).
Names and patterns travel as bound parameters; the SQL comes only from the templates here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from clickhouse_connect.driver.client import Client

from mayak.settings import REPORT_TIMEZONE
from warehouse import reports, visit_sample
from warehouse.metrics import WEB
from warehouse.query import filter_sql
from warehouse.question import Query, QueryError, utc_bounds

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


def _figures(share: float) -> tuple[str, str, str]:
    """Conversions, visitors, completions of the events a condition keeps (``COND``). On a
    sample (``share`` < 1): conversions of the sampled visits (to be scaled up) and visitors
    as a ``uniqCombined`` estimate (a visitor's visits may be in and out of the sample)."""
    if share < 1:
        return (
            f"uniqExactIf(session_id, COND AND {visit_sample.SAMPLED})",
            "uniqCombinedIf(visitor_id, COND)",
            "countIf(COND)",
        )
    return "uniqExactIf(session_id, COND)", "uniqExactIf(visitor_id, COND)", "countIf(COND)"


def _named(client: Client, where: str, params: dict, goals: list[Goal], figures: tuple) -> list:
    """The figures of the named goals, in their order: one pass over the events that reach
    one of them (the figures count nothing else)."""
    select, conditions = [], []
    for i, goal in enumerate(goals):
        params[f"g{i}"] = goal.value()
        condition = _KINDS[goal.kind].format(i=i)
        conditions.append(f"({condition})")
        select += [f.replace("COND", f"({condition})") for f in figures]
    sql = (
        f"SELECT {', '.join(select)} FROM events WHERE {where} AND session_id != '' "
        f"AND ({' OR '.join(conditions)})"
    )
    row = client.query(sql, parameters=params).result_rows[0]
    return [tuple(row[3 * i : 3 + 3 * i]) for i in range(len(goals))]


def _most_completed(client: Client, where: str, params: dict, figures: tuple) -> dict:
    """The ``DEFAULT_GOALS`` most completed custom events of the range (ranked by every such
    event, named ones only) with their figures, keyed by name, in rank order: one pass."""
    visit = "session_id != ''"
    sql = (
        f"SELECT event_name, {', '.join(f.replace('COND', visit) for f in figures)} FROM events "
        f"WHERE {where} AND event_type = 'custom' AND event_name != '' "
        f"GROUP BY event_name ORDER BY count() DESC, event_name LIMIT {DEFAULT_GOALS}"
    )
    rows = client.query(sql, parameters=params).result_rows
    return {name: (c, v, n) for name, c, v, n in rows}


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
    days = reports._session_days(query)
    share = 1.0 if filters else visit_sample.sampled_visits(client, days)
    if share < 1:
        visits = reports.visits_of_sample(client, days, share)
        params["cut"] = visit_sample.cut(share)
    else:
        visits = web_visits(client, where, params)
    figures = _figures(share)
    if goals:
        row = _named(client, where, params, goals, figures)
    else:
        found = _most_completed(client, where, params, figures)
        goals, row = [Goal("event", name) for name in found], list(found.values())
    if share < 1:
        row = [(round(c / share), v, n) for c, v, n in row]
    rows = []
    for i, goal in enumerate(goals):
        converted, visitors, completions = row[i]
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
        "sampled": share if share < 1 else None,
        "goals": rows,
    }
