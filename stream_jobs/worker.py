"""Runs the stream worker process: migrations, the Faust worker and (embedded mode) dashboards.

What runs depends on the role (``stream_jobs.roles``): ``all`` does everything below, an
enrich worker opens no ClickHouse client (no migrations, no repair, no dashboards), a sink
worker opens no key store.

With embedded ClickHouse only one process may open the chDB path, so the process that
writes (this one) also serves the dashboards/API, from a thread sharing the same client. The
caller (``mayak worker``) passes the dashboards' app factory in: the stream jobs do not import
the dashboards, which sit beside them, not below.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import uvicorn
from faust import Worker

from mayak.errors import MayakError
from mayak.heap import settle_heap
from mayak.install import (
    Evidence,
    KeyStoreWatch,
    check_install,
    private_umask,
    secure_data_dir,
    warehouse_evidence,
    worker_offsets_evidence,
)
from mayak.settings import Settings
from stream_jobs.app import create_app
from stream_jobs.faults import faults_from_env
from stream_jobs.roles import (
    Role,
    adopt_offsets_of_all,
    check_role,
    refuse_a_second_embedded_sink,
)
from stream_jobs.sink import journals
from warehouse.client import client_from_settings
from warehouse.engine_pages import release_startup_pages
from warehouse.migrate import migrate
from warehouse.repair import recount_bot_hits

#: Builds the dashboards' server on the worker's client (``dashboards.serve.server_config``:
#: a uvicorn.Config).
DashboardsFactory = Callable[[Settings, Any], uvicorn.Config]

if TYPE_CHECKING:
    import faust
    from clickhouse_connect.driver.client import Client


def serve_dashboards_in_thread(
    settings: Settings, client: Client, create_dashboards: DashboardsFactory
) -> threading.Thread:
    # off the main thread uvicorn installs no signal handlers
    server = uvicorn.Server(create_dashboards(settings, client))
    thread = threading.Thread(target=server.run, name="dashboards", daemon=True)
    thread.start()
    return thread


def run_worker(
    settings: Settings,
    dashboards: DashboardsFactory | None,
    loglevel: str = "warn",
    reset_keys: bool = False,
    role: Role = Role.ALL,
) -> None:
    """Run the Faust worker of ``role`` until it stops; with ``dashboards``, serve them from a
    thread (not for the enrich role, which has no ClickHouse client)."""
    private_umask()
    check_role(settings, role, dashboards is not None)
    if not role.enriches:  # a sink mints no keys: it opens no key store
        secure_data_dir(settings)
        refuse_a_second_embedded_sink(settings)  # before it opens the chDB path
        adopt_offsets_of_all(settings)  # first start after role all: resume where it stopped
    client = client_from_settings(settings) if role.sinks else None
    if role.enriches:
        # asked only when the key store is missing: the local warehouse first, then Kafka
        evidence: list[Evidence] = [lambda: worker_offsets_evidence(settings)]
        if client is not None:
            warehouse = client
            evidence.insert(0, lambda: warehouse_evidence(warehouse))
        check_install(settings, reset_keys, evidence)
    if client is not None:
        client = _prepare_sink(settings, client)
    # after the migrations and repairs: the pages only they and the imports touched go too
    print(f"gave back {release_startup_pages() // 1024} MB of start-up pages", flush=True)
    if client is not None and dashboards is not None:
        serve_dashboards_in_thread(settings, client, dashboards)
    app = create_app(settings, client, role=role)
    worker = quiet_worker(app, loglevel)
    if role.enriches:
        KeyStoreWatch(settings, lambda message: stop_worker(worker, message)).start()
    worker.execute_from_commandline()


def _prepare_sink(settings: Settings, client: Client) -> Client:
    """Migrate the warehouse and (embedded) repair what a crash interrupted, before landing."""
    migrate(client, log=print, cluster=settings.clickhouse_cluster)
    if settings.embedded_clickhouse:  # this process is the only writer: see recount_bot_hits
        for journal in journals(settings.data_dir).values():
            try:  # the days of an insert a crash interrupted
                journal.repair(client)
            except Exception as exc:  # landing must not wait for it: the days stay journaled
                print(
                    f"checking the rollups of {journal.table} failed ({exc}); "
                    "they are checked again at the next start"
                )
        recount_bot_hits(client)
    return faults_from_env(client)


def stop_worker(worker: Worker, message: str) -> None:
    """Crash the running Faust worker from another thread: it stops and exits non-zero."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    error = MayakError(message)
    worker.loop.call_soon_threadsafe(lambda: asyncio.ensure_future(worker.crash(error)))
    # whatever the worker's shutdown does, the process must not keep minting keys
    threading.Timer(30.0, os._exit, (3,)).start()


def quiet_worker(app: faust.App, loglevel: str = "warn") -> Worker:
    """A Faust worker without its terminal spinner, its heap settled once it has started.

    Faust's spinner sets the root logger to DEBUG (and spins on every record), so every
    ``log.debug`` of Faust, mode and aiokafka on the per-message path builds a LogRecord and
    runs the handlers: measurable per-event overhead for a spinner nobody sees. What start-up
    and table recovery left is frozen out of the cyclic GC (``mayak.heap``).
    """
    worker = Worker(app, loglevel=loglevel, quiet=True)
    worker.spinner = None
    started = worker.on_startup_finished

    async def on_startup_finished() -> None:  # Faust calls it once tables are recovered
        await started()
        print(f"froze {settle_heap():,} start-up objects out of the cyclic GC", flush=True)

    worker.on_startup_finished = on_startup_finished  # type: ignore[method-assign]
    return worker
