"""Lands Kafka records in ClickHouse exactly once.

Every row keeps its ``(kafka_partition, kafka_offset)``. The lander remembers the next offset
it expects per partition; when a batch does not start there (first batch after start-up or
rebalance, or a redelivery after a crash), it asks ClickHouse which offsets from that point
on are already landed and skips them, offset by offset (a crashed insert may have landed
part of a batch). For ``events`` it also drops event ids already landed (duplicates made
upstream: the processing agent re-sending after a crash, a retried beacon).

Inserts are retried until they succeed, because Faust acks the batch as soon as we return.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any

log = logging.getLogger("mayak.stream_jobs.sink")

Record = tuple[int, int, dict[str, Any]]  # (partition, offset, value)


def _ms_to_dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


def event_row(value: dict[str, Any]) -> dict[str, Any]:
    return {**value, "ts": _ms_to_dt(int(value["ts"]))}


def failed_row(value: dict[str, Any]) -> dict[str, Any]:
    import orjson

    event = value.get("event") or {}
    return {"failed_at": _ms_to_dt(int(value["failed_at"])), "reason": value["reason"],
            "step": value["step"], "detail": value.get("detail", ""),
            "site_id": str(event.get("site") or "")[:64],
            "event_id": str(event.get("id") or "")[:64],
            "payload": orjson.dumps(event).decode()}


class Lander:
    """Inserts one topic's records into one table, skipping what the table already holds."""

    def __init__(self, client, table: str, to_row: Callable[[dict[str, Any]], dict[str, Any]],
                 dedup_event_ids: bool = False, retry_seconds: float = 2.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.client = client
        self.table = table
        self.to_row = to_row
        self.dedup_event_ids = dedup_event_ids
        self.retry_seconds = retry_seconds
        self.sleep = sleep
        self.columns = [row[0] for row in client.query(f"DESCRIBE TABLE {table}").result_rows]
        self.expected: dict[int, int] = {}
        self.landed: dict[int, set[int]] = {}
        self.counters = {"landed": 0, "skipped_offsets": 0, "skipped_duplicates": 0}

    def reset(self) -> None:
        """Forget expectations (call on rebalance: another worker may have landed rows)."""
        self.expected.clear()
        self.landed.clear()

    def land(self, records: Sequence[Record]) -> int:
        """Insert what is new in ``records``; return the number of rows inserted."""
        fresh = self._new_offsets(records)
        if self.dedup_event_ids:
            fresh = self._new_event_ids(fresh)
        rows = [self.to_row(v) | {"kafka_partition": p, "kafka_offset": o} for p, o, v in fresh]
        if rows:
            present = set().union(*rows)
            columns = [c for c in self.columns if c in present]  # the table's defaults for the rest
            self._insert([[row.get(c, _DEFAULTS.get(c, "")) for c in columns] for row in rows],
                         columns)
        for partition, offset, _ in records:
            self.expected[partition] = max(self.expected.get(partition, 0), offset + 1)
        self.counters["landed"] += len(rows)
        return len(rows)

    def _new_offsets(self, records: Sequence[Record]) -> list[Record]:
        by_partition: dict[int, list[Record]] = defaultdict(list)
        for record in records:
            by_partition[record[0]].append(record)
        fresh: list[Record] = []
        for partition, recs in by_partition.items():
            lo = min(o for _, o, _ in recs)
            if self.expected.get(partition) != lo:
                self.landed[partition] = self._landed_offsets(partition, lo)
            landed = self.landed.get(partition) or set()
            keep = [r for r in recs if r[1] not in landed]
            self.counters["skipped_offsets"] += len(recs) - len(keep)
            fresh.extend(keep)
            if landed and max(o for _, o, _ in recs) >= max(landed):
                self.landed.pop(partition, None)  # past the landed range: nothing left to skip
        return fresh

    def _landed_offsets(self, partition: int, lo: int) -> set[int]:
        result = self.client.query(
            f"SELECT kafka_offset FROM {self.table} "
            "WHERE kafka_partition = {p:UInt16} AND kafka_offset >= {lo:UInt64}",
            parameters={"p": partition, "lo": lo})
        return {row[0] for row in result.result_rows}

    def _new_event_ids(self, records: list[Record]) -> list[Record]:
        unique: dict[str, Record] = {}
        for record in records:
            unique.setdefault(str(record[2]["event_id"]), record)
        if not unique:
            return []
        values = [r[2] for r in unique.values()]
        result = self.client.query(
            f"SELECT toString(event_id) FROM {self.table} "
            "WHERE site_id IN {sites:Array(String)} "
            "AND ts BETWEEN fromUnixTimestamp64Milli({lo:Int64}, 'UTC') "
            "AND fromUnixTimestamp64Milli({hi:Int64}, 'UTC') "
            "AND event_id IN {ids:Array(UUID)}",
            parameters={"sites": sorted({v["site_id"] for v in values}),
                        "lo": min(int(v["ts"]) for v in values),
                        "hi": max(int(v["ts"]) for v in values),
                        "ids": list(unique)})
        seen = {row[0] for row in result.result_rows}
        fresh = [r for key, r in unique.items() if key not in seen]
        self.counters["skipped_duplicates"] += len(records) - len(fresh)
        return fresh

    def _insert(self, rows: list[list[Any]], columns: list[str]) -> None:
        while True:
            try:
                self.client.insert(self.table, rows, column_names=columns)
                return
            except Exception as exc:  # a broken warehouse must not lose the acked batch
                log.warning("insert into %s failed (%s); retrying in %.0fs", self.table,
                            type(exc).__name__, self.retry_seconds)
                self.sleep(self.retry_seconds)


_DEFAULTS: dict[str, Any] = {"asn": 0, "engaged_ms": 0, "scroll_pct": 0, "is_bot": 0}
