"""Which visits a per-visit figure of a busy range reads: a sample of whole visits.

Responsible for the one sampling rule of the summary's bounce rate and visit duration and of
entry/exit pages (``reports``), goals (``goals``) and funnels (``product``) without filters:
how large a share of the range's visits to read, and the predicate that keeps those visits,
the same on ``sessions`` and on ``events``; and for the SQL of the per-visit reads of
``sessions`` (``per_session``), with or without that predicate.
"""

from __future__ import annotations

from clickhouse_connect.driver.client import Client

from warehouse.metrics import BOUNCE, VISIT

# Per-visit figures of the unfiltered view (the summary's bounce rate and visit duration,
# entry/exit pages, the visits of goals and funnels, the funnel's steps) group every visit of
# the range: 0.6-0.9 s for 1.6M visits on a quiet 2-core machine. Above 2 x SAMPLE_VISITS
# visits (session rows of the range's days) they are estimated from a sample of whole visits,
# the visits whose session hash falls below a cut (`sampled_visits`): the same rule on
# `sessions` (ordered by that hash within a day, so only the sampled granules are read) and on
# `events`, so a sampled visit has all its rows in both. Counts are divided by the share and
# the answer names the share (`"sampled": 0.1`); with at least SAMPLE_VISITS visits in the
# sample a count's relative error is below ~0.6% and a rate's error below ~0.3 points (2
# sigma). A filtered view reads only its own visits and is never sampled.
SAMPLE_VISITS = 100_000
SAMPLE_SHARES = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5)
#: the hash a visit is sampled by; `events` also stores it (session_hash, migration 0019)
SESSION_HASH = "cityHash64(session_id)"


def sampled_by(hash_column: str) -> str:
    """The sampling predicate over ``hash_column``, a column holding ``SESSION_HASH``."""
    return f"{hash_column} < {{cut:UInt64}}"


SAMPLED = sampled_by(SESSION_HASH)

_SESSION_ROWS = """
SELECT count() FROM sessions
WHERE site_id = {site:String} AND day >= {from:Date} AND day <= {to:Date}
"""


def sampled_visits(client: Client, params: dict) -> float:
    """The share of visits to read for per-visit figures without a filter: 1 (every visit)
    when the range's days hold fewer than 2 x ``SAMPLE_VISITS`` session rows, else the
    smallest of ``SAMPLE_SHARES`` that keeps at least ``SAMPLE_VISITS`` of them.
    ``params``: those of ``reports._session_days``."""
    ((rows,),) = client.query(_SESSION_ROWS, parameters=params).result_rows
    return next((s for s in SAMPLE_SHARES if rows * s >= SAMPLE_VISITS), 1.0)


def cut(share: float) -> int:
    """The session-hash bound of a sample: visits with ``cityHash64(session_id)`` below it."""
    return min(int(share * 2**64), 2**64 - 1)


SITE = "site_id = {site:String}"


def per_session(extra: str = "", sample: str | None = None, where: str = SITE) -> str:
    """SQL of one row per session that started in the range (a session crossing midnight UTC
    has a row per day; the UTC days of a local range hold sessions of the hours around it too):
    its pageviews, web events and interactions, and the ``extra`` columns (each ``, expr AS
    name``). ``sample``: a predicate keeping whole visits (``visit_sample.SAMPLED``) or None
    for every visit; ``where``: the conditions on a session row (the site, and filters)."""
    sampled = f" AND {sample}" if sample else ""
    return f"""
    SELECT session_id, sum(pageviews) AS pageviews, sum(web_events) AS web_events,
           sum(interactions) AS interactions{extra}
    FROM sessions
    WHERE {where} AND day >= {{from:Date}} AND day <= {{to:Date}}{sampled}
    GROUP BY session_id
    HAVING min(started) >= {{start:DateTime64(3, 'UTC')}}
       AND min(started) < {{end:DateTime64(3, 'UTC')}}
"""


def visits_sql(sample: str | None = None, where: str = SITE) -> str:
    """Web visits, bounces and the mean engaged seconds of a visit (``per_session``'s args)."""
    inner = per_session(", sum(engaged_ms) AS engaged_ms", sample, where)
    return f"""
SELECT countIf({VISIT}) AS visits,
       countIf({BOUNCE}) AS bounces,
       avgIf(engaged_ms / 1000, {VISIT}) AS avg_seconds
FROM ({inner})
"""


def pages_sql(sample: str | None = None, where: str = SITE) -> str:
    """Entry and exit pages: the first and the last pageview of each visit, both kinds from one
    pass over the sessions of the range (grouping them per session is most of the work)."""
    inner = per_session(
        ", argMinMerge(entry_path) AS entry, argMaxMerge(exit_path) AS exit", sample, where
    )
    # one grouping per kind over the same rows (cheaper than an ARRAY JOIN doubling them)
    return f"""
SELECT if(grouping(entry) = 0, 'entry_pages', 'exit_pages') AS kind,
       if(kind = 'entry_pages', entry, exit) AS page,
       count() AS visits, countIf({BOUNCE}) AS bounces
FROM ({inner})
WHERE {VISIT}
GROUP BY GROUPING SETS ((entry), (exit))
HAVING page != ''
ORDER BY kind, visits DESC, page LIMIT {{limit:UInt32}} BY kind
"""


def sample_of(share: float) -> str | None:
    """The sample predicate of a read of ``share`` of the visits (None: every visit)."""
    return SAMPLED if share < 1 else None
