"""The ``mayak`` command: one entry point for the local stack and every operator task.

Each command imports what it runs when it runs (Kafka, Faust, chDB, Starlette, opendp), so
``mayak --help`` and every short command start in a fraction of the time; the package cli
modules registered at start follow the same rule.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

from mayak.errors import MayakError
from mayak.install import private_umask
from mayak.settings import Settings
from mayak.supervise import die_with_supervisor
from stream_jobs.roles import Role  # a small enum: the worker's --role choices

if TYPE_CHECKING:
    from producers.collector.app import CollectorApp

app = typer.Typer(
    help="Mayak: privacy-first analytics for E-LEGAL.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
kafka_app = typer.Typer(
    help="The local Apache Kafka broker (KRaft, assembled from Maven Central).",
    no_args_is_help=True,
)
app.add_typer(kafka_app, name="kafka")
console = Console(stderr=True)
RESET_HELP = (
    "Start with a new key store although data of an earlier install exists (its "
    "pseudonyms can then no longer be linked to customers)"
)


@kafka_app.command("start")
def kafka_start() -> None:
    """Start the local broker in the background (downloads the jars the first time)."""
    from mayak.kafka_local import broker_from_settings
    from stream_jobs.topics import ensure_topics

    settings = Settings()
    broker = broker_from_settings(settings)
    with console.status("starting Kafka ..."):
        broker.start(log=console.print)
        ensure_topics(settings)
    console.print(f"Kafka {broker.status()}")


@kafka_app.command("fetch")
def kafka_fetch() -> None:
    """Download the broker jars into the cache (done by `start` too; useful to pre-warm CI)."""
    from mayak.kafka_local import ensure_jars

    settings = Settings()
    with console.status(f"fetching Apache Kafka {settings.kafka_version} with Maven ..."):
        libs = ensure_jars(settings.cache_dir, settings.kafka_version, log=console.print)
    console.print(f"Kafka jars ready in {libs}")


@app.command()
def topics() -> None:
    """Create the raw/events/failed topics on MAYAK_KAFKA_BOOTSTRAP if they are missing."""
    from stream_jobs.topics import ensure_topics

    created = ensure_topics(Settings())
    console.print(f"created {', '.join(created)}" if created else "topics exist")


@kafka_app.command("stop")
def kafka_stop() -> None:
    """Stop the local broker (SIGTERM, SIGKILL after 30 s)."""
    from mayak.kafka_local import broker_from_settings

    stopped = broker_from_settings(Settings()).stop()
    console.print("Kafka stopped" if stopped else "Kafka was not running")


@kafka_app.command("status")
def kafka_status() -> None:
    """Say whether the local broker runs."""
    from mayak.kafka_local import broker_from_settings

    console.print(f"Kafka {broker_from_settings(Settings()).status()}")


@app.command()
def migrate() -> None:
    """Apply the warehouse migrations that are not applied yet."""
    from warehouse.client import client_from_settings
    from warehouse.migrate import migrate as run

    settings = Settings()
    applied = run(
        client_from_settings(settings), log=console.print, cluster=settings.clickhouse_cluster
    )
    console.print(f"{len(applied)} migration(s) applied" if applied else "schema is up to date")


@app.command()
def worker(
    role: Role = typer.Option(
        Role.ALL,
        help="all: enrich and land (one process, as `mayak up` runs it); enrich: "
        "mayak.raw -> mayak.events only (as many as mayak.raw has partitions, any host; needs "
        "a shared key store); sink: mayak.events -> ClickHouse only",
    ),
    dashboards: bool = typer.Option(
        None,
        help="Also serve the dashboards from this process (default: on with embedded "
        "ClickHouse, except for --role enrich)",
    ),
    loglevel: str = typer.Option("warn", help="crit, error, warn, info or debug"),
    reset_keys: bool = typer.Option(False, help=RESET_HELP),
) -> None:
    """Run the stream worker (Faust): raw -> enriched -> ClickHouse."""
    from dashboards.serve import server_config as create_dashboards
    from stream_jobs.worker import run_worker

    settings = Settings()
    default = settings.embedded_clickhouse and role.sinks
    serve = default if dashboards is None else dashboards
    run_worker(
        settings, create_dashboards if serve else None, loglevel, reset_keys=reset_keys, role=role
    )


def collector_app() -> CollectorApp:
    """Factory for uvicorn (one collector per worker process, each with its own producer)."""
    import gc

    from producers.collector import server
    from producers.collector.app import create_app

    settings = Settings()
    server.configure(settings)  # the read limits of this worker process's connections
    app = create_app(settings)
    # the ~70k objects of startup (modules, pydantic schemas, Starlette) never die: keep them out
    # of the cyclic GC, whose full passes over them paused the server up to ~80 ms under load
    gc.freeze()
    return app


@app.command()
def collector(
    workers: int = typer.Option(
        1,
        help="HTTP worker processes. 1 by default: /metrics counters and per-client rate "
        "limits are per process. 2 gave about 20-25% more beacons/s on the 2-core "
        "benchmark box (broker and load generator on the same cores).",
    ),
) -> None:
    """Run the collector (HTTP -> Kafka)."""
    import uvicorn

    from producers.collector.door import sites_open_to_any_origin

    settings = Settings()
    open_sites = sites_open_to_any_origin(settings.collector_sites)
    if open_sites and settings.collector_host not in ("127.0.0.1", "::1", "localhost"):
        # the default has the demo site, open to every page; fine on a laptop, not on a network
        typer.echo(
            f"warning: the collector listens on {settings.collector_host} and takes events for "
            f"{', '.join(open_sites)} from any Origin: any web page can fill the warehouse "
            "under that site.\n-> set MAYAK_COLLECTOR_SITES to your pages' Origins, e.g. "
            '\'{"elegal": ["https://e-legal.az", "https://*.e-legal.az"]}\' (docker-compose.yml)',
            err=True,
        )
    # uvloop + httptools (the C event loop and parser); no access log (never log the client);
    # no uvicorn proxy-header rewriting: the collector trusts X-Forwarded-For itself, only from
    # MAYAK_COLLECTOR_TRUSTED_PROXIES
    keep_alive: Any = settings.collector_keep_alive_s  # typed int by uvicorn, used as a float
    uvicorn.run(
        "mayak.cli:collector_app",
        factory=True,
        workers=workers,
        host=settings.collector_host,
        port=settings.collector_port,
        log_level="warning",
        loop="uvloop",
        access_log=False,
        proxy_headers=False,
        # httptools, with each response's header and body writes sent as one
        http="producers.collector.server:CoalescingHttpToolsProtocol",
        server_header=False,
        timeout_keep_alive=keep_alive,
        # no websockets: with uvicorn's default, a POST asking to upgrade went to a websocket
        # handshake that never answered it, past every read deadline (a connection held for ever)
        ws="none",
    )


@app.command("dashboards")
def dashboards_cmd() -> None:
    """Run the dashboards alone (needs a ClickHouse server; embedded mode serves them from the
    worker)."""
    import uvicorn

    from dashboards.app import create_app
    from dashboards.serve import server_options
    from warehouse.client import client_from_settings

    settings = Settings()
    if settings.embedded_clickhouse:
        raise MayakError(
            "with embedded ClickHouse the worker serves the dashboards "
            "(`mayak worker --dashboards`); set MAYAK_CLICKHOUSE_DSN=http://... to run them alone"
        )
    uvicorn.run(create_app(settings, client_from_settings(settings)), **server_options(settings))


@app.command()
def sql(
    query: str = typer.Argument(..., help="a read-only query, e.g. 'SELECT count() FROM events'"),
) -> None:
    """Run a read-only query as admin and print the rows as JSON lines (the worker must be stopped
    when ClickHouse is embedded)."""
    import orjson

    from warehouse.client import client_from_settings

    result = client_from_settings(Settings()).query(query, settings={"readonly": 1})
    for row in result.named_results():
        sys.stdout.write(orjson.dumps(row, default=str).decode() + "\n")


@app.command()
def up(
    demo: bool = typer.Option(False, help="Also send synthetic portal traffic"),
    reset_keys: bool = typer.Option(False, help=RESET_HELP),
) -> None:
    """Run the whole local stack: broker, topics, migrations, worker, collector, dashboards."""
    from mayak.stack import run_stack

    run_stack(Settings(), demo=demo, console=console, reset_keys=reset_keys)


def _register_packages() -> None:
    # each pipeline stage contributes its own commands; a stage without a cli module is fine
    import importlib

    for name in ("producers", "stream_jobs", "warehouse", "anonymizer", "dashboards", "bench"):
        try:
            module = importlib.import_module(f"{name}.cli")
        except ModuleNotFoundError as exc:
            if exc.name not in (name, f"{name}.cli"):
                raise
            continue
        module.register(app)


_register_packages()


def main() -> None:
    private_umask()  # every file Mayak and its children create: 0600, directories 0700
    die_with_supervisor()  # a child of `mayak up` stops when it does, even if it is SIGKILLed
    try:
        app()
    except MayakError as exc:
        console.print(f"[bold red]error:[/] {exc}", soft_wrap=True)  # paths stay whole
        sys.exit(2)
