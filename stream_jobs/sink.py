"""Lands Kafka records in ClickHouse exactly once.

Every row keeps its ``(kafka_partition, kafka_offset)``. The lander remembers the next offset
it expects per partition; when a batch does not start there (first batch after start-up or
rebalance, or a redelivery after a crash), it asks ClickHouse which offsets from that point
on are already landed and skips them, offset by offset (a crashed insert may have landed
part of a batch). For ``events`` it also drops event ids already landed (duplicates made
upstream: the processing agent re-sending after a crash, a retried beacon).

Positions need not be plain offsets: with ``index_bits`` > 0 a record's position is
``offset << index_bits | index`` (the events of one batched ``mayak.events`` message, see
``stream_jobs.batching``), and the next expected position is the next message's index 0.

Inserts are retried until they succeed, because Faust acks the batch as soon as we return;
a retry first drops the rows a failed attempt did land. With a ``journal`` (embedded mode:
this process is the only writer) the days of each insert are written down before it starts,
and the rollups of those days are checked against a recount when an attempt failed, and at
the next start after a crash (``warehouse.repair``).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from mayak.clock import SYSTEM_CLOCK, Clock
from stream_jobs.batching import Record
from stream_jobs.flush_pace import FlushPace
from stream_jobs.poison import error_name
from stream_jobs.uncancellable import completes
from warehouse.repair import InflightJournal, days_of_ms

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

log = logging.getLogger("mayak.stream_jobs.sink")


def _seconds(ms: Any) -> float:
    """Epoch ms as JSON for a DateTime64(3) column: seconds with the milliseconds after the
    point (ClickHouse reads a JSON integer as whole seconds)."""
    return int(ms) / 1000


def event_row(value: dict[str, Any]) -> dict[str, Any]:
    """An enriched event as a new row (fields the table lacks are skipped when landed)."""
    return {**value, "ts": _seconds(value["ts"])}


def failed_row(value: dict[str, Any]) -> dict[str, Any]:
    event = value.get("event") or {}
    return {
        "failed_at": _seconds(value["failed_at"]),
        "reason": value["reason"],
        "step": value["step"],
        "detail": value.get("detail", ""),
        "site_id": str(event.get("site") or "")[:64],
        "event_id": str(event.get("id") or "")[:64],
        "payload": orjson.dumps(event).decode(),
    }


@dataclass(frozen=True)
class Dedup:
    """How to recognise a record landed before under another offset (made twice upstream)."""

    key: Callable[[dict[str, Any]], str | None]  # None: cannot be deduplicated
    query: Callable[[str, list[dict[str, Any]]], tuple[str, dict[str, Any]]]  # -> keys present


#: keys per duplicate look-up: 4,000 UUIDs make ~160 KB of SQL, under ClickHouse's default
#: ``max_query_size`` of 256 KB (a larger ``sink_batch_size`` is looked up in several queries)
DEDUP_QUERY_KEYS = 4000

_UUIDS_RE = re.compile(
    r"(?:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
    r"[0-9a-fA-F]{12},)*"
)


def _uuid_array(ids: list[str]) -> str:
    """A ClickHouse array literal of UUIDs, checked to hold nothing else (binding thousands
    of ids one by one through the driver's escaping costs more than the query)."""
    joined = ",".join(ids)
    if not _UUIDS_RE.fullmatch(joined + ","):
        raise ValueError("event ids must be UUIDs")
    return "['" + joined.replace(",", "','") + "']" if ids else "[]"


def _event_ids_query(table: str, values: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    # site and ts bound the search to a few granules: a duplicate carries the same ts
    ids = _uuid_array([str(v["event_id"]) for v in values])
    return (
        f"SELECT toString(event_id) FROM {table} "
        "WHERE site_id IN {sites:Array(String)} "
        "AND ts BETWEEN fromUnixTimestamp64Milli({lo:Int64}, 'UTC') "
        "AND fromUnixTimestamp64Milli({hi:Int64}, 'UTC') "
        f"AND event_id IN {ids}",
        {
            "sites": sorted({v["site_id"] for v in values}),
            "lo": min(int(v["ts"]) for v in values),
            "hi": max(int(v["ts"]) for v in values),
        },
    )


def _failure_keys_query(table: str, values: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    # a re-sent rejection is stamped later than the first one, by minutes after a crash
    return (
        f"SELECT concat(reason, '/', event_id) FROM {table} "
        "WHERE reason IN {reasons:Array(String)} "
        "AND failed_at >= fromUnixTimestamp64Milli({lo:Int64}, 'UTC') - INTERVAL 1 DAY "
        "AND concat(reason, '/', event_id) IN {keys:Array(String)}",
        {
            "reasons": sorted({v["reason"] for v in values}),
            "lo": min(int(v["failed_at"]) for v in values),
            "keys": [_failure_key(v) for v in values],
        },
    )


def _failure_key(value: dict[str, Any]) -> str | None:
    event_id = (value.get("event") or {}).get("id")
    return f"{value['reason']}/{event_id}" if isinstance(event_id, str) and event_id else None


EVENT_IDS = Dedup(lambda v: str(v["event_id"]), _event_ids_query)
FAILURES = Dedup(_failure_key, _failure_keys_query)


# ClickHouse codes for rows it cannot take as they are (a value of the wrong type, a date it
# cannot parse...): retrying them would stall the partition for ever, unlike a warehouse
# that is down, which a retry outlasts
DATA_ERRORS = frozenset({6, 26, 27, 38, 41, 53, 69, 70, 72, 117})


class BadRows(Exception):
    """ClickHouse refused the rows themselves; nothing of the insert landed."""


def _is_data_error(exc: BaseException) -> bool:
    code = re.search(r"Code: (\d+)", str(exc))
    return code is not None and int(code.group(1)) in DATA_ERRORS


class Lander:
    """Inserts one topic's records into one table, skipping what the table already holds."""

    def __init__(
        self,
        client: Client,
        table: str,
        to_row: Callable[[dict[str, Any]], dict[str, Any]],
        dedup: Dedup | None = None,
        retry_seconds: float = 2.0,
        clock: Clock = SYSTEM_CLOCK,
        index_bits: int = 0,
        journal: InflightJournal | None = None,
    ) -> None:
        self.client = client
        self.journal = journal
        self.table = table
        self.to_row = to_row  # returns a new dict: the lander adds the row's position to it
        self.dedup = dedup
        self.retry_seconds = retry_seconds
        self.clock = clock  # its blocking sleep: land() runs in a worker thread
        self.index_bits = index_bits
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
        if self.dedup is not None:
            fresh = self._not_landed_yet(fresh)
        if fresh:
            self._insert(fresh)
        bits = self.index_bits
        for partition, offset, _ in records:
            nxt = ((offset >> bits) + 1) << bits
            if nxt > self.expected.get(partition, 0):
                self.expected[partition] = nxt
        self.counters["landed"] += len(fresh)
        return len(fresh)

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
            if len(keep) < len(recs):
                log.warning(
                    "skipped %d redelivered offset(s) of partition %d already in %s",
                    len(recs) - len(keep),
                    partition,
                    self.table,
                )
            self.counters["skipped_offsets"] += len(recs) - len(keep)
            fresh.extend(keep)
            if landed and max(o for _, o, _ in recs) >= max(landed):
                self.landed.pop(partition, None)  # past the landed range: nothing left to skip
        return fresh

    def _landed_offsets(self, partition: int, lo: int) -> set[int]:
        result = self.client.query(
            f"SELECT kafka_offset FROM {self.table} "
            "WHERE kafka_partition = {p:UInt16} AND kafka_offset >= {lo:UInt64}",
            parameters={"p": partition, "lo": lo},
        )
        return {row[0] for row in result.result_rows}

    def _not_landed_yet(self, records: list[Record]) -> list[Record]:
        assert self.dedup is not None, "called only with a dedup"
        unique: dict[str, Record] = {}
        for record in records:
            key = self.dedup.key(record[2])
            unique.setdefault(key or f"\0{record[0]}:{record[1]}", record)
        keyed = [record[2] for key, record in unique.items() if not key.startswith("\0")]
        seen: set[str] = set()
        for start in range(0, len(keyed), DEDUP_QUERY_KEYS):
            sql, parameters = self.dedup.query(self.table, keyed[start : start + DEDUP_QUERY_KEYS])
            result = self.client.query(sql, parameters=parameters)
            seen.update(row[0] for row in result.result_rows)
        fresh = [r for key, r in unique.items() if key not in seen]
        if len(fresh) < len(records):
            log.warning(
                "dropped %d duplicate(s) already in %s", len(records) - len(fresh), self.table
            )
        self.counters["skipped_duplicates"] += len(records) - len(fresh)
        return fresh

    def _insert(self, fresh: list[Record]) -> None:
        """Send the rows as JSONEachRow, parsed by ClickHouse. Building the columns and
        clickhouse-connect's LowCardinality dictionaries in Python held the GIL that the enrich
        loop needs (pipeline benchmark, 100k events: 4,852 and 5,118 events/s this way, 4,794
        and 4,905 with columns). Fields the table lacks are skipped; columns the rows lack
        get the table's defaults."""
        if self.journal is not None:
            self.journal.begin(days_of_ms(value[self.journal.time_column] for *_, value in fresh))
        failures = 0
        while True:
            try:
                self.client.raw_insert(
                    self.table,
                    None,
                    insert_block=self._block(fresh),
                    fmt="JSONEachRow",
                    settings={"input_format_skip_unknown_fields": 1},
                )
                break
            except Exception as exc:  # a broken warehouse must not lose the acked batch
                if _is_data_error(exc):
                    if self.journal is not None:
                        self.journal.finish(self.client, check=failures > 0)
                    raise BadRows(f"{error_name(exc)}: {str(exc)[:200]}") from exc
                failures += 1
                log.warning(
                    "insert into %s failed (%s); retrying in %.0fs",
                    self.table,
                    type(exc).__name__,
                    self.retry_seconds,
                )
                self.clock.sleep_blocking(self.retry_seconds)
                fresh = self._not_landed_by_a_failed_attempt(fresh)
                if not fresh:
                    break
        if self.journal is not None:
            # a failed attempt may have landed some of the views' parts only
            self.journal.finish(self.client, check=failures > 0)

    def _block(self, fresh: list[Record]) -> bytes:
        rows = []
        for partition, position, value in fresh:
            row = self.to_row(value)
            row["kafka_partition"], row["kafka_offset"] = partition, position
            rows.append(row)
        return orjson.dumps(rows)

    def _not_landed_by_a_failed_attempt(self, fresh: list[Record]) -> list[Record]:
        try:
            landed = {
                (p, o)
                for p in {r[0] for r in fresh}
                for o in self._landed_offsets(p, min(r[1] for r in fresh if r[0] == p))
            }
        except Exception:  # still down: the next attempt will tell
            return fresh
        keep = [r for r in fresh if (r[0], r[1]) not in landed]
        if len(keep) < len(fresh):
            log.warning(
                "a failed insert into %s landed %d row(s); not inserting them again",
                self.table,
                len(fresh) - len(keep),
            )
        return keep


class LandingBuffer:
    """Records of one topic waiting to be landed by ``lander``, about ``most`` rows at a time.

    ``add`` is synchronous (the agent calls it between two messages); ``flush`` lands what is
    waiting, off the event loop, one flush at a time (a pre-commit flush returns only after
    an earlier one finished). A message that does not decode into rows ``valid`` accepts
    (a corrupt or foreign message) is not landed: ``on_poison(partition, offset, error)``
    makes it a dead letter, before the flush returns, so before its offset is committed.
    """

    def __init__(
        self,
        lander: Lander,
        decode: Callable[[list], Sequence[Record]],
        most: int,
        valid: Callable[[Any], bool] = lambda value: True,
        on_poison: Callable[[int, int, str], Awaitable[Any]] | None = None,
        pace: FlushPace | None = None,
    ) -> None:
        self.lander, self.decode, self.most = lander, decode, most
        self.valid, self.on_poison = valid, on_poison
        self.pace = pace  # None: the timer lands what waits at every tick
        self.pending: list[tuple[int, int, bytes]] = []
        self.rows = 0  # rows the pending records hold
        self.lock = asyncio.Lock()

    def add(self, partition: int, offset: int, value: bytes, rows: int = 1) -> bool:
        """Hold a record of ``rows`` rows; True when ``most`` rows are waiting (flush now).
        Every insert costs ClickHouse a new part in each table its views feed: 700-row
        inserts (the events of ten messages) took a third of the worker's time."""
        self.pending.append((partition, offset, value))
        self.rows += rows
        return self.rows >= self.most

    def due(self) -> bool:
        """Whether the timer should land what waits now (``stream_jobs.flush_pace``)."""
        return bool(self.pending) and (self.pace is None or self.pace.due())

    def drop(self) -> None:
        """Forget what waits and what the lander expects (partitions revoked: another worker
        may land these partitions meanwhile, and whoever gets them reads them again)."""
        self.pending, self.rows = [], 0
        self.lander.reset()

    @completes
    async def flush(self) -> int:
        async with self.lock:
            raw, rows, self.pending, self.rows = self.pending, self.rows, [], 0
            if not raw:
                return 0
            if self.pace is not None:
                self.pace.landed(rows)
            # decoding too happens off the event loop
            landed, poison = await asyncio.to_thread(self._decode_and_land, raw)
            for partition, offset, error in poison:
                log.error(
                    "message %d of partition %d is not %s rows (%s): sent to the dead "
                    "letters, not landed",
                    offset,
                    partition,
                    self.lander.table,
                    error,
                )
                if self.on_poison is not None:
                    await self.on_poison(partition, offset, error)
            return landed

    def _decode_and_land(self, raw: list[tuple[int, int, bytes]]):
        messages: list[tuple[tuple[int, int, bytes], Sequence[Record]]] = []
        poison: list[tuple[int, int, str]] = []
        for message in raw:
            try:
                decoded = self.decode([message])
                if not all(self.valid(value) for _, _, value in decoded):
                    raise ValueError("unexpected fields")
            except Exception as exc:  # one bad message must not stop the partition
                poison.append((message[0], message[1], error_name(exc)))
                continue
            messages.append((message, decoded))
        try:
            return self.lander.land([r for _, decoded in messages for r in decoded]), poison
        except BadRows:
            pass
        # ClickHouse refused some row: land message by message, the refused ones are poison
        landed = 0
        for (partition, offset, _), decoded in messages:
            try:
                landed += self.lander.land(decoded)
            except BadRows as exc:
                poison.append((partition, offset, f"BadRows: {exc}"))
        return landed, poison


def journals(data_dir: Path) -> dict[str, InflightJournal]:
    """The in-flight journal of each landed table (its rows' time field = its time column)."""
    folder = data_dir / "sink"
    return {
        "events": InflightJournal(folder / "events.inflight.json", "events", "ts"),
        "failed_events": InflightJournal(
            folder / "failed_events.inflight.json", "failed_events", "failed_at"
        ),
    }
