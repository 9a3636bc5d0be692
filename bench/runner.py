"""``mayak bench``: runs every benchmark against its limit in one run and prints one table.

The broker is a private throw-away one on free ports; every figure that has a limit measured
in the same run (collector vs bare kafka-python loop, pipeline vs no-op Faust agent) is
printed as a ratio, because absolute times drift on a shared 2-core machine.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from bench import (
    collector_bench,
    dashboard_bench,
    enrich_bench,
    framed_bench,
    freshness_bench,
    pipeline_bench,
    product_bench,
    stack_bench,
    tracker_bench,
)
from bench.harness import KEYS, percentile, results_table
from mayak.kafka_local import LocalBroker, free_port
from mayak.settings import Settings


@dataclass(frozen=True)
class Plan:
    """How big each benchmark is: --quick stays under five minutes on 2 cores."""

    load_seconds: float
    pipeline_events: int
    framed_events: int
    enrich_events: int
    freshness_seconds: float
    dashboard_sizes: tuple[int, ...]


QUICK = Plan(5, 20_000, 40_000, 20_000, 8, (1_000_000,))
FULL = Plan(15, 100_000, 200_000, 100_000, 30, (1_000_000, 10_000_000))
#: the throughput steps' private broker: its large-site mode (G1, both JIT compilers), since
#: a site sending thousands of events/s raises MAYAK_KAFKA_HEAP_MB; the stack step starts the
#: broker ``mayak up`` starts, with the default (small-site) heap
BENCH_HEAP_MB = 1024
#: what ``--only`` runs alone; the broker-backed ones share one private broker
ONLY = ("product", "stack", "framed", "collector")


def machine() -> str:
    return (
        f"{platform.node()}: {psutil.cpu_count()} cores, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB, Python {platform.python_version()}"
    )


def bench_broker(work: Path) -> LocalBroker:
    """The throughput steps' private broker, in its large-site mode (``BENCH_HEAP_MB``)."""
    return LocalBroker(
        home=work / "kafka",
        cache_dir=Settings().cache_dir,
        port=free_port(),
        controller_port=free_port(),
        heap_mb=BENCH_HEAP_MB,
        partitions=2,
    )


def run_bench(quick: bool, json_path: Path | None, console: Console) -> dict:
    plan = QUICK if quick else FULL
    results: dict = {}
    details: dict[str, str] = {}
    work = Path(tempfile.mkdtemp(prefix="mayak-bench-"))
    broker = bench_broker(work)
    steps = [
        ("tracker", lambda: tracker_bench.run(results, details)),
        # its own broker, started as `mayak up` starts it (heap, flags); first, while this
        # process has not loaded chDB: pages of the library it maps too stay in the stack
        # worker's RSS (the kernel does not page out shared pages), as on no real host
        ("stack", lambda: stack_bench.run(work, plan.load_seconds * 2, results, details)),
        ("enrich", lambda: enrich_bench.run(work, plan.enrich_events, results, details)),
        (
            "collector",
            lambda: collector_bench.run(
                broker.bootstrap, work, plan.load_seconds, results, details
            ),
        ),
        (
            "pipeline",
            lambda: pipeline_bench.run(
                broker.bootstrap, work, plan.pipeline_events, results, details
            ),
        ),
        (
            "framed",
            lambda: framed_bench.run(broker.bootstrap, work, plan.framed_events, results, details),
        ),
        (
            "freshness",
            lambda: freshness_bench.run(
                broker.bootstrap, work, plan.freshness_seconds, results, details
            ),
        ),
        (
            "dashboard",
            lambda: dashboard_bench.run(
                work, list(plan.dashboard_sizes), results, details, progress=lambda m: None
            ),
        ),
        # on the dashboard step's database, already holding its largest size
        (
            "product",
            lambda: calls.update(
                product_bench.run(work, plan.dashboard_sizes[-1], results, details)
            ),
        ),
    ]
    calls: dict[str, list[float]] = {}
    started = time.monotonic()
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("starting a private Kafka broker", total=len(steps) + 1)
        broker.start()
        try:
            progress.advance(task)
            for name, step in steps:
                progress.update(task, description=f"benchmark: {name}")
                step()
                progress.advance(task)
        finally:
            broker.stop()
    if calls:
        console.print(product_bench.table(calls, plan.dashboard_sizes[-1]))
    console.print(results_table(results, details))
    console.print(
        f"machine: {machine()}; {'quick' if quick else 'full'} run took "
        f"{time.monotonic() - started:.0f} s; work files in {work}"
    )
    if json_path:
        json_path.write_text(json.dumps({key: results.get(key) for key in KEYS}, indent=2) + "\n")
    return results


def run_product(
    events: int, rounds: int, data: Path | None, json_path: Path | None, console: Console
) -> dict:
    """``mayak bench --only product``: the product page's calls alone, at ``events`` events.
    ``data``: a directory to keep the generated database in (reused by the next run)."""
    work = data or Path(tempfile.mkdtemp(prefix="mayak-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    results: dict = {}
    details: dict[str, str] = {}
    started = time.monotonic()
    load = os.getloadavg()
    with console.status("product page") as status:
        timings = product_bench.run(
            work, events, results, details, rounds, progress=lambda m: status.update(m)
        )
    console.print(product_bench.table(timings, events))
    console.print(results_table(results, details, keys=("product_p95_ms",)))
    console.print(
        f"machine: {machine()}; load average {load[0]:.2f} before, "
        f"{os.getloadavg()[0]:.2f} after; took {time.monotonic() - started:.0f} s; "
        f"work files in {work}"
    )
    if json_path:
        per_call = {name: round(percentile(s, 95) * 1000, 1) for name, s in timings.items()}
        json_path.write_text(json.dumps({**results, "calls_p95_ms": per_call}, indent=2) + "\n")
    return results


def run_only(name: str, quick: bool, json_path: Path | None, console: Console) -> dict:
    """``mayak bench --only stack|framed|collector``: one broker-backed benchmark alone
    (``--quick``: its short size), with the load average before and after (the machine may
    be shared)."""
    plan = QUICK if quick else FULL
    work = Path(tempfile.mkdtemp(prefix="mayak-bench-"))
    results: dict = {}
    details: dict[str, str] = {}
    started = time.monotonic()
    load = os.getloadavg()
    with console.status(f"benchmark: {name}"):
        if name == "stack":
            stack_bench.run(work, plan.load_seconds * 2, results, details)
            keys: tuple[str, ...] = ("cpu_us_per_event", "stack_idle_mb", "stack_peak_mb")
        else:
            broker = bench_broker(work)
            broker.start(log=console.print)
            try:
                if name == "collector":
                    collector_bench.run(broker.bootstrap, work, plan.load_seconds, results, details)
                    keys = (
                        "collector_eps",
                        "collector_ratio",
                        "collector_p99_ms",
                        "collector_peak_mb",
                    )
                else:
                    framed_bench.run(broker.bootstrap, work, plan.framed_events, results, details)
                    keys = ("pipeline_framed_eps", "worker_peak_mb")
            finally:
                broker.stop()
    console.print(results_table(results, details, keys=keys))
    console.print(
        f"machine: {machine()}; load average {load[0]:.2f} before, "
        f"{os.getloadavg()[0]:.2f} after; took {time.monotonic() - started:.0f} s; "
        f"work files in {work}"
    )
    if json_path:
        json_path.write_text(json.dumps({k: results.get(k) for k in keys}, indent=2) + "\n")
    return results
