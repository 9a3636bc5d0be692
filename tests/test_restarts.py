"""``mayak up`` starts a stopped child again, a bounded number of times (``mayak.restarts``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

import mayak.stack as stack
from mayak.errors import MayakError
from mayak.restarts import RestartPolicy
from mayak.settings import Settings
from tests.clock import FakeClock


def test_restarts_wait_longer_each_time_and_stop_at_the_limit_in_the_window() -> None:
    clock = FakeClock()
    policy = RestartPolicy(limit=3, window_s=600, first_wait_s=1, clock=clock)
    waits = []
    for _ in range(3):
        waits.append(policy.next_wait())
        policy.restarted()
        clock.advance(10)
    assert waits == [1, 2, 4]
    assert policy.next_wait() is None  # a fourth within 10 minutes: give up
    clock.advance(600 - 30 + 1)  # the first restart leaves the window
    assert policy.next_wait() == 4


def _dead(code: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", f"raise SystemExit({code})"])


def test_the_stack_starts_a_stopped_child_again_then_gives_up_on_one_that_keeps_stopping(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spawned: list[list[str]] = []

    def spawn(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
        spawned.append(args)
        return _dead(3)  # the restarted worker stops again at once

    monkeypatch.setattr(stack, "spawn_mayak", spawn)
    monkeypatch.setattr(stack, "record", lambda *a: None)
    clock = FakeClock()
    children = {"worker": _dead(3)}
    children["worker"].wait()
    starts = {"worker": (["worker", "--dashboards"], {})}
    console = Console(record=True, width=200)
    settings = Settings(data_dir=tmp_path)
    with pytest.raises(MayakError, match=r"the worker exited with code 3, 6 times in 10 min"):
        stack._watch(children, settings, starts, None, console, clock=clock)
    assert spawned == [["worker", "--dashboards"]] * 5
    assert clock.slept == [1, 2, 4, 8, 16]  # backing off, not spinning
    out = console.export_text()
    assert "the worker exited with code 3; started it again (restart 1 of at most 5" in out
    assert "restart 5 of at most 5 in 10 min" in out


class _DyingBroker:
    """A broker ``mayak up`` started that is found stopped every time it is looked at."""

    def __init__(self, log_file: Path) -> None:
        self.log_file = log_file
        self.starts = 0

    def pid(self) -> int | None:
        return None

    def start(self, log: object = print) -> None:
        self.starts += 1


def test_the_stack_starts_its_stopped_broker_again_then_gives_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stack, "record", lambda *a: None)
    clock = FakeClock()
    broker = _DyingBroker(tmp_path / "broker.log")
    console = Console(record=True, width=200)
    settings = Settings(data_dir=tmp_path)
    with pytest.raises(
        MayakError, match=r"the Kafka broker stopped 6 times in 10 min; see .*broker.log"
    ):
        stack._watch({}, settings, {}, broker, console, clock=clock)  # type: ignore[arg-type]
    assert broker.starts == 5
    assert clock.slept == [1, 2, 4, 8, 16]
    out = console.export_text()
    assert "the Kafka broker stopped; started it again (restart 1 of at most 5 in 10 min)" in out
