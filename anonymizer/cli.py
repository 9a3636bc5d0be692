"""CLI of the anonymizer: a customer's analytics opt-out (their events then become dead letters),
and the encrypted backup and restore of the key store (``mayak keys backup|restore``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import cast

import typer

from anonymizer import keybackup
from anonymizer.keystore import keystore_exists, keystore_from_settings, keystore_location
from anonymizer.master import load_master_secret
from mayak.clock import SYSTEM_CLOCK
from mayak.errors import MayakError
from mayak.install import refuse_lost_keys
from mayak.settings import Settings

keys_app = typer.Typer(
    help="Back up and restore the anonymizer's key store (encrypted under the master secret).",
    no_args_is_help=True,
)


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
    try:
        for one in ids:
            store.opt_out(one)
    finally:
        store.close()
    typer.echo(f"{len(ids)} customer(s) opted out", err=True)


def opt_in(
    uid: str = typer.Argument(..., help="portal customer id, or - for ids on stdin"),
) -> None:
    """Withdraw a customer's opt-out."""
    settings = Settings()
    refuse_lost_keys(settings)
    store = keystore_from_settings(settings)
    try:
        changed = sum(store.opt_in(one) for one in _uids(uid))
    finally:
        store.close()
    typer.echo(f"{changed} opt-out(s) withdrawn", err=True)


def _master(settings: Settings) -> bytes:
    # never a new random key file here: a backup under it could not be restored anywhere
    if not settings.ip_key and not (settings.data_dir / "keys" / "producers.key").exists():
        raise MayakError(
            "no master secret: set MAYAK_IP_KEY (or restore data_dir/keys/producers.key) to "
            "the deployment's master secret; backups are encrypted under it"
        )
    return load_master_secret(settings.ip_key, settings.data_dir)


@keys_app.command("backup")
def keys_backup(
    file: Path = typer.Argument(..., help="where to write the backup (mode 0600)"),
) -> None:
    """Write an encrypted copy of every secret, destroyed-secret record and opt-out."""
    settings = Settings()
    if not keystore_exists(settings):
        raise MayakError(f"there is no key store at {keystore_location(settings)} to back up")
    store = keystore_from_settings(settings, mint=False)
    try:
        counts = keybackup.backup(
            cast(keybackup.Restorable, store),
            settings.key_store,
            _master(settings),
            file,
            SYSTEM_CLOCK.now(),
        )
    finally:
        store.close()
    typer.echo(f"backed up {counts} to {file}", err=True)


@keys_app.command("restore")
def keys_restore(file: Path = typer.Argument(..., help="a file `mayak keys backup` wrote")) -> None:
    """Restore a backup: never brings back a secret destroyed since, never overwrites one."""
    settings = Settings()
    content = keybackup.load(file, _master(settings), settings.key_store)
    store = keystore_from_settings(settings, mint=False)
    try:
        report = keybackup.restore(cast(keybackup.Restorable, store), content, SYSTEM_CLOCK.now())
    finally:
        store.close()
    typer.echo(f"restored into {keystore_location(settings)}: {report}", err=True)


def register(app: typer.Typer) -> None:
    app.command("opt-out")(opt_out)
    app.command("opt-in")(opt_in)
    app.add_typer(keys_app, name="keys")
