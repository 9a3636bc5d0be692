"""``mayak`` commands of the warehouse: erase, export, campaign sends, retention, API tokens."""

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
    retention_app = typer.Typer(help="The retention schedule (warehouse/retention.toml).",
                                no_args_is_help=True)
    token_app = typer.Typer(help="API tokens for the dashboards (roles).", no_args_is_help=True)
    app.add_typer(campaign_app, name="campaign")
    app.add_typer(retention_app, name="retention")
    app.add_typer(token_app, name="token")

    @app.command()
    def erase(customer: str = typer.Option(..., help="the portal customer id"),
              opt_out: bool = typer.Option(False, help="also drop the customer's future events")) -> None:
        """Erase every row linked to a customer's pseudonym and destroy their key (audited)."""
        from warehouse.admin import backend

        done = backend(Settings()).erase(customer, opt_out)
        _print_json(done)
        console.print(f"erased {sum(done['rows_deleted'].values())} row(s); key "
                      f"{'destroyed' if done['key_destroyed'] else 'did not exist'}"
                      f"{'; opted out' if done['opted_out'] else ''}")

    @app.command("erase-sweep")
    def erase_sweep() -> None:
        """Delete events that landed with an already-erased pseudonym (in flight during erasure)."""
        from warehouse.admin import backend

        console.print(f"{backend(Settings()).sweep()} late event(s) deleted")

    @app.command()
    def export(customer: str = typer.Option(..., help="the portal customer id")) -> None:
        """Print the customer's pseudonymized events as JSON lines (right of access)."""
        from warehouse.admin import backend

        events = backend(Settings()).export(customer)
        for event in events:
            _print_json(event)
        console.print(f"{len(events)} event(s)")

    @campaign_app.command("send")
    def campaign_send(campaign: str = typer.Argument(..., help="campaign id (as in the pixel)"),
                      sent: int = typer.Option(..., help="how many messages went out"),
                      site: str = typer.Option("elegal"),
                      on: str = typer.Option("", help="send date YYYY-MM-DD (default today)")) -> None:
        """Register how many e-mails a campaign sent (the base of its open rate)."""
        from warehouse.admin import backend

        # the CLI is the composition root: the system clock, the machine's own date as before
        sent_on = _parse_date(on) if on else SYSTEM_CLOCK.now().astimezone().date()
        _print_json(backend(Settings()).register_send(site, campaign, sent, sent_on))

    @retention_app.command("show")
    def retention_show() -> None:
        """Print every table's purposes, periods and the TTL they render to."""
        from warehouse.retention import load_schedule

        schedule = load_schedule()
        for table, spec in schedule.tables.items():
            rules = ", ".join(f"{r.purpose} {r.keep}" + (f" [{r.where}]" if r.where else "")
                              for r in spec.rules)
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
            raise MayakError(f"{len(problems)} table(s) differ from warehouse/retention.toml "
                             "-> add a migration with ALTER TABLE ... MODIFY TTL {{ttl:TABLE}}")
        console.print("every MergeTree table's TTL matches the schedule")

    @token_app.command("add")
    def token_add(name: str = typer.Option(..., help="who holds it, e.g. ana.product"),
                  role: str = typer.Option(..., help="product, marketing, researcher or admin")) -> None:
        """Create an API token (printed once; only its digest is stored)."""
        from dashboards.auth import add_token, tokens_path

        path = tokens_path(Settings())
        token = add_token(path, name, role)
        console.print(f"token for {name} ({role}) added to {path}; it is shown only now:")
        sys.stdout.write(token + "\n")


def _parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise MayakError(f"{text!r} is not a date -> use YYYY-MM-DD") from exc


def _print_json(obj: object) -> None:
    sys.stdout.write(orjson.dumps(obj, default=str).decode() + "\n")
