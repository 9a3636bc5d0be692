"""What a killed ``mayak up`` leaves behind, and how the next one cleans it up.

A SIGKILLed supervisor runs no ``finally``. So:

* its worker, collector and dashboards ask the kernel for SIGTERM when it dies
  (``die_with_supervisor``, Linux ``PR_SET_PDEATHSIG``), and stop as on Ctrl-C;
* it writes down (``data_dir/up.json``) its children's pids and whether it started the
  broker; the next ``mayak up`` on the same data directory stops children of the dead run
  still running (a SIGTERM that has not finished yet, a non-Linux system, a killed process
  group) before it starts its own (one process can open the chDB path), and takes the broker
  over, stopping it on exit as its own.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import orjson
import psutil

from mayak.errors import MayakError

SUPERVISOR_ENV = "MAYAK_SUPERVISOR_PID"
_PR_SET_PDEATHSIG = 1


def die_with_supervisor(env: Mapping[str, str] = os.environ) -> None:
    """In a child of ``mayak up``: get SIGTERM when the supervisor dies, however it dies."""
    pid = env.get(SUPERVISOR_ENV)
    if not pid or not sys.platform.startswith("linux"):
        return
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != int(pid):  # it died before the prctl above
        os.kill(os.getpid(), signal.SIGTERM)


def _state(data_dir: Path) -> Path:
    return data_dir / "up.json"


def _identity(pid: int) -> dict:
    return {"pid": pid, "created": psutil.Process(pid).create_time()}


def _alive(entry: dict) -> psutil.Process | None:
    with contextlib.suppress(psutil.Error):
        proc = psutil.Process(entry["pid"])
        if (
            abs(proc.create_time() - entry["created"]) < 0.01
            and proc.status() != psutil.STATUS_ZOMBIE
        ):
            return proc  # the same process, not a later one that got the pid
    return None


def record(data_dir: Path, children: dict[str, subprocess.Popen], owns_broker: bool) -> None:
    """Write down this supervisor, its children and whether the broker is its own."""
    entries = {}
    for name, proc in children.items():
        with contextlib.suppress(psutil.Error):
            entries[name] = _identity(proc.pid)
    state = {"supervisor": _identity(os.getpid()), "children": entries, "owns_broker": owns_broker}
    tmp = _state(data_dir).with_suffix(".tmp")
    tmp.write_bytes(orjson.dumps(state))
    os.replace(tmp, _state(data_dir))


def forget(data_dir: Path) -> None:
    _state(data_dir).unlink(missing_ok=True)


def take_over(data_dir: Path, log: Callable[[str], object] = print, timeout: float = 30.0) -> bool:
    """Stop what a dead ``mayak up`` left running; True if the broker was its own."""
    try:
        state = orjson.loads(_state(data_dir).read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        return False
    if _alive(state["supervisor"]):
        raise MayakError(
            f"another `mayak up` (pid {state['supervisor']['pid']}) uses "
            f"{data_dir}; stop it first, or set MAYAK_DATA_DIR"
        )
    left = {
        name: proc
        for name, entry in state["children"].items()
        if (proc := _alive(entry)) is not None
    }
    for name, proc in left.items():
        log(f"stopping the {name} (pid {proc.pid}) of a `mayak up` that was killed")
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    _, still = psutil.wait_procs(list(left.values()), timeout=timeout)
    for proc in still:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(still, timeout=5)
    return bool(state.get("owns_broker"))
