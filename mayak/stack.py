"""``mayak up``: supervises the local stack as child processes and tears it all down on exit.

Broker (own session, stopped last so the worker can commit), worker (Faust + embedded
ClickHouse + dashboards in one process), collector. Ctrl-C / SIGTERM stop every child;
a child that dies takes the stack down with a message rather than leaving half of it.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

import httpx
from rich.console import Console

from mayak.errors import MayakError
from mayak.kafka_local import broker_from_settings
from mayak.settings import Settings
from mayak.topics import ensure_topics


class Stack:
    """Owns the child processes of one ``mayak up`` run."""

    def __init__(self, settings: Settings, console: Console) -> None:
        self.settings = settings
        self.console = console
        self.children: dict[str, subprocess.Popen] = {}
        self.stopping = threading.Event()

    def spawn(self, name: str, *args: str) -> None:
        log = open(self.settings.data_dir / f"{name}.log", "ab")
        self.children[name] = subprocess.Popen([sys.executable, "-m", "mayak", *args],
                                               stdout=log, stderr=subprocess.STDOUT,
                                               stdin=subprocess.DEVNULL)

    def wait_healthy(self, urls: dict[str, str], timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        pending = dict(urls)
        while pending and time.monotonic() < deadline and not self.stopping.is_set():
            self.check_children()
            for name, url in list(pending.items()):
                try:
                    if httpx.get(url, timeout=1.0).status_code == 200:
                        del pending[name]
                except httpx.HTTPError:
                    pass
            time.sleep(0.3)
        if pending and not self.stopping.is_set():
            raise MayakError(f"{', '.join(pending)} did not come up in {timeout:.0f}s; "
                             f"see the logs in {self.settings.data_dir}")

    def check_children(self) -> None:
        for name, proc in self.children.items():
            if proc.poll() is not None:
                raise MayakError(f"the {name} exited with code {proc.returncode}; "
                                 f"see {self.settings.data_dir / (name + '.log')}")

    def terminate(self, timeout: float = 20.0) -> None:
        for proc in self.children.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in self.children.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def run_stack(settings: Settings, demo: bool, console: Console) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    broker = broker_from_settings(settings)
    owns_broker = broker.pid() is None
    stack = Stack(settings, console)
    previous = signal.signal(signal.SIGTERM, lambda *_: _raise_interrupt())
    try:
        with console.status("starting Kafka (the first run downloads it) ..."):
            broker.start(log=console.print)
            ensure_topics(settings)
        stack.spawn("worker", "worker", "--dashboards")
        stack.spawn("collector", "collector")
        with console.status("starting worker, collector and dashboards ..."):
            stack.wait_healthy({"collector": f"{settings.collector_url}/healthz",
                                "dashboards": f"{settings.dashboards_url}/healthz"})
        _print_urls(settings, console)
        if demo:
            from mayak.demo import start_demo

            start_demo(settings, stack.stopping, console)
        while True:
            stack.check_children()
            time.sleep(0.5)
    except KeyboardInterrupt:
        console.print("stopping ...")
    finally:
        stack.stopping.set()
        signal.signal(signal.SIGTERM, previous)
        stack.terminate()
        if owns_broker:
            broker.stop()
        console.print("stopped: no Mayak process left running")


def _raise_interrupt() -> None:
    raise KeyboardInterrupt


def _print_urls(settings: Settings, console: Console) -> None:
    console.print("[bold green]Mayak is up[/]")
    console.print(f"  collector   {settings.collector_url}  (POST /e)")
    console.print(f"  dashboards  {settings.dashboards_url}/api/stats/summary?site=demo")
    console.print(f"  kafka       {settings.kafka_bootstrap}")
    console.print(f"  data        {settings.data_dir.resolve()}   (Ctrl-C stops everything)")
