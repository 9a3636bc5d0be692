"""Issue 17: the local broker and the embedded ClickHouse engine sized for a small site by
default, larger by setting."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mayak.kafka_local import LocalBroker, dedupe_buffer_mb, jvm_memory_flags
from mayak.settings import Settings
from warehouse.client import embedded_options

ROOT = Path(__file__).resolve().parents[1]


def test_the_broker_heap_is_small_by_default_and_starts_smaller() -> None:
    assert Settings().kafka_heap_mb == 256
    flags = jvm_memory_flags(256)
    assert "-Xmx256m" in flags and "-Xms32m" in flags
    assert "-XX:+UseSerialGC" in flags and "-XX:+UseG1GC" not in flags
    assert "-XX:TieredStopAtLevel=1" in flags  # C1 only: C2's compilations cost more
    # a large heap keeps G1, whose pauses stay short on big heaps, and both compilers
    large = jvm_memory_flags(2048)
    assert "-XX:+UseG1GC" in large and "-Xmx2048m" in large
    assert not any("TieredStopAtLevel" in flag or "Serial" in flag for flag in large)
    assert "-Xms32m" in jvm_memory_flags(2048)


def test_the_cleaner_offset_map_follows_the_heap(tmp_path: Path) -> None:
    assert dedupe_buffer_mb(256) == 16 and dedupe_buffer_mb(64) == 8
    assert dedupe_buffer_mb(4096) == 256
    broker = LocalBroker(home=tmp_path, cache_dir=tmp_path, heap_mb=512)
    config = broker._write_config().read_text()
    assert f"log.cleaner.dedupe.buffer.size={32 * 2**20}\n" in config
    assert "background.threads=2\n" in config
    java = broker._java(tmp_path, "kafka.Kafka", heap_mb=512)
    assert java[: len(jvm_memory_flags(512)) + 1] == ["java", *jvm_memory_flags(512)]


def test_embedded_engine_options_bound_memory_and_caches() -> None:
    assert Settings().clickhouse_embedded_memory_mb == 1024
    options = embedded_options(1024)
    assert options["max_server_memory_usage"] == 2**30
    for cache in ("mark_cache_size", "primary_index_cache_size", "index_mark_cache_size"):
        assert options[cache] == 64 * 2**20


@pytest.mark.clickhouse
def test_the_worker_client_starts_chdb_with_the_bound(tmp_path: Path) -> None:
    # a child process: one process opens one chDB path, and the engine keeps its first options
    script = (
        "import json; from mayak.settings import Settings;"
        "from warehouse.client import client_from_settings;"
        "c = client_from_settings(Settings());"
        "names = ('max_server_memory_usage', 'mark_cache_size');"
        "rows = c.query('SELECT name, value FROM system.server_settings'"
        " ' WHERE name IN {n:Array(String)}', parameters={'n': list(names)}).result_rows;"
        "print(json.dumps(dict(rows)))"
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "MAYAK_DATA_DIR": str(tmp_path),
        "MAYAK_CLICKHOUSE_EMBEDDED_MEMORY_MB": "256",
    }
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {
        "max_server_memory_usage": str(256 * 2**20),
        "mark_cache_size": str(16 * 2**20),
    }
