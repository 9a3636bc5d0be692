"""What every benchmark shares: the figures, their targets, peak-memory sampling, the table."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import psutil
from rich.table import Table

KEYS = (
    "collector_eps",
    "collector_ratio",
    "collector_p99_ms",
    "pipeline_eps",
    "pipeline_ratio",
    "pipeline_framed_eps",
    "enrich_us",
    "freshness_p95_ms",
    "dashboard_p95_ms",
    "product_p95_ms",
    "tracker_gzip_bytes",
    "worker_peak_mb",
    "collector_peak_mb",
    "cpu_us_per_event",
    "stack_idle_mb",
    "stack_peak_mb",
)


@dataclass(frozen=True)
class Target:
    """A limit a figure must meet: ``at_least`` or at most ``limit``."""

    limit: float
    at_least: bool

    def met(self, value: float | None) -> bool | None:
        if value is None:
            return None
        return value >= self.limit if self.at_least else value <= self.limit

    def describe(self) -> str:
        return f"{'>=' if self.at_least else '<='} {self.limit:g}"


TARGETS = {
    "collector_eps": Target(5000, True),
    "collector_ratio": Target(0.5, True),
    "collector_p99_ms": Target(10, False),
    "pipeline_eps": Target(5000, True),
    "pipeline_ratio": Target(0.5, True),
    "enrich_us": Target(50, False),
    "freshness_p95_ms": Target(2000, False),
    "dashboard_p95_ms": Target(300, False),
    "product_p95_ms": Target(300, False),  # the slowest call of the product page
    "tracker_gzip_bytes": Target(1500, False),
    # issue 17: the whole stack's CPU per landed event, its memory idle, one worker on frames
    "cpu_us_per_event": Target(120, False),
    "stack_idle_mb": Target(500, False),
    "pipeline_framed_eps": Target(20_000, True),
}


class PeakMemory:
    """Samples the resident memory of a process and its children in a thread; keeps the peak."""

    def __init__(self, pid: int, every: float = 0.1) -> None:
        self._proc = psutil.Process(pid)
        self._every = every
        self._stop = threading.Event()
        self.peak_bytes = 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                tree = [self._proc, *self._proc.children(recursive=True)]
                rss = sum(p.memory_info().rss for p in tree)
            except psutil.Error:
                return
            self.peak_bytes = max(self.peak_bytes, rss)
            self._stop.wait(self._every)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak_mb

    @property
    def peak_mb(self) -> float:
        return round(self.peak_bytes / 2**20, 1)


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (no interpolation), of a non-empty list."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def results_table(results: dict, details: dict[str, str], keys: tuple[str, ...] = KEYS) -> Table:
    table = Table(title="Mayak benchmark")
    for column in ("figure", "value", "target", "met", "measured against"):
        table.add_column(column)
    for key in keys:
        value = results.get(key)
        target = TARGETS.get(key)
        met = target.met(value) if target else None
        table.add_row(
            key,
            "n/a" if value is None else f"{value:g}",
            target.describe() if target else "-",
            {True: "[green]yes[/]", False: "[red]NO[/]", None: "-"}[met],
            details.get(key, ""),
        )
    return table


Step = Callable[[dict, dict], None]
