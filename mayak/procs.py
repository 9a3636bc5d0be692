"""Child processes of Mayak (worker, collector) for ``mayak up``, tests and benchmarks.

Each child is ``python -m mayak <command>`` with settings passed as ``MAYAK_*`` environment
variables, its output in a log file, stopped with SIGTERM and SIGKILL after a timeout.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import orjson

from mayak.errors import MayakError
from mayak.settings import Settings

if TYPE_CHECKING:
    from mayak.settings import Settings


def spawn_mayak(
    args: list[str], log_path: Path, env: dict[str, str] | None = None
) -> subprocess.Popen:
    """Start ``python -m mayak ARGS`` with ``env`` laid over this process's environment."""
    log_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    log = open(os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab")  # noqa: SIM115
    full_env = {**os.environ, **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "mayak", *args],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=full_env,
        umask=0o077,
    )  # its files (chDB parts, keys) private to the user


def stop_process(proc: subprocess.Popen, timeout: float = 20.0, sig: int = signal.SIGTERM) -> int:
    """Signal ``proc`` and wait; SIGKILL it if it outlives ``timeout``. Returns its exit code."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def wait_http_ok(
    urls: dict[str, str],
    procs: dict[str, subprocess.Popen],
    timeout: float = 120.0,
    logs: Path | None = None,
) -> None:
    """Poll each URL until it answers 200; fail early if one of ``procs`` exits."""
    # real time, not injected: a deadline for child processes, which no fake clock can hurry
    deadline = time.monotonic() + timeout
    pending = dict(urls)
    while pending:
        for name, proc in procs.items():
            if proc.poll() is not None:
                raise MayakError(
                    f"the {name} exited with code {proc.returncode}; see its log "
                    f"in {logs or 'the data directory'}"
                )
        for name, url in list(pending.items()):
            try:
                if httpx.get(url, timeout=1.0).status_code == 200:
                    del pending[name]
            except httpx.HTTPError:
                pass
        if time.monotonic() > deadline:
            raise MayakError(
                f"{', '.join(pending)} did not answer in {timeout:.0f}s; see the "
                f"logs in {logs or 'the data directory'}"
            )
        time.sleep(0.3)


def mayak_sql(query: str, env: dict[str, str] | None = None, timeout: float = 120.0) -> list[dict]:
    """Run ``mayak sql`` in a child process (it opens the chDB path only while it runs)."""
    full_env = {**os.environ, **(env or {})}
    result = subprocess.run(
        [sys.executable, "-m", "mayak", "sql", query],
        capture_output=True,
        env=full_env,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise MayakError(f"mayak sql failed: {result.stderr.decode()[-2000:]}")
    return [orjson.loads(line) for line in result.stdout.splitlines() if line.strip()]


def settings_for(env: dict[str, str]) -> Settings:
    """The Settings a child started with ``env`` will read (parsed exactly as it parses them)."""
    from unittest import mock

    with mock.patch.dict(os.environ, env):
        return Settings()
