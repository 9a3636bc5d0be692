"""``mayak up`` starts a stopped child again, a bounded number of times (``mayak.restarts``)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

import mayak.stack as stack
from mayak.errors import MayakError
from mayak.kafka_local import LocalBroker
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


@pytest.mark.kafka  # the real LocalBroker.start: it would start Java if the port were free
def test_a_broker_whose_port_is_taken_is_tried_again_then_the_stack_says_why_it_gave_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real LocalBroker, stopped, while another program listens on its port: every
    restart fails before Java starts; each failure counts and waits, and the last message
    names the port (not only "stopped 6 times")."""
    monkeypatch.setattr(stack, "record", lambda *a: None)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        broker = LocalBroker(home=tmp_path / "kafka", cache_dir=tmp_path / "jars", port=port)
        clock, console = FakeClock(), Console(record=True, width=300)
        with pytest.raises(MayakError) as raised:
            stack._watch({}, Settings(data_dir=tmp_path), {}, broker, console, clock=clock)
    message = str(raised.value)
    assert "the Kafka broker stopped 6 times in 10 min" in message
    assert f"the last start failed: port {port} is taken by another program" in message
    assert "MAYAK_KAFKA_BOOTSTRAP" in message  # what to do next
    assert clock.slept == [1, 2, 4, 8, 16]  # each failed start waited, as a restart does
    out = console.export_text()
    assert out.count(f"could not start the Kafka broker again (port {port} is taken") == 5
    assert "attempt 5 of at most 5 in 10 min" in out
    assert not (tmp_path / "jars").exists()  # it never got as far as fetching Kafka


class _PortFreedBroker:
    """A broker whose first two starts find the port taken; the third starts it."""

    def __init__(self, log_file: Path) -> None:
        self.log_file = log_file
        self.starts = 0
        self.running_polls = 0

    def pid(self) -> int | None:
        if self.starts < 3:
            return None
        self.running_polls += 1
        if self.running_polls > 3:
            raise KeyboardInterrupt  # the operator's Ctrl-C ends the watch
        return 4242

    def start(self, log: object = print) -> None:
        self.starts += 1
        if self.starts < 3:
            raise MayakError("port 9092 is taken by another program: stop it")


def test_a_broker_restart_that_fails_until_the_port_is_free_brings_the_broker_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stack, "record", lambda *a: None)
    clock, console = FakeClock(), Console(record=True, width=300)
    broker = _PortFreedBroker(tmp_path / "broker.log")
    with pytest.raises(KeyboardInterrupt):
        stack._watch({}, Settings(data_dir=tmp_path), {}, broker, console, clock=clock)  # type: ignore[arg-type]
    assert broker.starts == 3 and broker.running_polls > 3  # back, and watched again
    assert clock.slept == [1, 2, 4]
    out = console.export_text()
    assert out.count("could not start the Kafka broker again (port 9092 is taken") == 2
    assert "the Kafka broker stopped; started it again (restart 3 of at most 5" in out
