"""Faust's monitor without its per-message statistics.

Faust's default ``Monitor`` records, for every message and every stream event, counters,
timestamps and per-stream and per-task lookups (``on_message_in``, ``on_stream_event_in``,
``on_stream_event_out``, ``on_message_out``): four calls per ``mayak.raw`` message, about 2%
of the stream worker's event loop in py-spy. Mayak reads none of them (it serves no Faust
``/stats`` page; lag is read from Kafka). What Faust itself relies on (end offsets, commits,
rebalances) is kept.
"""

from __future__ import annotations

from typing import Any

from faust.sensors import Monitor


class QuietMonitor(Monitor):
    def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
        pass

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> None:
        return None

    def on_stream_event_out(
        self, tp: Any, offset: int, stream: Any, event: Any, state: Any = None
    ) -> None:
        pass

    def on_message_out(self, tp: Any, offset: int, message: Any) -> None:
        pass
