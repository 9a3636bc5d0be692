"""`mayak research budget set|show` in child processes, going direct to chDB."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.clickhouse


def mayak(tmp_path, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "MAYAK_DATA_DIR": str(tmp_path / "data"),
        "MAYAK_DASHBOARDS_PORT": "9",
    }  # nothing listens there: the CLI must go direct
    done = subprocess.run(
        [sys.executable, "-m", "mayak", *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert (done.returncode == 0) == ok, done.stderr
    return done


def test_budget_set_and_show(tmp_path) -> None:
    done = mayak(
        tmp_path, "research", "budget", "set", "rza", "--epsilon", "2.5", "--period", "week"
    )
    assert json.loads(done.stdout) == {
        "researcher": "rza",
        "epsilon": 2.5,
        "delta": 1e-5,
        "period": "week",
    }
    assert "rza may spend epsilon=2.5" in done.stderr
    assert (
        "period 'year'"
        in mayak(
            tmp_path,
            "research",
            "budget",
            "set",
            "rza",
            "--epsilon",
            "1",
            "--period",
            "year",
            ok=False,
        ).stderr
    )
    shown = mayak(tmp_path, "research", "budget", "show")
    budget = json.loads(shown.stdout)
    assert budget["researcher"] == "rza" and budget["epsilon"] == 2.5
    assert budget["spent_epsilon"] == 0.0 and "everyone else: epsilon=5" in shown.stderr
