"""scripts/check fails on what it is there to catch, with the project's own configuration.

A tiny project (two packages, ``high`` above ``low``) gets this repository's pyproject.toml
(lint, format and mypy settings) and scripts/check; clean, every step passes; with a lint
error, an untyped public function, a type error, an unformatted file and an import cycle
planted, each step fails and names what it found.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CLEAN = {
    "low/__init__.py": 'def base() -> int:\n    """The bottom layer."""\n    return 1\n',
    "high/__init__.py": "from low import base\n\n\ndef top() -> int:\n    return base() + 1\n",
}
PLANTED = {
    "high/lint.py": "import os\n\nVALUE = 1\n",  # F401: unused import
    "high/untyped.py": "def public(value):\n    return value\n",  # ANN001, ANN201
    "high/wrong.py": 'def count() -> int:\n    return "three"\n',  # mypy: return-value
    "high/shape.py": "VALUE = {'a':1,  'b' :2}\n",  # not ruff-formatted
    "low/cycle.py": "import high\n\nTOP = high.top\n",  # low -> high -> low
}
IMPORTLINTER = """[importlinter]
root_packages =
    high
    low

[importlinter:contract:layers]
name = high above low
type = layers
layers =
    high
    low
"""


def _project(tmp_path: Path, files: dict[str, str]) -> Path:
    """A copy of the project's check configuration around the given packages."""
    (tmp_path / "scripts").mkdir(exist_ok=True)
    shutil.copy2(ROOT / "scripts" / "check", tmp_path / "scripts" / "check")
    pyproject = (ROOT / "pyproject.toml").read_text()
    pyproject, found = re.subn(r"(?m)^include = \[.*\]$", 'include = ["high*", "low*"]', pyproject)
    assert found == 1, "pyproject.toml's [tool.setuptools.packages.find] include moved"
    (tmp_path / "pyproject.toml").write_text(pyproject)
    (tmp_path / ".importlinter").write_text(IMPORTLINTER)
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


def _check(project: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "MAYAK_CHECK_BIN": str(Path(sys.executable).parent),
        "PYTHONPATH": str(project),
    }
    return subprocess.run(
        [str(project / "scripts" / "check")],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_check_passes_a_clean_project_and_fails_each_planted_fault(tmp_path: Path) -> None:
    project = _project(tmp_path, CLEAN)
    clean = _check(project)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "all checks passed" in clean.stdout
    assert clean.stdout.count("    ok") == 4  # ruff check, ruff format, mypy, import contracts

    _project(tmp_path, PLANTED)
    planted = _check(project)
    out = planted.stdout + planted.stderr
    assert planted.returncode == 1, out
    assert "FAILED: ruff check ruff format mypy import contracts" in planted.stderr
    assert re.search(r"F401 .*`os` imported but unused\n --> high/lint\.py:1:8", out), out
    # the untyped public function
    assert re.search(r"ANN201 .* public function `public`\n --> high/untyped\.py:1:5", out), out
    assert re.search(r"ANN001 .* argument `value`\n --> high/untyped\.py:1:12", out), out
    assert re.search(r"high/wrong\.py:2: error: Incompatible return value", out), out
    assert "Would reformat: high/shape.py" in out
    assert re.search(r"low\.cycle -> high", out), out  # the cycle, as an upward import
