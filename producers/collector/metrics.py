"""Collector counters, exposed in the Prometheus text format at ``GET /metrics``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable


class Metrics:
    """Accepted events and refusals by reason; gauges are read live through callables."""

    def __init__(self) -> None:
        self.accepted = 0
        self.refused: Counter[str] = Counter()
        self.gauges: dict[str, Callable[[], float]] = {}

    def refuse(self, reason: str, n: int = 1) -> None:
        self.refused[reason] += n

    def render(self) -> str:
        lines = [
            "# TYPE mayak_collector_accepted_events_total counter",
            f"mayak_collector_accepted_events_total {self.accepted}",
            "# TYPE mayak_collector_refused_total counter",
        ]
        lines += [
            f'mayak_collector_refused_total{{reason="{r}"}} {n}'
            for r, n in sorted(self.refused.items())
        ]
        for name, read in sorted(self.gauges.items()):
            lines += [f"# TYPE mayak_collector_{name} gauge", f"mayak_collector_{name} {read()}"]
        return "\n".join(lines) + "\n"
