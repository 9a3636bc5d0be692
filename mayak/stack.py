"""``mayak up``: supervises the local stack as child processes and tears it all down on exit.

Broker (own session, stopped last so the worker can commit), worker (Faust + embedded
ClickHouse + dashboards in one process, since one process owns a chDB path), collector.
Ctrl-C / SIGTERM stop every child. A child that stops is started again (a worker stops on
purpose, committing nothing, when it cannot finish a batch safely: ``mayak.restarts``), and so
is the broker ``mayak up`` started (a JVM that died, of memory or a signal: the collector
answers 503 and the worker waits until it is back, as in any broker outage); one that keeps
stopping takes the stack down with a message rather than leaving half of it running. A
SIGKILLed ``mayak up`` cannot stop anything: its children stop themselves and the next run
cleans up (``mayak.supervise``).
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from dashboards.auth import add_token, tokens_path
from mayak.clock import SYSTEM_CLOCK, Clock
from mayak.demo import SITE, start_demo
from mayak.demo_geo import write_demo_geoip
from mayak.errors import MayakError
from mayak.install import marker_path, refuse_lost_keys, secure_data_dir
from mayak.kafka_local import LocalBroker, broker_from_settings
from mayak.procs import spawn_mayak, stop_process, wait_http_ok
from mayak.restarts import RestartPolicy, describe
from mayak.settings import Settings
from mayak.supervise import SUPERVISOR_ENV, forget, record, take_over
from stream_jobs.topics import ensure_topics


def run_stack(settings: Settings, demo: bool, console: Console, reset_keys: bool = False) -> None:
    secure_data_dir(settings)
    fresh = not marker_path(settings).exists()
    if not reset_keys:
        refuse_lost_keys(settings)  # early; the worker checks again with what it can see
    adopted = take_over(settings.data_dir, log=console.print)  # what a killed run left
    broker = broker_from_settings(settings)
    # a broker from `mayak kafka start` is left running; one a killed `mayak up` started is ours
    owns_broker = broker.pid() is None or adopted
    children: dict[str, subprocess.Popen] = {}
    stopping = threading.Event()
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        with console.status("starting Kafka (the first run downloads it) ..."):
            broker.start(log=console.print)
            record(settings.data_dir, children, owns_broker)
            ensure_topics(settings)
        logs = settings.data_dir
        dashboards = ["--dashboards"] if settings.embedded_clickhouse else []
        worker_env, collector_env = _demo_env(settings) if demo else ({}, {})
        reset = ["--reset-keys"] if reset_keys else []
        ours = {SUPERVISOR_ENV: str(os.getpid())}  # children die with this process
        starts = {
            "worker": (["worker", *dashboards], {**worker_env, **ours}),
            "collector": (["collector"], {**collector_env, **ours}),
        }
        if not settings.embedded_clickhouse:
            starts["dashboards"] = (["dashboards"], ours)
        for name, (args, env) in starts.items():
            # --reset-keys for the first start only: a restart must not reset them again
            first = [*args, *reset] if name == "worker" else args
            children[name] = spawn_mayak(first, logs / f"{name}.log", env)
        record(settings.data_dir, children, owns_broker)
        with console.status("starting worker, collector and dashboards ..."):
            wait_http_ok(
                {
                    "collector": f"{settings.collector_url}/healthz",
                    "dashboards": f"{settings.dashboards_url}/healthz",
                },
                children,
                logs=logs,
            )
        if fresh:  # after the worker accepted the data dir (tokens would count as evidence)
            _first_token(settings, console)
        _print_urls(settings, console)
        if demo:
            start_demo(settings, stopping, console)
        _watch(children, settings, starts, broker if owns_broker else None, console)
    except KeyboardInterrupt:
        console.print("stopping ...")
    finally:
        stopping.set()
        signal.signal(signal.SIGTERM, previous)
        for proc in children.values():
            stop_process(proc)
        if owns_broker:
            broker.stop()
        forget(settings.data_dir)
        console.print("stopped: no Mayak process left running")


def _demo_env(settings: Settings) -> tuple[dict[str, str], dict[str, str]]:
    """Worker and collector settings for the demo (what the user set explicitly wins)."""
    worker: dict[str, str] = {}
    if not (settings.geoip_city or settings.geoip_isp or settings.geoip_asn):
        city, isp = write_demo_geoip(settings.data_dir / "demo-geoip")
        worker = {"MAYAK_GEOIP_CITY": str(city), "MAYAK_GEOIP_ISP": str(isp)}
    # the demo stands in for a proxy in front of many visitors: trust its X-Forwarded-For;
    # its e-mail opens belong to the demo site
    collector = {
        "MAYAK_COLLECTOR_TRUSTED_PROXIES": '["127.0.0.1"]',
        "MAYAK_COLLECTOR_PIXEL_SITE": SITE,
    }
    return worker, collector


def _first_token(settings: Settings, console: Console) -> None:
    """A new data dir gets one product token (shown once): the API has no anonymous access."""
    if tokens_path(settings).exists():
        return
    token = add_token(tokens_path(settings), "local.product", "product")
    console.print(
        "API token for the dashboards (role product), shown only now; more with "
        f"`mayak token add --name NAME --role ROLE`:\n  {token}"
    )


def _watch(
    children: dict[str, subprocess.Popen],
    settings: Settings,
    starts: dict[str, tuple[list[str], dict[str, str]]],
    broker: LocalBroker | None,
    console: Console,
    clock: Clock = SYSTEM_CLOCK,
) -> None:
    """Poll the children and the broker ``mayak up`` started (None: one it does not own);
    start a stopped one again (``RestartPolicy``), or raise when one keeps stopping."""
    owns_broker = broker is not None
    policies = {name: RestartPolicy(clock=clock) for name in [*children, "Kafka broker"]}
    failures: dict[str, str] = {}  # the last failed start of each, for the final message

    def start_child(name: str) -> None:
        args, env = starts[name]
        children[name] = spawn_mayak(args, settings.data_dir / f"{name}.log", env)

    while True:
        if broker is not None and broker.pid() is None:
            # the same data dir: its topics and messages
            restart = functools.partial(broker.start, log=console.print)
            policy = policies["Kafka broker"]
            _start_again(
                "Kafka broker", None, policy, restart, broker.log_file, console, clock, failures
            )
            record(settings.data_dir, children, owns_broker)
        for name, proc in list(children.items()):
            if proc.poll() is None:
                continue
            log = settings.data_dir / (name + ".log")
            start = functools.partial(start_child, name)
            _start_again(
                name, proc.returncode, policies[name], start, log, console, clock, failures
            )
            record(settings.data_dir, children, owns_broker)
        time.sleep(0.5)  # real time, not injected: polling child processes


def _start_again(
    name: str,
    code: int | None,
    policy: RestartPolicy,
    start: Callable[[], object],
    log: Path,
    console: Console,
    clock: Clock,
    failures: dict[str, str] | None = None,
) -> None:
    """Start ``name`` again after its policy's wait, or raise when it keeps stopping
    (``code`` None: the broker, whose exit code ``LocalBroker`` does not keep).

    A start that fails (the broker's port taken by another program, a broker not ready in
    time) counts as one of the policy's restarts and is tried again after the next wait:
    what holds the port may let it go (a JVM still exiting). ``failures`` keeps the last
    reason of each name, so that giving up says why."""
    failures = {} if failures is None else failures
    wait = policy.next_wait()
    if wait is None:
        how = "stopped" if code is None else f"exited with code {code},"
        why = f"; the last start failed: {failures[name]}" if name in failures else ""
        raise MayakError(
            f"the {name} {how} {policy.limit + 1} times in {policy.window_s / 60:g} min"
            f"{why}; see {log}"
        )
    clock.sleep_blocking(wait)
    try:
        start()
    except (MayakError, OSError) as exc:
        failures[name] = str(exc)
        count = policy.restarted()
        console.print(
            f"could not start the {name} again ({exc}); trying again "
            f"(attempt {count} of at most {policy.limit} in {policy.window_s / 60:g} min)"
        )
        return
    failures.pop(name, None)
    count = policy.restarted()
    console.print(describe(name, code, count, policy) + f"; see {log}")


def _raise_interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def _print_urls(settings: Settings, console: Console) -> None:
    console.print("[bold green]Mayak is up[/]")
    console.print(f"  collector   {settings.collector_url}  (POST /e, GET /t.js)")
    console.print(f"  dashboards  {settings.dashboards_url}/  (API: /api/stats/summary?site=demo)")
    console.print(f"  kafka       {settings.kafka_bootstrap}")
    console.print(f"  data        {settings.data_dir.resolve()}   (Ctrl-C stops everything)")
