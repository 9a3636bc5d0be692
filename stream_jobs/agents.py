"""The Faust agents: thin shells around the pure pipeline and the exactly-once landers.

* ``enrich``: ``mayak.raw`` -> ``Pipeline.run`` -> ``mayak.events`` or ``mayak.failed``.
* ``sink_events`` / ``sink_failed``: batches (``take_events``, at most one insert per
  ``sink_flush_seconds`` unless ``sink_batch_size`` fills first) -> ClickHouse. Faust acks a
  batch only when the loop asks for the next one, i.e. after the insert returned, and
  commits only acked offsets.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import faust
import orjson

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


def _records(batch) -> list[tuple[int, int, dict[str, Any]]]:
    return [(e.message.partition, e.message.offset, orjson.loads(e.value)) for e in batch]


def register_agents(app: faust.App, topics: Topics, settings,
                    make_pipeline: Callable[[MutableMapping[str, Any]], Pipeline],
                    landers: dict[str, Lander] | None, clock: Clock,
                    purge_salts: Callable[[], object] | None = None) -> Agents:
    """Define the table, agents and timers on ``app``; ``landers=None`` skips the sinks."""
    # json keys: str both when written live and when recovered from the changelog
    sessions = app.Table("sessions", default=None, partitions=settings.kafka_partitions,
                         schema=faust.Schema(key_serializer="json", value_serializer="json"))
    pipeline = make_pipeline(sessions)

    @app.agent(topics.raw, name="enrich")
    async def enrich(stream):
        async for event in stream.events():
            result = pipeline.run(event.value)
            if isinstance(result, Rejected):
                await topics.failed.send(key=event.key, value=orjson.dumps(result.to_record()))
            else:
                await topics.events.send(key=event.key, value=orjson.dumps(result))
            yield result

    sink_events = sink_failed = None
    if landers is not None:
        async def run_sink(stream, lander: Lander):
            async for batch in stream.take_events(settings.sink_batch_size,
                                                  within=settings.sink_flush_seconds):
                await asyncio.to_thread(lander.land, _records(batch))

        @app.agent(topics.events, name="sink_events")
        async def sink_events(stream):
            await run_sink(stream, landers["events"])

        @app.agent(topics.failed, name="sink_failed")
        async def sink_failed(stream):
            await run_sink(stream, landers["failed_events"])

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
