"""`mayak up --demo` as a user runs it: answers a pageview count, stops clean, keeps its data."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from mayak.kafka_local import free_port

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]


def _env(data_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "MAYAK_DATA_DIR": str(data_dir),
        "MAYAK_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}",
        "MAYAK_KAFKA_CONTROLLER_PORT": str(free_port()),
        "MAYAK_COLLECTOR_PORT": str(free_port()),
        "MAYAK_DASHBOARDS_PORT": str(free_port()),
        "MAYAK_WORKER_WEB_PORT": str(free_port()),
        "MAYAK_WORKER_ID": "up-test",
    }


def _pageviews(url: str, deadline: float, data_dir: Path) -> int:
    """The summary's pageviews, asked with the CLI's token (no anonymous access)."""
    while time.monotonic() < deadline:
        try:
            token = (data_dir / "keys" / "cli-admin.token").read_text().strip()
            count = (
                httpx.get(url, timeout=2, headers={"Authorization": f"Bearer {token}"})
                .json()
                .get("pageviews", 0)
            )
            if count:
                return count
        except (httpx.HTTPError, ValueError, OSError):
            pass
        time.sleep(0.5)
    return 0


def _run_up(env: dict[str, str], log: Path, demo: bool) -> subprocess.Popen:
    args = [sys.executable, "-m", "mayak", "up"] + (["--demo"] if demo else [])
    return subprocess.Popen(args, env=env, stdout=open(log, "ab"), stderr=subprocess.STDOUT)


def _descendants(proc: subprocess.Popen) -> list[psutil.Process]:
    try:
        return psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _java_of(data_dir: Path) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if "kafka.Kafka" in cmd and str(data_dir) in cmd:
            found.append(p)
    return found


def _listening(procs: list[psutil.Process]) -> set[str]:
    """The addresses the stack's processes listen on (TCP)."""
    found = set()
    for p in procs:
        try:
            found |= {
                c.laddr.ip.removeprefix("::ffff:")
                for c in p.net_connections(kind="inet")
                if c.status == psutil.CONN_LISTEN
            }
        except psutil.NoSuchProcess:
            pass
    return found


def _readable_by_others(root: Path) -> list[str]:
    bad = [
        f"{p} {oct(p.stat().st_mode)}"
        for p in [root, *root.rglob("*")]
        if not p.is_symlink() and p.stat().st_mode & 0o077
    ]
    assert len(list(root.rglob("*.log"))) >= 2  # the scan saw the stack's files
    return bad


def _stop_and_check_clean(proc: subprocess.Popen, data_dir: Path) -> None:
    seen = _descendants(proc) + _java_of(data_dir)
    assert any("kafka.Kafka" in " ".join(p.cmdline()) for p in seen), "no broker was running"
    proc.send_signal(signal.SIGINT)
    assert proc.wait(60) == 0
    time.sleep(0.5)
    alive = [p for p in seen if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert alive == [], f"left behind: {[p.cmdline() for p in alive]}"


def test_up_demo_serves_pageviews_stops_clean_and_keeps_data(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = _env(data_dir)
    url = f"http://127.0.0.1:{env['MAYAK_DASHBOARDS_PORT']}/api/stats/summary?site=demo"

    started = time.monotonic()
    proc = _run_up(env, tmp_path / "up1.log", demo=True)
    first = _pageviews(url, started + 90, data_dir)
    assert first > 0, (tmp_path / "up1.log").read_text()
    assert _listening(_descendants(proc) + _java_of(data_dir)) == {"127.0.0.1"}
    _stop_and_check_clean(proc, data_dir)
    assert "API token for the dashboards (role product)" in (tmp_path / "up1.log").read_text()
    assert _readable_by_others(data_dir) == []  # Kafka segments, chDB parts, keys, logs

    # no demo the second time: every pageview it reports was stored by the first run
    proc = _run_up(env, tmp_path / "up2.log", demo=False)
    second = _pageviews(url, time.monotonic() + 90, data_dir)
    assert second >= first
    _stop_and_check_clean(proc, data_dir)
