"""``mayak`` commands served by the dashboards' admin side: erasure and export, campaign sends,
API tokens, research budgets. They run through the worker's admin API when it holds the
database, else directly (``dashboards.admin``).

``mayak`` imports every package's cli module at start, so each command imports its work when
it runs: ``mayak --help`` does not load ClickHouse, opendp or the key store.
"""

from __future__ import annotations

import sys
from datetime import date

import orjson
import typer
from rich.console import Console

from mayak.clock import SYSTEM_CLOCK
from mayak.errors import MayakError
from mayak.settings import Settings

console = Console(stderr=True)


def register(app: typer.Typer) -> None:
    campaign_app = typer.Typer(help="E-mail campaigns (marketing).", no_args_is_help=True)
    token_app = typer.Typer(help="API tokens for the dashboards (roles).", no_args_is_help=True)
    research_app = typer.Typer(help="The research API's privacy budgets.", no_args_is_help=True)
    budget_app = typer.Typer(help="Privacy budget per researcher and period.", no_args_is_help=True)
    app.add_typer(campaign_app, name="campaign")
    app.add_typer(token_app, name="token")
    app.add_typer(research_app, name="research")
    research_app.add_typer(budget_app, name="budget")

    @app.command()
    def erase(
        customer: str = typer.Option(..., help="the portal customer id"),
        opt_out: bool = typer.Option(False, help="also drop the customer's future events"),
    ) -> None:
        """Erase every row linked to a customer's pseudonym and destroy their key (audited)."""
        from dashboards.admin import backend

        done = backend(Settings()).erase(customer, opt_out)
        _print_json(done)
        console.print(
            f"erased {sum(done['rows_deleted'].values())} row(s); key "
            f"{'destroyed' if done['key_destroyed'] else 'did not exist'}"
            f"{'; opted out' if done['opted_out'] else ''}"
        )

    @app.command("erase-sweep")
    def erase_sweep() -> None:
        """Delete events that landed with an already-erased pseudonym (in flight during erasure)."""
        from dashboards.admin import backend

        console.print(f"{backend(Settings()).sweep()} late event(s) deleted")

    @app.command()
    def export(customer: str = typer.Option(..., help="the portal customer id")) -> None:
        """Print the customer's pseudonymized events as JSON lines (right of access)."""
        from dashboards.admin import backend

        events = backend(Settings()).export(customer)
        for event in events:
            _print_json(event)
        console.print(f"{len(events)} event(s)")

    @campaign_app.command("send")
    def campaign_send(
        campaign: str = typer.Argument(..., help="campaign id (as in the pixel)"),
        sent: int = typer.Option(..., help="how many messages went out"),
        site: str = typer.Option("elegal"),
        on: str = typer.Option("", help="send date YYYY-MM-DD (default today)"),
    ) -> None:
        """Register how many e-mails a campaign sent (the base of its open rate)."""
        from dashboards.admin import backend
        from dashboards.params import local_today

        settings = Settings()
        # today where the reports are read, as the API's default (the machine's own date, UTC
        # on a server, was the day before between 20:00 and 24:00 UTC for Baku)
        sent_on = _parse_date(on) if on else local_today(settings.report_timezone, SYSTEM_CLOCK)
        _print_json(backend(settings).register_send(site, campaign, sent, sent_on))

    @token_app.command("add")
    def token_add(
        name: str = typer.Option(..., help="who holds it, e.g. ana.product"),
        role: str = typer.Option(..., help="product, marketing, researcher or admin"),
    ) -> None:
        """Create an API token (printed once; only its digest is stored)."""
        from dashboards.auth import add_token, tokens_path

        path = tokens_path(Settings())
        token = add_token(path, name, role)
        console.print(f"token for {name} ({role}) added to {path}; it is shown only now:")
        sys.stdout.write(token + "\n")

    @budget_app.command("set")
    def budget_set(
        name: str = typer.Argument(..., help="the researcher's token name"),
        epsilon: float = typer.Option(..., help="epsilon per period"),
        delta: float = typer.Option(
            None, help="delta per period (default: MAYAK_RESEARCH_BUDGET_DELTA)"
        ),
        period: str = typer.Option("month", help="day, week or month (UTC)"),
    ) -> None:
        """Set what a researcher may spend per period (audited; takes effect at once)."""
        from dashboards.admin import backend

        settings = Settings()
        done = backend(settings).set_research_budget(
            name, epsilon, settings.research_budget_delta if delta is None else delta, period
        )
        _print_json(done)
        console.print(
            f"{name} may spend epsilon={done['epsilon']:g}, "
            f"delta={done['delta']:g} per {done['period']}"
        )

    @budget_app.command("show")
    def budget_show() -> None:
        """Print every budget set, with what was spent this period, and the default."""
        from dashboards.admin import backend

        shown = backend(Settings()).research_budgets()
        for budget in shown["budgets"]:
            _print_json(budget)
        default = shown["default"]
        console.print(
            f"{len(shown['budgets'])} budget(s) set; everyone else: "
            f"epsilon={default['epsilon']:g}, delta={default['delta']:g} per month"
        )


def _parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise MayakError(f"{text!r} is not a date -> use YYYY-MM-DD") from exc


def _print_json(obj: object) -> None:
    sys.stdout.write(orjson.dumps(obj, default=str).decode() + "\n")
