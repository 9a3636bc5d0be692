"""``mayak bench`` steps of issue 17: the whole stack's CPU per event and memory (``stack``),
and one worker on the collector's frames (``framed``), each run small: the figures exist,
every event landed once, and they are consistent with each other (not timed against limits)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from anonymizer.keystopic import topic_has_records
from bench import framed_bench, stack_bench
from bench.harness import KEYS, TARGETS, results_table

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str, timeout: float = 600) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "mayak", "bench", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done.stdout


def test_the_new_figures_have_targets_and_are_in_the_json_keys() -> None:
    for key in ("cpu_us_per_event", "stack_idle_mb", "stack_peak_mb", "pipeline_framed_eps"):
        assert key in KEYS
    assert TARGETS["cpu_us_per_event"].describe() == "<= 120"
    assert TARGETS["stack_idle_mb"].describe() == "<= 500"
    assert TARGETS["pipeline_framed_eps"].describe() == ">= 20000"
    assert TARGETS["stack_idle_mb"].met(499.0) and not TARGETS["stack_idle_mb"].met(857.0)


def test_an_unknown_only_step_is_refused() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mayak", "bench", "--only", "nothing"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "product, stack, framed, collector" in done.stdout + done.stderr


@pytest.mark.kafka
@pytest.mark.clickhouse
def test_stack_step_measures_cpu_per_landed_event_and_memory(tmp_path: Path) -> None:
    results: dict = {}
    details: dict[str, str] = {}
    stack_bench.run(tmp_path, 2, results, details, settle=3)
    cpu, idle, peak = (results[k] for k in ("cpu_us_per_event", "stack_idle_mb", "stack_peak_mb"))
    assert cpu > 0 and 0 < idle <= peak
    # the detail names the CPU of each process tree and the events landed (every one accepted)
    found = re.search(r"([\d.]+) s CPU for ([\d,]+) events landed", details["cpu_us_per_event"])
    assert found, details["cpu_us_per_event"]
    seconds, landed = float(found.group(1)), int(found.group(2).replace(",", ""))
    assert landed > 0
    assert cpu == pytest.approx(seconds / landed * 1e6, rel=0.06)
    for name in ("broker", "worker", "collector"):
        assert name in details["cpu_us_per_event"] and name in details["stack_idle_mb"]
    # the worker's share split by thread: its Python threads and chDB's own (the threads that
    # ended during the load count in the worker's total only)
    worker = int(re.search(r"worker (\d+)", details["cpu_us_per_event"]).group(1))
    split = re.search(r"worker \d+ \(threads: ([^)]*)\)", details["cpu_us_per_event"])
    assert split, details["cpu_us_per_event"]
    kinds = {k: int(v) for k, v in re.findall(r"(\w+) (\d+)", split.group(1))}
    assert set(kinds) <= {"python", "engine", "merges"} and kinds["python"] > 0
    assert sum(kinds.values()) <= worker * 1.05 + 2
    assert "idle again after the load" in details["stack_idle_mb"]
    # the table prints each with its target and a met column
    table = results_table(results, details, keys=("cpu_us_per_event", "stack_idle_mb"))
    assert [c.header for c in table.columns][:4] == ["figure", "value", "target", "met"]


def test_frames_keep_each_partitions_events_in_order() -> None:
    from contract.raw_frames import events_of
    from producers.collector.outbox import MemoPartitioner

    records = [(f"visitor-{i % 7}".encode(), b'{"n":%d}' % i) for i in range(230)]
    messages = framed_bench.frames(records, 2, per_frame=50)
    assert all(len(events_of(value)) <= 50 for _, _, value in messages)
    pick = MemoPartitioner().pick
    for partition in (0, 1):
        sent = [v for k, v in records if pick(k, [0, 1]) == partition]
        got = [e for p, _, v in messages if p == partition for e in events_of(v)]
        assert [b'{"n":%d}' % e["n"] if isinstance(e, dict) else e for e in got] == sent
    # a frame's key is its events' key when they share one, else none
    single = framed_bench.frames([(b"k", b'{"n":1}'), (b"k", b'{"n":2}')], 1)
    assert single == [(0, b"k", b'[{"n":1},{"n":2}]')]


@pytest.mark.kafka
@pytest.mark.clickhouse
def test_framed_step_lands_every_event_once(tmp_path: Path, kafka_bootstrap: str) -> None:
    results: dict = {}
    details: dict[str, str] = {}
    # enough events that landing takes several of the step's once-a-second looks
    framed_bench.run(kafka_bootstrap, tmp_path, 15_000, results, details)
    assert results["pipeline_framed_eps"] > 0
    assert results["worker_peak_mb"] > 0
    assert "15,000 events in" in details["pipeline_framed_eps"]
    assert (
        "1 enrich worker on the shared Kafka key store, published to mayak.events"
        in (details["pipeline_framed_eps"])
    )
    # the worker's own CPU per event, which the details print beside the rate
    cpu = re.search(r"its CPU ([\d.]+) us per event", details["pipeline_framed_eps"])
    assert cpu and 0 < float(cpu.group(1)) < 1e6, details["pipeline_framed_eps"]
    # the worker's keys live where production keeps them: the Kafka key store, no file
    assert topic_has_records(kafka_bootstrap, framed_bench.KEYS_TOPIC)
    assert not list(tmp_path.rglob("anonymizer.db")) and not list(tmp_path.rglob("*.sqlite"))


@pytest.mark.kafka
def test_only_collector_prints_and_writes_the_collector_figures(
    tmp_path: Path, monkeypatch
) -> None:
    """``mayak bench --only collector``: the collector step alone on its own broker (2 s of load
    here), its four figures in the table and the JSON, the bare loop it is divided by, and the
    load average (not timed against the targets)."""
    import io
    import json

    from rich.console import Console

    from bench import runner

    monkeypatch.setattr(runner, "QUICK", runner.Plan(2, 1, 1, 1, 1, (1,)))
    out = io.StringIO()
    json_path = tmp_path / "collector.json"
    results = runner.run_only("collector", True, json_path, Console(file=out, width=200))
    keys = ("collector_eps", "collector_ratio", "collector_p99_ms", "collector_peak_mb")
    assert all(results[k] > 0 for k in keys), results
    written = json.loads(json_path.read_text())
    assert written == {k: results[k] for k in keys}
    text = out.getvalue()
    found = re.search(r"bare kafka-python loop: ([\d,]+) msg/s", text)
    assert found, text
    bare = int(found.group(1).replace(",", ""))
    assert results["collector_ratio"] == pytest.approx(results["collector_eps"] / bare, rel=0.01)
    assert "load average" in text and "collector_p99_ms" in text


def test_worker_threads_are_split_by_kind_counting_only_their_growth() -> None:
    """A thread's CPU before the load is not the load's; a thread born during it counts from
    zero; one that ended is missing (its time stays in the process's total)."""
    before = {1: ("python", 10.0), 2: ("engine", 5.0), 3: ("engine", 7.0)}
    after = {1: ("python", 12.5), 2: ("engine", 6.0), 4: ("merges", 0.5), 5: ("engine", 1.0)}
    assert stack_bench.cpu_by_kind(before, after) == {"python": 2.5, "engine": 2.0, "merges": 0.5}
    assert [
        stack_bench.thread_kind(c) for c in ("python3.11", "mayak", "MergeMutate", "BgSchPool")
    ] == [
        "python",
        "python",
        "merges",
        "engine",
    ]
