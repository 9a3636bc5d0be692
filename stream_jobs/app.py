"""Builds the Faust app from settings: topics, the processing agent and the ClickHouse sink."""

from __future__ import annotations

from datetime import datetime, timezone

import faust
import orjson

from mayak.settings import Settings
from stream_jobs.processors import process


def create_app(settings: Settings, client) -> faust.App:
    app = faust.App(
        settings.worker_id,
        broker=f"kafka://{settings.kafka_bootstrap}",
        store="memory://",
        web_port=settings.worker_web_port,
        web_host="127.0.0.1",
        topic_partitions=settings.kafka_partitions,
    )
    raw = app.topic(settings.topic_raw, value_serializer="raw")
    events = app.topic(settings.topic_events, value_serializer="raw")

    @app.agent(raw)
    async def enrich(stream):
        async for value in stream:
            event = process(orjson.loads(value))
            await events.send(value=orjson.dumps(event))

    @app.agent(events)
    async def sink(stream):
        async for batch in stream.take(settings.sink_batch_size, within=settings.sink_flush_seconds):
            rows = [orjson.loads(v) for v in batch]
            for row in rows:
                row["ts"] = datetime.fromtimestamp(row["ts"] / 1000, tz=timezone.utc)
            columns = list(rows[0].keys())
            client.insert("events", [[r[c] for c in columns] for r in rows], column_names=columns)

    return app
