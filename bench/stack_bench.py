"""stack: CPU and memory of the whole stack as ``mayak up`` runs it (broker, worker with
embedded ClickHouse and dashboards, collector), idle and under the collector load.

* ``stack_idle_mb``: resident memory (RSS summed over every process tree) once start-up has
  settled and nothing is sent; ``stack_peak_mb``: the highest sum under load, until every
  event landed.
* ``cpu_us_per_event``: CPU time (user + system, every process tree) from the start of the
  load until the last accepted event is visible in ClickHouse, divided by the events landed:
  the whole path's cost of one event, which a shared 2-core machine distorts far less than a
  throughput figure.

The broker is started from the same settings as ``mayak up`` (``broker_from_settings``: its
default heap and flags), on free ports in a private data directory. Every request carries its
own event id (a ``wrk`` Lua counter), so that each one is a new event the sink must land.
"""

from __future__ import annotations

import itertools
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from bench.collector_bench import ORIGIN, UA, _require
from bench.pipeline_bench import pageviews
from dashboards.auth import ensure_cli_token
from mayak.errors import MayakError
from mayak.kafka_local import broker_from_settings, free_port
from mayak.procs import settings_for, spawn_mayak, stop_process, wait_http_ok
from stream_jobs.topics import ensure_topics

SITE = "demo"
#: wrk's connections: requests in flight when it stops may land without being counted by it
IN_FLIGHT = 64
#: wrk's Lua: a fresh event id per request (thread number, counter), the browser's own ts
WRK_SCRIPT = """
-- tid: a global each thread gets from setup() (a local would hide it: ids would collide)
local counter = 0
local threads = 0
function setup(thread) threads = threads + 1; thread:set("tid", threads) end
wrk.method = "POST"
wrk.headers["Content-Type"] = "text/plain"
wrk.headers["User-Agent"] = "{ua}"
wrk.headers["Origin"] = "{origin}"
function delay() return {delay_ms} end
function request()
  counter = counter + 1
  local id = string.format("%08x-{run:04x}-4000-8000-%012x", tid, counter)
  local body = '{{"v":1,"id":"' .. id .. '","type":"pageview","site":"{site}","ts":{ts},'
    .. '"url":"https://e-legal.az/services/notary","ref":"https://www.google.com/",'
    .. '"section":"services"}}'
  return wrk.format(nil, nil, nil, body)
end
"""


