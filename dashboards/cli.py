"""``mayak research budget set|show``: the privacy budget of each researcher (issue 15)."""

from __future__ import annotations

import sys

import orjson
import typer
from rich.console import Console

from mayak.settings import Settings

console = Console(stderr=True)


def register(app: typer.Typer) -> None:
    research_app = typer.Typer(help="The research API's privacy budgets.", no_args_is_help=True)
    budget_app = typer.Typer(help="Privacy budget per researcher and period.",
                             no_args_is_help=True)
    app.add_typer(research_app, name="research")
    research_app.add_typer(budget_app, name="budget")

    @budget_app.command("set")
    def budget_set(name: str = typer.Argument(..., help="the researcher's token name"),
                   epsilon: float = typer.Option(..., help="epsilon per period"),
                   delta: float = typer.Option(None, help="delta per period (default: "
                                               "MAYAK_RESEARCH_BUDGET_DELTA)"),
                   period: str = typer.Option("month", help="day, week or month (UTC)")) -> None:
        """Set what a researcher may spend per period (audited; takes effect at once)."""
        from warehouse.admin import backend

        settings = Settings()
        done = backend(settings).set_research_budget(
            name, epsilon, settings.research_budget_delta if delta is None else delta, period)
        sys.stdout.write(orjson.dumps(done).decode() + "\n")
        console.print(f"{name} may spend epsilon={done['epsilon']:g}, "
                      f"delta={done['delta']:g} per {done['period']}")

    @budget_app.command("show")
    def budget_show() -> None:
        """Print every budget set, with what was spent this period, and the default."""
        from warehouse.admin import backend

        shown = backend(Settings()).research_budgets()
        for budget in shown["budgets"]:
            sys.stdout.write(orjson.dumps(budget).decode() + "\n")
        default = shown["default"]
        console.print(f"{len(shown['budgets'])} budget(s) set; everyone else: "
                      f"epsilon={default['epsilon']:g}, delta={default['delta']:g} per month")
