"""Builds the Faust app of the stream worker: topics, the session table, agents and timers.

``create_app(settings, client)`` is the entry point used by ``run_worker``; tests pass
``client=None`` (no sinks) and their own ``clock`` / ``keys`` to run agents in
``test_context()`` without a broker or ClickHouse.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import faust

from anonymizer.keystore import KeyStoreLike, keystore_from_settings
from mayak.clock import SYSTEM_CLOCK, Clock
from mayak.settings import Settings
from stream_jobs.agents import Agents, register_agents
from stream_jobs.batching import INDEX_BITS
from stream_jobs.monitor import QuietMonitor
from stream_jobs.processors import pipeline_from_settings
from stream_jobs.sink import EVENT_IDS, FAILURES, Lander, event_row, failed_row, journals
from stream_jobs.topics import define_topics

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client


def create_app(
    settings: Settings,
    client: Client | None,
    *,
    clock: Clock = SYSTEM_CLOCK,
    keys: KeyStoreLike | None = None,
) -> faust.App:
    """The Faust app; ``client`` is a ClickHouse client (None: no sink agents)."""
    app = faust.App(
        settings.worker_id,
        broker=f"kafka://{settings.kafka_bootstrap}",
        store="memory://",  # the session table is rebuilt from its changelog on start
        datadir=str(settings.data_dir / "faust"),  # not "<id>-data" in the working directory
        web_port=settings.worker_web_port,
        # web_host is only the advertised name; web_bind is the address Faust listens on
        # (default 0.0.0.0, which exposed /router/ and table contents to other hosts)
        web_host="127.0.0.1",
        web_bind="127.0.0.1",
        topic_partitions=settings.kafka_partitions,
        topic_replication_factor=1,
        producer_acks=-1,
        consumer_auto_offset_reset="earliest",
        # a restarted (e.g. SIGKILLed) worker resumes once the dead member's session expired
        broker_session_timeout=settings.worker_session_timeout_s,
        broker_heartbeat_interval=settings.worker_heartbeat_s,
        # gather the per-batch sends (events, changelog) into fewer produce requests
        producer_linger=0.005,
        monitor=QuietMonitor(),  # Faust's per-message statistics: unused (stream_jobs/monitor.py)
    )
    keys = keys or keystore_from_settings(settings)
    landers = None
    if client is not None:
        # embedded: this process is the only writer, so it may rewrite rollups (sink.py)
        journal = journals(settings.data_dir) if settings.embedded_clickhouse else {}
        landers = {
            "events": Lander(
                client,
                "events",
                event_row,
                EVENT_IDS,
                index_bits=INDEX_BITS,
                journal=journal.get("events"),
                clock=clock,
            ),
            "failed_events": Lander(
                client,
                "failed_events",
                failed_row,
                FAILURES,
                journal=journal.get("failed_events"),
                clock=clock,
            ),
        }
    app.mayak = register_agents(  # type: ignore[attr-defined]
        app,
        define_topics(app, settings),
        settings,
        lambda sessions: pipeline_from_settings(settings, sessions, clock=clock, keys=keys),
        landers,
        clock,
        purge_salts=lambda: keys.purge_expired(clock.now()),
    )
    return app


def agents_of(app: faust.App) -> Agents:
    return app.mayak  # type: ignore[attr-defined]
