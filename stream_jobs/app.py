"""Builds the Faust app of the stream worker: topics, the session table, agents and timers.

``create_app(settings, client, role=...)`` is the entry point used by ``run_worker``; tests
pass ``client=None`` (no sinks) and their own ``clock`` / ``keys`` to run agents in
``test_context()`` without a broker or ClickHouse. The role (``stream_jobs.roles``) decides
which side is defined: a sink worker gets no pipeline, no table and no key store.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any

import faust

from anonymizer.keystore import KeyStoreLike, keystore_from_settings
from mayak.clock import SYSTEM_CLOCK, Clock
from mayak.settings import Settings
from stream_jobs.agents import Agents, register_agents
from stream_jobs.batching import INDEX_BITS
from stream_jobs.monitor import QuietMonitor
from stream_jobs.pipeline import Pipeline
from stream_jobs.processors import pipeline_from_settings
from stream_jobs.roles import Role, group_id
from stream_jobs.sink import EVENT_IDS, FAILURES, Lander, event_row, failed_row, journals
from stream_jobs.topics import define_topics

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

#: Bytes one fetch may return per partition: Faust's default, 1 MB, kept on purpose.
#: ``mayak.raw``'s values are sealed (``contract.raw_seal``), so a batch of single-event
#: messages no longer shrinks under the Kafka client's gzip and 1 MB held about 2,200 such
#: events instead of 25,000 (about 4,800 since the seal deflates with a preset dictionary).
#: The pipeline benchmark (one event per message, 20,000, before the dictionary) ran
#: 3,400-4,300 events/s at 1 MB, 4,200-4,500 at 2 MB and 6,600-9,300 at 4 MB; but at 4 MB the
#: freshness benchmark (1,000 events/s through the collector) got slower: p95 2,099-3,590 ms
#: against 1,617-2,000 at 1 MB, p50 +100-200 ms (2026-12-03, alternating runs). Freshness is
#: what every dashboard reader sees; the collector frames its messages under load, so only the
#: benchmark's worst case sends single events fast.
CONSUMER_FETCH_BYTES = 1024 * 1024


def create_app(
    settings: Settings,
    client: Client | None,
    *,
    clock: Clock = SYSTEM_CLOCK,
    keys: KeyStoreLike | None = None,
    role: Role = Role.ALL,
) -> faust.App:
    """The Faust app of ``role``; ``client`` is a ClickHouse client (None: no sink agents)."""
    app = faust.App(
        group_id(settings, role),
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
        consumer_max_fetch_size=CONSUMER_FETCH_BYTES,
        monitor=QuietMonitor(),  # Faust's per-message statistics: unused (stream_jobs/monitor.py)
    )
    landers = None
    if client is not None and role.sinks:
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
    make_pipeline = purge_salts = None
    if role.enriches:
        store = keys or keystore_from_settings(settings)

        def make_pipeline(sessions: MutableMapping[str, Any]) -> Pipeline:
            return pipeline_from_settings(settings, sessions, clock=clock, keys=store)

        def purge_salts() -> object:
            return store.purge_expired(clock.now())

    app.mayak = register_agents(  # type: ignore[attr-defined]
        app, define_topics(app, settings), settings, make_pipeline, landers, clock, purge_salts
    )
    return app


def agents_of(app: faust.App) -> Agents:
    return app.mayak  # type: ignore[attr-defined]
