"""``mayak retention show|check``: the retention schedule and the TTLs deployed from it.

(Erasure, export, campaign sends and API tokens are the dashboards' admin commands:
``dashboards/cli.py``.) ``mayak`` imports every package's cli module at start, so each command
imports its work when it runs.
"""

from __future__ import annotations

import typer
from rich.console import Console

from mayak.errors import MayakError
from mayak.settings import Settings

console = Console(stderr=True)


def register(app: typer.Typer) -> None:
    retention_app = typer.Typer(
        help="The retention schedule (warehouse/retention.toml).", no_args_is_help=True
    )
    app.add_typer(retention_app, name="retention")

    @retention_app.command("show")
    def retention_show() -> None:
        """Print every table's purposes, periods and the TTL they render to."""
        from warehouse.retention import load_schedule

        schedule = load_schedule()
        for table, spec in schedule.tables.items():
            rules = ", ".join(
                f"{r.purpose} {r.keep}" + (f" [{r.where}]" if r.where else "") for r in spec.rules
            )
            console.print(f"[bold]{table}[/]: {rules}")
        for table, why in schedule.exempt.items():
            console.print(f"[bold]{table}[/]: no TTL ({why})")

    @retention_app.command("check")
    def retention_check() -> None:
        """Compare the deployed TTLs with the schedule (the worker must be stopped in embedded
        mode)."""
        from warehouse.client import client_from_settings
        from warehouse.retention import check

        problems = check(client_from_settings(Settings()))
        for problem in problems:
            console.print(f"[red]{problem}[/]")
        if problems:
            raise MayakError(
                f"{len(problems)} table(s) differ from warehouse/retention.toml "
                "-> add a migration with ALTER TABLE ... MODIFY TTL {{ttl:TABLE}}"
            )
        console.print("every MergeTree table's TTL matches the schedule")
