"""The import contracts (.importlinter): the tree keeps them, and breaking them fails.

``lint-imports`` runs on the real tree, then on copies with one planted import each: a cycle
between packages, an import that skips layers upward (hidden in a function), a stream job
importing the dashboards beside it, and a cycle inside a package. Each copy must fail and
name the planted import. No Kafka, no ClickHouse: import-linter only reads the source.
"""

from __future__ import annotations

import configparser
import os
import pkgutil
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")


def _config() -> configparser.ConfigParser:
    config = configparser.ConfigParser()
    config.read(ROOT / ".importlinter")
    return config


def _lines(value: str) -> list[str]:
    return [
        line.strip()
        for line in value.splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]


ROOTS = _lines(_config()["importlinter"]["root_packages"])


def _lint(tree: Path) -> subprocess.CompletedProcess:
    assert LINT.exists(), f"{LINT} is missing -> pip install -e '.[test]'"
    return subprocess.run(
        [str(LINT), "--no-cache", str(tree / ".importlinter")],
        cwd=tree,
        env={**os.environ, "PYTHONPATH": str(tree)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def _not_source(folder: str, names: list[str]) -> list[str]:
    return [
        name
        for name in names
        if name in ("node_modules", "__pycache__")
        or not (name.endswith(".py") or (Path(folder) / name).is_dir())
    ]


def _copy(tmp_path: Path) -> Path:
    """The packages' Python files and the contracts, nothing else (no node_modules, data)."""
    tree = tmp_path / "tree"
    for package in ROOTS:
        shutil.copytree(ROOT / package, tree / package, ignore=_not_source)
    shutil.copy(ROOT / ".importlinter", tree / ".importlinter")
    return tree


def test_the_tree_keeps_its_import_contracts() -> None:
    done = _lint(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Contracts: 2 kept, 0 broken." in done.stdout


PLANTED = {
    # the warehouse <-> dashboards cycle issue 18 removed, back as the old admin import
    "a cycle between packages": (
        "warehouse/erasure.py",
        "\nfrom dashboards.auth import cli_token_path  # noqa\n",
        [r"warehouse\.erasure -> dashboards\.auth"],
    ),
    # the foundation reaching the top, hidden inside a function as the old code did
    "a layer skipped upward": (
        "mayak/errors.py",
        "\n\ndef _late():\n    from mayak.stack import run_stack  # noqa\n",
        [r"mayak\.errors -> mayak\.stack"],
    ),
    # independent siblings: the worker once imported the dashboards it serves
    "stream jobs importing the dashboards": (
        "stream_jobs/worker.py",
        "\nfrom dashboards.app import create_app as _dash  # noqa\n",
        [r"stream_jobs\.worker -> dashboards\.app"],
    ),
    # warehouse.product builds on warehouse.goals; goals once imported product back
    "a cycle inside a package": (
        "warehouse/goals.py",
        "\n\ndef _late():\n    from warehouse.product import funnel  # noqa\n",
        ["No cycles are allowed in warehouse", r"\.(goals|product) -> \.(product|goals)"],
    ),
}


@pytest.mark.parametrize("case", PLANTED)
def test_a_planted_import_breaks_a_contract_and_is_named(tmp_path, case) -> None:
    module, planted, named = PLANTED[case]
    tree = _copy(tmp_path)  # a copy of the tree, which keeps the contracts (test above)
    with (tree / module).open("a") as file:
        file.write(planted)
    done = _lint(tree)
    assert done.returncode == 1, done.stdout
    assert "BROKEN" in done.stdout
    for pattern in named:  # the import that broke it, which the real tree does not have
        assert re.search(pattern, done.stdout), done.stdout


def test_every_package_is_a_root_and_every_mayak_module_has_a_layer() -> None:
    """A new top-level package or a new module of ``mayak`` (split over several layers) must
    be placed in .importlinter, else nothing would check what it imports or who imports it."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    include = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    shipped = {pattern.rstrip("*") for pattern in include}
    assert set(ROOTS) == shipped
    layers = _lines(_config()["importlinter:contract:layers"]["layers"])
    named = {name.strip("() ") for layer in layers for name in re.split(r"[|:]", layer)}
    modules = {f"mayak.{m.name}" for m in pkgutil.iter_modules([str(ROOT / "mayak")])}
    assert modules - named == set(), "place these in a layer of .importlinter"
