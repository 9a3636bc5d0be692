"""The Faust agents: thin shells around the pure pipeline and the exactly-once landers.

* ``enrich``: ``mayak.raw`` (single events or the collector's frames of several,
  ``contract.raw_frames``) -> an ``Intake`` runs ``Pipeline.run`` over a batch of raw
  messages at a time (``enrich_batch_size``, ``stream_jobs.intake``) -> the enriched events
  wait in a ``Publisher`` and go out, per raw partition, as a few ``mayak.events`` messages
  (JSON arrays, ``stream_jobs.batching``) every ``enrich_linger_seconds`` or
  ``events_per_message`` events; each rejection -> one ``mayak.failed`` message. The session
  table is written back once per visitor per flush. Faust pays its per-message cost once per
  raw event, not twice.
* ``sink_events`` / ``sink_failed``: records wait in a ``LandingBuffer`` -> ClickHouse, one
  insert per ``sink_flush_seconds`` (``sink_busy_flush_seconds`` under load,
  ``stream_jobs.flush_pace``) unless about ``sink_batch_size`` rows are waiting.

This module only wires: what is flushed before a commit and in which order, what is dropped on
a rebalance and which messages were handled before is the ``CommitCoordinator``'s
(``stream_jobs.commit``).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import faust
import orjson

from contract import raw_seal
from mayak.clock import Clock
from stream_jobs.batching import Publisher, SessionWriteBack, event_count, unframe
from stream_jobs.changelog import BatchedChangelog
from stream_jobs.commit import CommitCoordinator, Deliveries
from stream_jobs.commit_guard import CommitGuard
from stream_jobs.faust_adapter import agent_has_sinks
from stream_jobs.flush_pace import FlushPace
from stream_jobs.intake import Intake
from stream_jobs.pipeline import Pipeline
from stream_jobs.poison import poison_record, valid_dead_letter, valid_event
from stream_jobs.sink import Lander, LandingBuffer
from stream_jobs.topics import Topics

if TYPE_CHECKING:
    from mayak.settings import Settings

log = logging.getLogger("mayak.stream_jobs")


@dataclass
class Agents:
    """What ``register_agents`` defined (None: not in this worker's role)."""

    enrich: faust.types.AgentT | None
    sink_events: faust.types.AgentT | None
    sink_failed: faust.types.AgentT | None
    pipeline: Pipeline | None
    intake: Intake | None
    publisher: Publisher | None
    coordinator: CommitCoordinator


Raw = list[tuple[int, int, bytes]]


def _records(messages: Raw) -> list[tuple[int, int, dict[str, Any]]]:
    return [(p, o, orjson.loads(v)) for p, o, v in messages]


def _event_records(messages: Raw) -> list[tuple[int, int, dict[str, Any]]]:
    records: list[tuple[int, int, dict[str, Any]]] = []
    for p, o, v in messages:
        records += unframe(p, o, v)
    return records


def _landing_buffers(
    landers: dict[str, Lander] | None,
    topics: Topics,
    settings: Settings,
    clock: Clock,
    deliveries: Deliveries,
) -> dict[str, LandingBuffer]:
    """The sinks' buffers (none without landers); a message they cannot land is dead-lettered."""
    if landers is None:
        return {}

    send_failed = deliveries.tracked(topics.failed.send)

    def dead_letter(topic: str) -> Callable[[int, int, str], Awaitable[None]]:
        async def send(partition: int, offset: int, error: str) -> None:
            await send_failed(value=poison_record(topic, partition, offset, error, clock.now()))

        return send

    def pace() -> FlushPace:
        return FlushPace(
            settings.sink_flush_seconds,
            settings.sink_busy_flush_seconds,
            settings.sink_busy_events_per_second,
            clock.monotonic,
        )

    return {
        "events": LandingBuffer(
            landers["events"],
            _event_records,
            settings.sink_batch_size,
            valid_event,
            dead_letter(settings.topic_events),
            pace(),
        ),
        "failed": LandingBuffer(
            landers["failed_events"],
            _records,
            settings.sink_batch_size,
            valid_dead_letter,
            dead_letter(settings.topic_failed),
            pace(),
        ),
    }


def register_agents(
    app: faust.App,
    topics: Topics,
    settings: Settings,
    make_pipeline: Callable[[MutableMapping[str, Any]], Pipeline] | None,
    landers: dict[str, Lander] | None,
    clock: Clock,
    purge_salts: Callable[[], object] | None = None,
) -> Agents:
    """Define the table, agents and timers on ``app``: the enrich side (the session table,
    the enrich agent, its timers) unless ``make_pipeline`` is None, the sinks unless
    ``landers`` is None (``stream_jobs.roles``)."""
    # every send is checked after the producer's flush, before a commit (stream_jobs.commit)
    deliveries = Deliveries()
    enricher = (
        _enricher(app, settings, topics, make_pipeline, deliveries) if make_pipeline else None
    )
    pipeline, intake, publisher = (
        (enricher.pipeline, enricher.intake, enricher.publisher) if enricher else (None,) * 3
    )
    landing = _landing_buffers(landers, topics, settings, clock, deliveries)
    consumed = [settings.topic_raw] if enricher else []
    consumed += [settings.topic_events, settings.topic_failed] if landing else []
    guard = CommitGuard(app, consumed)
    coordinator = CommitCoordinator(intake, publisher, list(landing.values()), guard, deliveries)
    enrich = _enrich_agent(app, topics, settings, enricher, coordinator) if enricher else None
    sink_events, sink_failed = _sink_agents(app, topics, settings, landing, coordinator)

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]  # Faust types sync receivers
    async def on_revoked(app: faust.App, revoked: set[Any], **kwargs: Any) -> None:
        coordinator.revoke(revoked)

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]  # Faust types sync receivers
    async def on_assigned(app: faust.App, assigned: set[Any], **kwargs: Any) -> None:
        # which member works on what: the first thing to know when a worker of several idles
        log.info(
            "%s took partitions %s",
            app.conf.id,
            sorted(f"{tp.topic}/{tp.partition}" for tp in assigned if tp.topic in consumed),
        )
        coordinator.assign(assigned)

    @app.timer(5.0)
    async def rewind_lost_offsets() -> None:
        await coordinator.rewind_lost_offsets()

    if pipeline is not None:
        counters = pipeline.counters

        @app.timer(60.0)
        async def report_counters() -> None:
            if counters:
                log.warning("stream counters %s", dict(sorted(counters.items())))

        @app.on_before_shutdown.connect  # type: ignore[arg-type]  # Faust types sync receivers
        async def final_counters(app: faust.App, **kwargs: Any) -> None:
            log.warning("stream counters at stop %s", dict(sorted(counters.items())))

    if enricher is not None and purge_salts is not None:

        @app.timer(600.0)
        async def destroy_old_salts() -> None:
            purge_salts()

    return Agents(enrich, sink_events, sink_failed, pipeline, intake, publisher, coordinator)


