"""CLI of the anonymizer: a customer's analytics opt-out (their events then become dead letters)."""

from __future__ import annotations

import sys

import typer

from anonymizer.keystore import keystore_from_settings
from mayak.install import refuse_lost_keys
from mayak.settings import Settings


def _uids(uid: str) -> list[str]:
    # "-" reads ids from stdin, one per line, so they stay out of shell history and `ps`
    if uid == "-":
        return [line.strip() for line in sys.stdin if line.strip()]
    return [uid]


def opt_out(
    uid: str = typer.Argument(..., help="portal customer id, or - for ids on stdin"),
) -> None:
    """Stop counting a customer: their events become dead letters (reason `consent`) from now on."""
    settings = Settings()
    refuse_lost_keys(settings)  # never a new key store beside an earlier install's data
    store = keystore_from_settings(settings)
    ids = _uids(uid)
    for one in ids:
        store.opt_out(one)
    typer.echo(f"{len(ids)} customer(s) opted out", err=True)


def opt_in(
    uid: str = typer.Argument(..., help="portal customer id, or - for ids on stdin"),
) -> None:
    """Withdraw a customer's opt-out."""
    settings = Settings()
    refuse_lost_keys(settings)
    store = keystore_from_settings(settings)
    changed = sum(store.opt_in(one) for one in _uids(uid))
    typer.echo(f"{changed} opt-out(s) withdrawn", err=True)


def register(app: typer.Typer) -> None:
    app.command("opt-out")(opt_out)
    app.command("opt-in")(opt_in)
