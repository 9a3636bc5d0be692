"""Two lanes for ``pytest -n 2`` (pytest-xdist): the broker outages of minutes in one worker
process, every other test in the other, in collection order.

The outage modules (the 5-minute collector outage with its 10 s and 60 s siblings, the
2-minute worker outage) spend about ten minutes mostly waiting for a stopped broker, at a
load of about 100 events/s: run beside the rest they cost the suite almost nothing, where in
one process they were a quarter of its time. Whole modules go to the outage lane, so a
module's own broker fixture starts once. Every other test stays in one process, in the order
it always ran: no two of them ever compete with each other, and those that measure time see
at most the light outage load beside them. Without ``-n``, nothing changes.

xdist's own ``--dist loadgroup`` would do this from ``xdist_group`` marks, but with pytest 9.2
it silently stops grouping (pytest-dev/pytest-xdist#1386): this scheduler names the lanes by
module path instead, and ``check_lanes`` fails the run if a ``long_outage`` test is ever
written outside ``OUTAGE_MODULES``.
"""

from __future__ import annotations

from typing import Any

import pytest
from xdist.scheduler import LoadScopeScheduling

OUTAGE_MODULES = frozenset(
    {
        "tests/producers/test_collector_outage.py",
        "tests/stream_jobs/test_sj_broker_outage.py",
    }
)
OUTAGES, MAIN = "outages", "main"


def lane_of(nodeid: str) -> str:
    """The lane of one test, from its node id (``path::name``)."""
    return OUTAGES if nodeid.split("::", 1)[0] in OUTAGE_MODULES else MAIN


class LaneScheduling(LoadScopeScheduling):
    """xdist's per-scope scheduling with two scopes: the outage lane and the main lane."""

    def _split_scope(self, nodeid: str) -> str:
        return lane_of(nodeid)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> LaneScheduling | None:
    """The lanes for ``-n N`` (xdist's default ``--dist load``); any other ``--dist`` asked
    for on the command line gets xdist's own scheduler (None: the next hook decides)."""
    return LaneScheduling(config, log) if config.getvalue("dist") == "load" else None


def check_lanes(items: list[pytest.Item]) -> None:
    """Refuse a ``long_outage`` test outside the outage lane (it would slow the main lane by
    minutes without anyone noticing)."""
    stray = [
        item.nodeid
        for item in items
        if item.get_closest_marker("long_outage") and lane_of(item.nodeid) != OUTAGES
    ]
    if stray:
        raise pytest.UsageError(
            f"{', '.join(stray)} are long_outage tests outside the outage lane: add their "
            "module to OUTAGE_MODULES in tests/lanes.py"
        )