@dataclass
class _Enricher:
    """The enrich side's pipeline and buffers (the session table behind the pipeline)."""

    pipeline: Pipeline
    intake: Intake
    publisher: Publisher


def _enricher(
    app: faust.App,
    settings: Settings,
    topics: Topics,
    make_pipeline: Callable[[MutableMapping[str, Any]], Pipeline],
    deliveries: Deliveries,
) -> _Enricher:
    # json keys: str both when written live and when recovered from the changelog
    sessions = app.Table(
        "sessions",
        default=None,
        partitions=settings.kafka_partitions,
        schema=faust.Schema(key_serializer="json", value_serializer="json"),
    )
    write_back = SessionWriteBack(sessions, BatchedChangelog(app, sessions, deliveries.add))
    pipeline = make_pipeline(write_back)
    # send looked up per call, not bound now: tests patch faust's Topic.send after start-up
    publisher = Publisher(
        deliveries.tracked(lambda **message: topics.events.send(**message)),
        write_back,
        settings.events_per_message,
        settings.kafka_partitions,
    )
    intake = Intake(
        pipeline,
        publisher,
        deliveries.tracked(lambda **message: topics.failed.send(**message)),
        settings.enrich_batch_size,
        raw_seal.opener(raw_seal.key_of(settings)),
    )
    return _Enricher(pipeline, intake, publisher)


def _enrich_agent(
    app: faust.App,
    topics: Topics,
    settings: Settings,
    enricher: _Enricher,
    coordinator: CommitCoordinator,
) -> faust.types.AgentT:
    intake, publisher = enricher.intake, enricher.publisher

    @app.agent(topics.raw, name="enrich")
    async def enrich(stream: faust.StreamT) -> AsyncIterator[Any]:
        coordinator.install(app.producer)  # before the first message, so the first commit
        observed = agent_has_sinks()
        # the stream itself, not stream.events(): one async-generator hop less per message
        async for _value in stream:
            event = stream.current_event
            if event is None:  # not from a topic (what stream.events() skips as well)
                continue
            message = event.message
            if coordinator.seen(message):
                continue  # read again after a rewind: handled before
            # test_context() sinks (observed) get each message's results at once
            if intake.add(message.partition, event.key, event.value) or observed:
                results = await intake.flush()
                if publisher.full:
                    await publisher.flush()
                if observed:  # results are for sinks / test_context() only: yielding costs
                    for result in results:
                        yield result

    @app.timer(settings.enrich_linger_seconds)
    async def publish_enriched() -> None:
        if intake.pending:
            await intake.flush()
        if publisher.pending:
            await publisher.flush()

    return enrich


def _sink_agents(
    app: faust.App,
    topics: Topics,
    settings: Settings,
    landing: dict[str, LandingBuffer],
    coordinator: CommitCoordinator,
) -> tuple[faust.types.AgentT | None, faust.types.AgentT | None]:
    if not landing:
        return None, None
    events, failed = landing["events"], landing["failed"]

    async def run_sink(stream: faust.StreamT, buffer: LandingBuffer) -> None:
        coordinator.install(app.producer)
        async for event in stream.events():
            message = event.message
            if coordinator.seen(message):
                continue  # read again after a rewind: handled before
            # a mayak.events message carries up to events_per_message events
            if buffer.add(
                message.partition, message.offset, event.value, event_count(message.headers)
            ):
                await buffer.flush()

    @app.agent(topics.events, name="sink_events")
    async def sink_events(stream: faust.StreamT) -> None:
        await run_sink(stream, events)

    @app.agent(topics.failed, name="sink_failed")
    async def sink_failed(stream: faust.StreamT) -> None:
        await run_sink(stream, failed)

    @app.timer(settings.sink_flush_seconds)
    async def land_waiting_rows() -> None:
        for buffer in (events, failed):
            if buffer.due():  # every tick, or every few under load (stream_jobs.flush_pace)
                await buffer.flush()

    return sink_events, sink_failed
