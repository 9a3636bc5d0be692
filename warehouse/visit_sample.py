"""Which visits a per-visit figure of a busy range reads: a sample of whole visits.

Responsible for the one sampling rule of entry/exit pages (``reports``), goals (``goals``)
and funnels (``product``) without filters: how large a share of the range's visits to read,
and the predicate that keeps those visits, the same on ``sessions`` and on ``events``.
"""

from __future__ import annotations

from clickhouse_connect.driver.client import Client

# Per-visit figures of the unfiltered view (entry/exit pages, the visits of goals and
# funnels, the funnel's steps) group every visit of the range: 0.6-0.9 s for 1.6M visits on a
# quiet 2-core machine. Above 2 x SAMPLE_VISITS visits (session rows of the range's days) they
# are estimated from a sample of whole visits, the visits whose session hash falls below a cut
# (`sampled_visits`): the same rule on `sessions` (ordered by that hash within a day, so only
# the sampled granules are read) and on `events`, so a sampled visit has all its rows in both.
# Counts are divided by the share and the answer names the share (`"sampled": 0.1`); with at
# least SAMPLE_VISITS visits in the sample a count's relative error is below ~0.6% (2 sigma).
SAMPLE_VISITS = 100_000
SAMPLE_SHARES = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5)
SAMPLED = "cityHash64(session_id) < {cut:UInt64}"

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
