"""A question the read path answers: ``Query`` (a site, a date range, metrics, dimensions and
equality filters, all by whitelisted names, checked when it is made), the names it may use,
its ``Result``, and the UTC bounds of its local dates. How a question becomes SQL is
``warehouse.query``'s job.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from mayak.settings import REPORT_TIMEZONE
from warehouse import details
from warehouse.metrics import METRICS

# Metric definitions (what each number counts, web-only or not) live in warehouse/metrics.py;
# event details (issue 12: section dwell) in warehouse/details.py
METRICS = {**METRICS, **details.METRICS}

# dimension -> expression over raw events; each is also a `dimension` of agg_dim_hourly
DIMENSIONS: dict[str, str] = {
    "event_type": "toString(event_type)",
    "path": "path",
    "referrer_domain": "toString(referrer_domain)",
    "utm_source": "toString(utm_source)",
    "utm_medium": "toString(utm_medium)",
    "utm_campaign": "toString(utm_campaign)",
    "country": "toString(country)",
    "isp": "toString(isp)",
    "device_type": "toString(device_type)",
    "device_brand": "toString(device_brand)",
    "browser": "toString(browser)",
    "browser_version": "concat(toString(browser), ' ', toString(browser_major))",
    "os": "toString(os)",
    "os_version": "concat(toString(os), ' ', toString(os_major))",
    "service_type": "toString(service_type)",
    "campaign_id": "toString(campaign_id)",
    # issue 13 (migration 0013): traffic channel and source of the visit, e-mail open class
    "channel": "toString(channel)",
    "source": "toString(source)",
    "open_class": "toString(open_class)",
}

# time bucket -> template over the table's time column, in the report time zone
TIME_BUCKETS: dict[str, str] = {
    "hour": "toStartOfHour({t}, {{tz:String}})",
    "day": "toDate({t}, {{tz:String}})",
    "hour_of_day": "toHour({t}, {{tz:String}})",
    "weekday": "toDayOfWeek({t}, 0, {{tz:String}})",
}

# the one pair of time buckets a question may combine: the hour-of-day x weekday heat map
HEATMAP = frozenset({"weekday", "hour_of_day"})

MAX_LIMIT = 1000
MAX_DAYS = 5 * 366
# dates a question may name: before the first event, and well inside ClickHouse's DateTime
# (which ends in 2106 and silently wraps past it)
DATE_MIN = date(2020, 1, 1)
DATE_MAX = date(2100, 12, 31)


class QueryError(ValueError):
    """A question the read path refuses (unknown name, bad range...); safe to show the caller."""


@dataclass(frozen=True)
class Query:
    """One aggregate question. ``date_to`` is inclusive; dates are in the report time zone."""

    site: str
    metrics: tuple[str, ...]
    date_from: date
    date_to: date
    dimensions: tuple[str, ...] = ()
    filters: tuple[tuple[str, str], ...] = ()
    limit: int = 100
    tz: str = REPORT_TIMEZONE

    def __post_init__(self) -> None:
        _check_names("metric", self.metrics, METRICS)
        if not self.metrics:
            raise QueryError("ask for at least one metric")
        _check_names("dimension", self.dimensions, {**DIMENSIONS, **TIME_BUCKETS}, True)
        _check_names("filter", [f for f, _ in self.filters], DIMENSIONS, True)
        if len(self.dimensions) != len(set(self.dimensions)):
            raise QueryError("a dimension may appear once")
        buckets = {d for d in self.dimensions if d in TIME_BUCKETS}
        if (len(buckets) > 1 and buckets != HEATMAP) or len(self.dimensions) > 3:
            raise QueryError(
                "at most one time bucket (or weekday,hour_of_day: a heat map) "
                "and two other dimensions"
            )
        if not self.site:
            raise QueryError("a site is required")
        if self.date_from < DATE_MIN or self.date_to > DATE_MAX:
            raise QueryError(f"the date range must lie within {DATE_MIN}..{DATE_MAX}")
        if self.date_to < self.date_from or (self.date_to - self.date_from).days > MAX_DAYS:
            raise QueryError(f"the date range must be ordered and at most {MAX_DAYS} days")
        if not 1 <= self.limit <= MAX_LIMIT:
            raise QueryError(f"limit must be between 1 and {MAX_LIMIT}")
        try:
            ZoneInfo(self.tz)
        except Exception as exc:
            raise QueryError(f"unknown time zone {self.tz!r}") from exc

    @property
    def plain_dimensions(self) -> tuple[str, ...]:
        """The dimensions other than the time bucket."""
        return tuple(d for d in self.dimensions if d not in TIME_BUCKETS)

    @property
    def reads_details(self) -> bool:
        """Whether the question needs the event details (``warehouse.details``)."""
        names = [*self.dimensions, *(f for f, _ in self.filters)]
        return any(details.is_dimension(n) for n in names) or any(
            m in details.METRICS for m in self.metrics
        )

    def describe(self) -> dict:
        """The question as plain data (what the audit log records)."""
        return {
            "site": self.site,
            "metrics": list(self.metrics),
            "from": str(self.date_from),
            "to": str(self.date_to),
            "dimensions": list(self.dimensions),
            "filters": dict(self.filters),
            "limit": self.limit,
            "tz": self.tz,
        }


def _check_names(
    kind: str, names: Iterable[str], allowed: dict, with_details: bool = False
) -> None:
    unknown = [
        n for n in names if n not in allowed and not (with_details and details.is_dimension(n))
    ]
    if unknown:
        listed = sorted(allowed) + (
            sorted([*details.DIMENSIONS, details.PROP_HINT]) if with_details else []
        )
        raise QueryError(f"unknown {kind} {unknown[0]!r}; allowed: {', '.join(listed)}")


@dataclass
class Result:
    columns: list[str]
    rows: list[list] = field(default_factory=list)
    source: str = ""

    @property
    def cells(self) -> int:
        return len(self.columns) * len(self.rows)

    def records(self) -> list[dict]:
        return [dict(zip(self.columns, row)) for row in self.rows]


def utc_bounds(query: Query) -> tuple[datetime, datetime]:
    """[start, end) in UTC for the query's local dates."""
    return local_days_in_utc(query.date_from, query.date_to, query.tz)


def local_days_in_utc(date_from: date, date_to: date, tz: str) -> tuple[datetime, datetime]:
    """[start, end) in UTC (naive datetimes) of the local dates ``date_from``..``date_to``."""
    zone = ZoneInfo(tz)
    start = datetime.combine(date_from, time(), zone).astimezone(UTC)
    end = datetime.combine(date_to + timedelta(days=1), time(), zone).astimezone(UTC)
    return start.replace(tzinfo=None), end.replace(tzinfo=None)
