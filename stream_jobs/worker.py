"""Runs the stream worker process: migrations, the Faust worker and (embedded mode) dashboards.

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
from mayak.install import (
    KeyStoreWatch,
    check_install,
    private_umask,
    warehouse_evidence,
    worker_offsets_evidence,
)
from mayak.settings import Settings
from stream_jobs.app import create_app
from stream_jobs.faults import faults_from_env
from stream_jobs.sink import journals
from warehouse.client import client_from_settings
from warehouse.migrate import migrate
from warehouse.repair import recount_bot_hits

#: Builds the dashboards' ASGI app on the worker's client (``dashboards.app.create_app``).
DashboardsFactory = Callable[[Settings, Any], Any]

if TYPE_CHECKING:
    import faust
    from clickhouse_connect.driver.client import Client


def serve_dashboards_in_thread(
    settings: Settings, client: Client, create_dashboards: DashboardsFactory
) -> threading.Thread:
    config = uvicorn.Config(
        create_dashboards(settings, client),
        host=settings.dashboards_host,
        port=settings.dashboards_port,
        log_level="warning",
        lifespan="on",
    )
    server = uvicorn.Server(config)  # off the main thread uvicorn installs no signal handlers
    thread = threading.Thread(target=server.run, name="dashboards", daemon=True)
    thread.start()
    return thread


def run_worker(
    settings: Settings,
    dashboards: DashboardsFactory | None,
    loglevel: str = "warn",
    reset_keys: bool = False,
) -> None:
    """Run the Faust worker until it stops; with ``dashboards``, serve them from a thread."""
    private_umask()
    client = client_from_settings(settings)
    # asked only when the key store is missing: the local warehouse first, then Kafka
    check_install(
        settings,
        reset_keys,
        [lambda: warehouse_evidence(client), lambda: worker_offsets_evidence(settings)],
    )
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
    client = faults_from_env(client)
    if dashboards is not None:
        serve_dashboards_in_thread(settings, client, dashboards)
    app = create_app(settings, client)
    worker = quiet_worker(app, loglevel)
    KeyStoreWatch(settings, lambda message: stop_worker(worker, message)).start()
    worker.execute_from_commandline()


def stop_worker(worker: Worker, message: str) -> None:
    """Crash the running Faust worker from another thread: it stops and exits non-zero."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    error = MayakError(message)
    worker.loop.call_soon_threadsafe(lambda: asyncio.ensure_future(worker.crash(error)))
    # whatever the worker's shutdown does, the process must not keep minting keys
    threading.Timer(30.0, os._exit, (3,)).start()


def quiet_worker(app: faust.App, loglevel: str = "warn") -> Worker:
    """A Faust worker without its terminal spinner.

    Faust's spinner sets the root logger to DEBUG (and spins on every record), so every
    ``log.debug`` of Faust, mode and aiokafka on the per-message path builds a LogRecord and
    runs the handlers: measurable per-event overhead for a spinner nobody sees.
    """
    worker = Worker(app, loglevel=loglevel, quiet=True)
    worker.spinner = None
    return worker
