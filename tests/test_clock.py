"""The one clock (``mayak/clock.py``) and its test double (``tests/clock.py``)."""

from __future__ import annotations

import ast
import asyncio
import re
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from mayak.clock import SYSTEM_CLOCK, Clock, epoch_ms
from tests.clock import NOW, FakeClock, clear_of_midnight_utc

ROOT = Path(__file__).resolve().parents[1]


def test_the_system_clock_tells_aware_utc_time_and_monotonic_seconds() -> None:
    before = datetime.now(UTC)
    now = SYSTEM_CLOCK.now()
    assert now.tzinfo is not None and now.utcoffset() == timedelta(0)
    assert before <= now <= datetime.now(UTC)
    first = SYSTEM_CLOCK.monotonic()
    assert SYSTEM_CLOCK.monotonic() >= first
    assert abs(epoch_ms(SYSTEM_CLOCK) - time.time() * 1000) < 1000


def test_the_system_clock_sleeps_for_real_both_ways() -> None:
    started = time.monotonic()
    asyncio.run(SYSTEM_CLOCK.sleep(0.05))
    SYSTEM_CLOCK.sleep_blocking(0.05)
    assert time.monotonic() - started >= 0.1


def test_the_fake_clock_stands_still_until_set_or_advanced() -> None:
    clock = FakeClock()
    as_protocol: Clock = clock  # what production code is given (checked by mypy)
    assert as_protocol.now() == NOW and clock.now() == NOW
    assert clock.monotonic() == clock.monotonic()
    mono = clock.monotonic()
    clock.advance(90)
    assert clock.now() == NOW + timedelta(seconds=90) and clock.monotonic() == mono + 90
    clock.advance(days=1)
    assert clock.now() == NOW + timedelta(days=1, seconds=90)
    clock.set(datetime(2027, 1, 1, 4, tzinfo=timezone(timedelta(hours=4))))
    assert clock.now() == datetime(2027, 1, 1, tzinfo=UTC)
    assert clock.now().tzinfo == UTC
    assert clock.monotonic() == mono + 86_490  # a wall clock set is no time passing
    assert epoch_ms(clock) == 1_798_761_600_000


def test_the_fake_clock_sleeps_without_waiting_and_remembers_it() -> None:
    clock = FakeClock(monotonic=5.0)
    started = time.monotonic()
    asyncio.run(clock.sleep(3600))
    clock.sleep_blocking(2.5)
    assert time.monotonic() - started < 1.0
    assert clock.slept == [3600, 2.5] and clock.monotonic() == 3607.5
    assert clock.now() == NOW + timedelta(seconds=3602.5)


def test_the_fake_clock_refuses_naive_times_and_going_back() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        FakeClock(datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="does not go back"):
        FakeClock().advance(-1)


def test_the_clock_module_is_the_bottom_layer() -> None:
    tree = ast.parse((ROOT / "mayak" / "clock.py").read_text())
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported <= {"__future__", "asyncio", "time", "datetime", "typing"}


#: direct reads of the system's time, sleeps included; anything else goes through a Clock
DIRECT = re.compile(
    r"\b(datetime|date)\.(now|utcnow|today)\(|\btime\.(time|time_ns|monotonic|"
    r"monotonic_ns|perf_counter|perf_counter_ns|sleep)\b|\basyncio\.sleep\b"
)
PRODUCTION = (
    "mayak",
    "contract",
    "producers",
    "stream_jobs",
    "warehouse",
    "anonymizer",
    "dashboards",
)
WHY = "real time, not injected"  # the comment that excuses a direct read in its function


def _unexplained_reads(path: Path) -> list[int]:
    """Lines of ``path`` reading the time directly, unless that line or the innermost
    function around it carries the ``WHY`` comment."""
    text = path.read_text()
    lines = text.splitlines()
    functions = [
        (node.lineno, node.end_lineno or node.lineno)
        for node in ast.walk(ast.parse(text))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    ]
    found = []
    for n, line in enumerate(lines, start=1):
        if not DIRECT.search(line.split("#", 1)[0]) or WHY in line:
            continue
        around = [(a, b) for a, b in functions if a <= n <= b]
        first, last = max(around) if around else (n, n)  # the innermost starts last
        if not any(WHY in lines[i - 1] for i in range(first, last + 1)):
            found.append(n)
    return found


def test_production_code_reads_time_only_through_the_clock() -> None:
    unexplained = [
        f"{path.relative_to(ROOT)}:{n}"
        for package in PRODUCTION
        for path in sorted((ROOT / package).rglob("*.py"))
        if path != ROOT / "mayak" / "clock.py" and "node_modules" not in path.parts
        for n in _unexplained_reads(path)
    ]
    assert unexplained == [], f"inject mayak.clock.Clock (or say why not): {unexplained}"


def test_the_guard_sees_a_direct_read_and_accepts_an_explained_one(tmp_path) -> None:
    plain = tmp_path / "plain.py"
    plain.write_text("import time\n\n\ndef f():\n    x = 1\n    return time.monotonic() + x\n")
    assert _unexplained_reads(plain) == [6]
    explained = tmp_path / "explained.py"
    explained.write_text(
        f"import time\n\n\ndef f():\n    # {WHY}: a child process\n"
        "    return time.monotonic()\n\n\ndef g():\n    time.sleep(1)\n"
    )
    assert _unexplained_reads(explained) == [10]


def test_clear_of_midnight_utc_waits_only_when_midnight_is_near() -> None:
    slept: list[float] = []
    noon = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    assert clear_of_midnight_utc(300, lambda: noon, slept.append) == 0.0
    late = datetime(2026, 12, 4, 23, 58, 30, tzinfo=UTC)  # 90 s before midnight
    assert clear_of_midnight_utc(60, lambda: late, slept.append) == 0.0
    assert clear_of_midnight_utc(300, lambda: late, slept.append) == 91.0  # one second past
    baku = datetime(2026, 12, 5, 3, 59, tzinfo=ZoneInfo("Asia/Baku"))  # 23:59 UTC
    assert clear_of_midnight_utc(120, lambda: baku, slept.append) == 61.0
    assert slept == [91.0, 61.0]
