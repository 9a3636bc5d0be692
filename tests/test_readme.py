"""The README is the front door: keep its Quickstart and configuration table true."""

from __future__ import annotations

import re
from pathlib import Path

from typer.main import get_command

from mayak.cli import app
from mayak.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _documented_variables() -> set[str]:
    """Names in the table's first column; "`MAYAK_A_B` / `_C`" also documents MAYAK_A_C."""
    names = set()
    for cell in re.findall(r"^\| (`MAYAK_[^|]+)\|", README, flags=re.MULTILINE):
        first = None
        for token in re.findall(r"`([A-Z_]+)`", cell):
            if token.startswith("MAYAK_"):
                first = token
                names.add(token)
            elif first:
                names.add(first.rsplit("_", 1)[0] + token)
    return names


def test_every_setting_is_in_the_configuration_table() -> None:
    documented = _documented_variables()
    missing = [
        f"MAYAK_{name.upper()}"
        for name in Settings.model_fields
        if f"MAYAK_{name.upper()}" not in documented
    ]
    assert missing == []


def test_quickstart_has_exactly_two_commands_and_they_exist() -> None:
    quickstart = README.split("## Quickstart", 1)[1].split("##", 1)[0]
    block = quickstart.split("```bash", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in block.strip().splitlines()]
    assert len(commands) == 2
    assert commands[0].endswith("mayak up --demo")
    # CI runs exactly the README's test command
    ci_steps = [
        line.removeprefix("exec ").strip()
        for line in (ROOT / ".ci/run").read_text().splitlines()
        if line.strip() and not line.startswith(("#", "set ", "cd "))
    ]
    assert [step.strip() for step in commands[1].split("&&")] == ci_steps
    for command in commands:
        script = command.split("&&")[0].split()[1]
        assert (ROOT / script).exists(), script


def test_every_command_in_the_commands_table_exists() -> None:
    top = get_command(app).commands  # type: ignore[attr-defined]
    section = README.split("## Commands", 1)[1].split("\n## ", 1)[0]
    for name in re.findall(r"^\| `mayak ([a-z-]+)", section, flags=re.MULTILINE):
        assert name in top, f"README names `mayak {name}`, which does not exist"
