"""The suite's two lanes under ``pytest -n 2`` (``tests/lanes.py``): planted tests run in a
child pytest with the project's scheduler, and say which xdist worker ran them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.lanes import OUTAGE_MODULES
from tests.test_tiers import INI  # the markers a planted run knows

ROOT = Path(__file__).resolve().parents[1]
OUTAGE_MODULE = sorted(OUTAGE_MODULES)[0]

RECORDING = """
import os
import pytest


def _record(name):
    with open(os.environ["LANES_LOG"], "a") as log:
        log.write(f"{{os.environ.get('PYTEST_XDIST_WORKER', '-')}} {{name}}\\n")

{tests}
"""

CONFTEST = """
from tests.lanes import pytest_xdist_make_scheduler
from tests.tiers import pytest_collection_modifyitems
"""


def _plant(root: Path, path: str, names: list[str], long_outage: str = "") -> None:
    tests = "\n".join(
        ("@pytest.mark.long_outage\n" if name == long_outage else "")
        + f"def {name}():\n    _record({name!r})\n"
        for name in names
    )
    file = root / path
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(RECORDING.format(tests=tests))


def _run(root: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], list[list[str]]]:
    (root / "conftest.py").write_text(CONFTEST)
    (root / "pytest.ini").write_text(INI)
    log = root / "lanes.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LANES_LOG": str(log)}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--import-mode=importlib",
         "-q", *args],
        cwd=root, env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    ran = [line.split() for line in log.read_text().splitlines()] if log.exists() else []
    return done, ran


def test_outages_run_in_one_worker_and_everything_else_in_order_in_the_other(
    tmp_path: Path,
) -> None:
    _plant(tmp_path, OUTAGE_MODULE, ["test_ten_s", "test_five_min"], long_outage="test_five_min")
    _plant(tmp_path, "tests/test_a.py", [f"test_a{i}" for i in range(6)])
    _plant(tmp_path, "tests/zz/test_b.py", [f"test_b{i}" for i in range(6)])
    done, ran = _run(tmp_path, "-n", "2")
    assert done.returncode == 0, done.stdout + done.stderr
    workers = {name: worker for worker, name in ran}
    assert len(workers) == 14, ran
    outage_lane = {workers["test_ten_s"], workers["test_five_min"]}
    main_names = [f"test_a{i}" for i in range(6)] + [f"test_b{i}" for i in range(6)]
    main_lane = {workers[name] for name in main_names}
    assert len(outage_lane) == 1 and len(main_lane) == 1 and outage_lane != main_lane, ran
    main_order = [name for worker, name in ran if worker in main_lane]
    assert main_order == main_names


def test_a_long_outage_test_outside_the_outage_lane_stops_the_run(tmp_path: Path) -> None:
    _plant(tmp_path, "tests/test_a.py", ["test_quick", "test_hours"], long_outage="test_hours")
    done, ran = _run(tmp_path)
    assert done.returncode != 0 and ran == [], done.stdout + done.stderr
    assert "tests/test_a.py::test_hours are long_outage tests outside the outage lane" in (
        done.stdout + done.stderr
    )
    assert "OUTAGE_MODULES in tests/lanes.py" in done.stdout + done.stderr
