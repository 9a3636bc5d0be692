"""mayak/supervise.py: children of a killed `mayak up` stop, and the next run cleans up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import orjson
import psutil
import pytest

from mayak.errors import MayakError
from mayak.supervise import SUPERVISOR_ENV, forget, record, take_over

CHILD = "import time; from mayak.supervise import die_with_supervisor as d; d(); time.sleep(60)"


def test_a_child_stops_when_its_supervisor_is_sigkilled() -> None:
    # a stand-in supervisor that starts one child the way mayak up does, and prints its pid
    supervisor = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
        import os, subprocess, sys, time
        env = {{**os.environ, "{SUPERVISOR_ENV}": str(os.getpid())}}
        child = subprocess.Popen([sys.executable, "-c", {CHILD!r}], env=env)
        print(child.pid, flush=True)
        time.sleep(60)
        """),
        ],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    child = psutil.Process(int(supervisor.stdout.readline()))
    assert child.is_running()
    supervisor.send_signal(signal.SIGKILL)
    supervisor.wait()
    child.wait(10)  # raises TimeoutExpired if it outlives its supervisor


def test_the_next_run_stops_leftovers_and_adopts_the_broker(tmp_path: Path) -> None:
    leftover = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        record(tmp_path, {"worker": leftover}, owns_broker=True)
        state = orjson.loads((tmp_path / "up.json").read_bytes())
        # as if written by a supervisor that has died since: a pid no process has
        state["supervisor"] = {"pid": 2**22 + 1, "created": 0.0}
        (tmp_path / "up.json").write_bytes(orjson.dumps(state))
        assert take_over(tmp_path, log=lambda _: None) is True
        leftover.wait(5)  # stopped (reaped by take_over: no exit status left here)
    finally:
        leftover.kill()
    forget(tmp_path)
    assert take_over(tmp_path) is False  # nothing recorded: nothing to do


def test_a_running_supervisor_is_not_taken_over(tmp_path: Path) -> None:
    record(tmp_path, {}, owns_broker=False)  # this process plays the running mayak up
    with pytest.raises(MayakError, match="another `mayak up`"):
        take_over(tmp_path)
