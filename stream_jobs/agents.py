"""The Faust agents: thin shells around the pure pipeline and the exactly-once landers.

* ``enrich``: batches of ``mayak.raw`` (``take_events``: ``enrich_batch_size`` events or
  ``enrich_flush_seconds``) -> ``Pipeline.run`` per event -> per raw partition, a few
  ``mayak.events`` messages carrying the batch's enriched events (``stream_jobs.batching``);
  each rejection -> one ``mayak.failed`` message. The session table is written once per
  visitor per batch. Faust pays its per-message cost once per raw event, not twice.
* ``sink_events`` / ``sink_failed``: batches (``take_events``, at most one insert per
  ``sink_flush_seconds`` unless about ``sink_batch_size`` rows are buffered) -> ClickHouse.
  Faust acks a batch only when the loop asks for the next one, i.e. after the sends / the
  insert returned, and commits only acked offsets (after flushing the producer).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import faust
import orjson
from faust.agents.agent import current_agent

from stream_jobs.batching import SessionWriteBack, frame, unframe
from stream_jobs.pipeline import Clock, Pipeline, Rejected
from stream_jobs.sink import Lander
from stream_jobs.topics import Topics

log = logging.getLogger("mayak.stream_jobs")


@dataclass
class Agents:
    enrich: faust.types.AgentT
    sink_events: faust.types.AgentT | None
    sink_failed: faust.types.AgentT | None
    pipeline: Pipeline


Raw = list[tuple[int, int, bytes]]


def _records(messages: Raw) -> list[tuple[int, int, dict[str, Any]]]:
    return [(p, o, orjson.loads(v)) for p, o, v in messages]


def _event_records(messages: Raw) -> list[tuple[int, int, dict[str, Any]]]:
    records: list[tuple[int, int, dict[str, Any]]] = []
    for p, o, v in messages:
        records += unframe(p, o, v)
    return records


def register_agents(app: faust.App, topics: Topics, settings,
                    make_pipeline: Callable[[MutableMapping[str, Any]], Pipeline],
                    landers: dict[str, Lander] | None, clock: Clock,
                    purge_salts: Callable[[], object] | None = None) -> Agents:
    """Define the table, agents and timers on ``app``; ``landers=None`` skips the sinks."""
    # json keys: str both when written live and when recovered from the changelog
    sessions = app.Table("sessions", default=None, partitions=settings.kafka_partitions,
                         schema=faust.Schema(key_serializer="json", value_serializer="json"))
    write_back = SessionWriteBack(sessions)
    pipeline = make_pipeline(write_back)
    per_message = settings.events_per_message
    events_partitions = settings.kafka_partitions

    @app.agent(topics.raw, name="enrich")
    async def enrich(stream):
        # a batch queues up to one changelog record per visitor: let the buffer hold them
        # instead of stalling every incoming message until it is under Faust's default 100
        buffer = app.producer.buffer
        buffer.max_messages = max(buffer.max_messages, 4 * settings.enrich_batch_size)
        me = current_agent()
        observed = bool(me is not None and me._sinks)
        async for batch in stream.take_events(settings.enrich_batch_size,
                                              within=settings.enrich_flush_seconds):
            results, enriched = [], {}
            for event in batch:
                partition = write_back.partition = event.message.partition
                result = pipeline.run(event.value)
                results.append(result)
                if isinstance(result, Rejected):
                    await topics.failed.send(key=event.key,
                                             value=orjson.dumps(result.to_record()))
                else:
                    enriched.setdefault(partition, []).append(result)
            write_back.flush()
            for partition, events in enriched.items():
                for value in frame(events, per_message):
                    await topics.events.send(value=value,
                                             partition=partition % events_partitions)
            if observed:  # results are for sinks / test_context() only: yielding costs
                for result in results:
                    yield result

    sink_events = sink_failed = None
    if landers is not None:
        async def run_sink(stream, lander: Lander, records, messages: int):
            def land(raw: Raw) -> int:  # decoding too happens off the event loop
                return lander.land(records(raw))

            async for batch in stream.take_events(messages, within=settings.sink_flush_seconds):
                raw = [(e.message.partition, e.message.offset, e.value) for e in batch]
                await asyncio.to_thread(land, raw)

        @app.agent(topics.events, name="sink_events")
        async def sink_events(stream):
            # one message carries up to events_per_message events
            messages = max(1, settings.sink_batch_size // max(1, per_message))
            await run_sink(stream, landers["events"], _event_records, messages)

        @app.agent(topics.failed, name="sink_failed")
        async def sink_failed(stream):
            await run_sink(stream, landers["failed_events"], _records, settings.sink_batch_size)

        @app.on_partitions_revoked.connect
        async def on_revoked(app, revoked, **kwargs) -> None:  # noqa: ARG001 - signal signature
            for lander in landers.values():
                lander.reset()  # another worker may land these partitions meanwhile

    @app.timer(60.0)
    async def report_counters() -> None:
        if pipeline.counters:
            log.warning("stream counters %s", dict(sorted(pipeline.counters.items())))

    if purge_salts is not None:
        @app.timer(600.0)
        async def destroy_old_salts() -> None:
            purge_salts()

    return Agents(enrich, sink_events, sink_failed, pipeline)