class Trees:
    """The process trees of the stack: their summed CPU seconds and RSS (peak sampled)."""

    def __init__(self, pids: dict[str, int], every: float = 0.2) -> None:
        self.roots = {name: psutil.Process(pid) for name, pid in pids.items()}
        self.peak_bytes = 0.0
        self._every = every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def processes(self, only: str = "") -> list[psutil.Process]:
        out = []
        for name, root in self.roots.items():
            if only and name != only:
                continue
            try:
                out += [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                continue
        return out

    def _each(self, read: Callable[[psutil.Process], float], only: str = "") -> float:
        total = 0.0
        for proc in self.processes(only):
            try:
                total += read(proc)
            except psutil.Error:
                continue
        return total

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds (user + system) of each tree by name."""
        return {name: self._each(lambda p: sum(p.cpu_times()[:2]), name) for name in self.roots}

    def rss_bytes(self) -> float:
        return self._each(lambda p: p.memory_info().rss)

    def thread_cpu(self, only: str) -> dict[int, tuple[str, float]]:
        """Each live thread of tree ``only``: its kind (``thread_kind``) and CPU seconds."""
        out: dict[int, tuple[str, float]] = {}
        for proc in self.processes(only):
            for task in Path(f"/proc/{proc.pid}/task").glob("*"):
                try:
                    kind = thread_kind((task / "comm").read_text().strip())
                    fields = (task / "stat").read_text().rpartition(")")[2].split()
                except OSError:  # the thread ended meanwhile
                    continue
                # utime and stime, fields 14 and 15 of stat (11 and 12 after the comm)
                out[int(task.name)] = (kind, (int(fields[11]) + int(fields[12])) / CLOCK_TICKS)
        return out

    def rss_mb_each(self) -> dict[str, float]:
        """RSS of each tree by name, in MB."""
        return {n: self._each(lambda p: p.memory_info().rss, n) / 2**20 for n in self.roots}

    def anon_bytes(self) -> float:
        """Anonymous resident memory (``RssAnon``): what the processes allocated, without the
        pages of program files (chDB's library put 285 MB in the worker's RSS at start-up,
        12-22 MB once the worker gave its start-up pages back), which the kernel shares
        between processes and can drop and re-read."""
        return self._each(_rss_anon)

    def uss_bytes(self) -> float:
        """Unique set size: the pages only these processes hold (shared libraries not counted)."""
        return self._each(lambda p: p.memory_full_info().uss)

    def sample_peak(self) -> None:
        def run() -> None:
            while not self._stop.is_set():
                self.peak_bytes = max(self.peak_bytes, self.rss_bytes())
                self._stop.wait(self._every)

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_by_kind(
    before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]
) -> dict[str, float]:
    """CPU seconds each kind of thread spent between two ``thread_cpu`` readings (threads
    that ended in between are missing: their time counts in the process's total only)."""
    out: dict[str, float] = {}
    for tid, (kind, seconds) in after.items():
        out[kind] = out.get(kind, 0.0) + seconds - before.get(tid, (kind, 0.0))[1]
    return out


def thread_kind(comm: str) -> str:
    """Whose a worker thread is: Python's own threads keep the process's name (Faust's
    consumer, enrichment, the sink's rows, and the part of each chDB query run on the calling
    thread), chDB names its own (``MergeMutate`` its merges; ``ThreadPool`` and the others its
    query, insert and background pools)."""
    if comm.startswith(("python", "mayak")):
        return "python"
    return "merges" if comm.startswith("MergeMutate") else "engine"


def _rss_anon(proc: psutil.Process) -> float:
    with open(f"/proc/{proc.pid}/status") as status:
        for line in status:
            if line.startswith("RssAnon:"):
                return float(line.split()[1]) * 1024
    return 0.0


def stack_env(work: Path) -> dict[str, str]:
    return {
        "MAYAK_DATA_DIR": str(work / "stack"),
        "MAYAK_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}",
        "MAYAK_KAFKA_CONTROLLER_PORT": str(free_port()),
        "MAYAK_COLLECTOR_PORT": str(free_port()),
        "MAYAK_DASHBOARDS_PORT": str(free_port()),
        "MAYAK_WORKER_WEB_PORT": str(free_port()),
        "MAYAK_COLLECTOR_RATE_PER_S": "1000000000",
        "MAYAK_COLLECTOR_RATE_BURST": "1000000000",
        "MAYAK_COLLECTOR_MAX_PENDING": "200000",
    }


def wrk_load(
    url: str, seconds: float, work: Path, rate: float, connections: int = IN_FLIGHT
) -> tuple[float, int]:
    """(requests/s, requests answered 2xx) of ``wrk`` against ``url``, a new event each, at
    most ``rate`` requests/s (each connection waits ``connections / rate`` between requests;
    0: as fast as the stack answers)."""
    script = work / "stack.lua"
    delay_ms = round(connections * 1000 / rate) if rate else 0
    script.write_text(
        WRK_SCRIPT.format(
            ua=UA,
            origin=ORIGIN,
            site=SITE,
            ts=int(time.time() * 1000),
            delay_ms=delay_ms,
            run=next(_RUNS),  # ids differ between runs too
        )
    )
    out = subprocess.run(
        [_require("wrk"), "-t2", f"-c{connections}", f"-d{seconds:.0f}s", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    served = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    if served is None or total is None:
        raise RuntimeError(f"wrk printed no request count:\n{out[-2000:]}")
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if bad:
        raise MayakError(f"the collector refused {bad.group(1)} requests under load")
    return float(served.group(1)), int(total.group(1))


def wait_landed(url: str, token: str, accepted: int, procs: dict, timeout: float) -> int:
    """Pageviews in ClickHouse once all ``accepted`` landed and the count stopped moving
    (requests still in flight when wrk stopped may land too)."""
    deadline = time.monotonic() + timeout
    last, still = -1, 0
    while time.monotonic() < deadline and still < 30:
        for name, proc in procs.items():
            if proc.poll() is not None:
                raise MayakError(f"the {name} exited during the stack benchmark")
        count = pageviews(url, token)
        if count > accepted + IN_FLIGHT:
            raise MayakError(f"{count} pageviews landed for {accepted} accepted: duplicates")
        if count >= accepted and count == last:
            return count
        still = still + 1 if count == last else 0
        last = count
        time.sleep(1.0)
    raise MayakError(f"only {last} of {accepted} accepted events landed")


_RUNS = itertools.count(1)
#: a first load before the measured one: the broker's JIT compiler, first inserts into every
#: table and connection set-up are start-up costs, not costs per event
WARM_UP_S = 3.0
#: the offered load: 0 is as fast as the stack answers, as the collector step and the issue's
#: comparison with GoatCounter load it (a fixed rate, e.g. 1000, compares runs on a busy machine
#: better, but at a few hundred events/s the cost per second dominates the cost per event)
RATE = 0


def run(
    work: Path,
    seconds: float,
    results: dict,
    details: dict,
    settle: float = 10.0,
    rate: float = RATE,
) -> None:
    # see bench/runner.py: pages this process shares with the worker stay in the worker's RSS
    shared = (
        "; this process maps chDB too (its pages stay resident)" if "chdb" in sys.modules else ""
    )
    env = stack_env(work)
    settings = settings_for(env)
    broker = broker_from_settings(settings)
    procs: dict[str, subprocess.Popen] = {}
    load = os.getloadavg()[0]
    broker.start(log=lambda m: None)
    try:
        ensure_topics(settings)
        procs["worker"] = spawn_mayak(["worker", "--dashboards"], work / "stack-worker.log", env)
        procs["collector"] = spawn_mayak(["collector"], work / "stack-collector.log", env)
        wait_http_ok(
            {
                "collector": f"{settings.collector_url}/healthz",
                "dashboards": f"{settings.dashboards_url}/healthz",
            },
            procs,
            logs=work,
        )
        pid = broker.pid()
        if pid is None:
            raise MayakError("the broker stopped during the stack benchmark")
        trees = Trees({"broker": pid, **{name: p.pid for name, p in procs.items()}})
        time.sleep(settle)  # start-up settled: the worker joined its group, timers ran once
        idle_cpu0, idle_t0 = trees.cpu_seconds(), time.monotonic()
        idle = []
        for _ in range(5):
            idle.append(trees.rss_bytes())
            time.sleep(1.0)
        idle_each = trees.rss_mb_each()
        idle_uss, idle_anon = trees.uss_bytes(), trees.anon_bytes()
        idle_s = time.monotonic() - idle_t0
        idle_each_cpu = {n: (t - idle_cpu0[n]) / idle_s for n, t in trees.cpu_seconds().items()}
        idle_rate = sum(idle_each_cpu.values())
        trees.sample_peak()
        summary = f"{settings.dashboards_url}/api/stats/summary?site={SITE}"
        token, url = ensure_cli_token(settings), f"{settings.collector_url}/e"
        _, warm = wrk_load(url, WARM_UP_S, work, rate)
        warm = wait_landed(summary, token, warm, procs, 300)
        cpu0, threads0 = trees.cpu_seconds(), trees.thread_cpu("worker")
        rps, accepted = wrk_load(url, seconds, work, rate)
        landed = wait_landed(summary, token, warm + accepted, procs, 300) - warm
        per_tree = {name: t - cpu0[name] for name, t in trees.cpu_seconds().items()}
        by_kind = cpu_by_kind(threads0, trees.thread_cpu("worker"))
        threads = "threads: " + ", ".join(
            f"{k} {t / landed * 1e6:.0f}" for k, t in sorted(by_kind.items(), key=lambda kv: -kv[1])
        )
        cpu = sum(per_tree.values())
        peak_uss = trees.uss_bytes()
        trees.stop()
        # the same figure once the load is over: what the start-up pages given back at start
        # (warehouse/engine_pages.py) and the load's buffers leave resident for good
        time.sleep(settle / 2)
        after_each = trees.rss_mb_each()
    finally:
        for proc in procs.values():
            stop_process(proc)
        broker.stop()
    idle_mb = statistics.median(idle) / 2**20
    results.update(
        cpu_us_per_event=round(cpu / landed * 1e6, 1),
        stack_idle_mb=round(idle_mb, 1),
        stack_peak_mb=round(max(trees.peak_bytes, max(idle)) / 2**20, 1),
    )
    details.update(
        cpu_us_per_event=(
            f"{cpu:.1f} s CPU for {landed:,} events landed (wrk {rps:,.0f} req/s, "
            f"{f'{rate:g} offered' if rate else 'full rate'}, {seconds:.0f} s); "
            + ", ".join(
                f"{name} {t / landed * 1e6:.0f}" + (f" ({threads})" if name == "worker" else "")
                for name, t in per_tree.items()
            )
            + f" us; idle stack {idle_rate * 100:.1f}% of a core ("
            + ", ".join(f"{n} {r * 100:.1f}" for n, r in idle_each_cpu.items())
            + f"); load avg {load:.2f}"
        ),
        stack_idle_mb=(
            "RSS sum: "
            + ", ".join(f"{name} {mb:.0f}" for name, mb in idle_each.items())
            + f" MB; anonymous {idle_anon / 2**20:.0f} MB, USS {idle_uss / 2**20:.0f} MB; "
            + f"idle again after the load {sum(after_each.values()):.0f} MB ("
            + ", ".join(f"{name} {mb:.0f}" for name, mb in after_each.items())
            + ")"
            + shared
        ),
        stack_peak_mb=f"RSS sum under load; USS at the end {peak_uss / 2**20:.0f} MB",
    )
