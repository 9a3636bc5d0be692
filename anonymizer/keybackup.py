"""``mayak keys backup|restore``: an encrypted copy of the key store, and a restore that never
brings back a destroyed secret nor overwrites a different one.

Both stores (``KeyStore``, ``KafkaKeyStore``) show their content as ``KeyState`` records
(``snapshot``) and take records back (``write``), so one format serves both: every live
secret (its record key and bytes, in creation order), every record of a destroyed secret
(``gone``: a salt's day, a customer key's index HMAC and key id; no secret material) and
every opt-out (index HMACs). A file is ``MAGIC`` || 12-byte nonce || AES-256-GCM of that JSON
under a key derived from the master secret (``anonymizer.master.keys_backup_key``).

A restore: refuses a backup of another install or of the other kind of store (customer index
keys differ); first carries the backup's destruction records over (and destroys what the
target still holds of them); then writes each live secret unless the target (or the backup)
records it destroyed, its salt is 48 h old, or the target already holds a secret for that
slot (kept, counted as a conflict); then the opt-outs.
"""

from __future__ import annotations

import base64
import os
from collections import Counter
from datetime import date, datetime
from pathlib import Path
from typing import Protocol

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from anonymizer.keyrecords import SALT_LIFETIME, KeyState, day_start, slot_of
from anonymizer.master import keys_backup_key
from mayak.errors import MayakError

MAGIC = b"MAYAK-KEYS-BACKUP-1\n"


class BackupError(MayakError):
    """A backup file cannot be read or restored here; the message says what to do."""


class Restorable(Protocol):
    def snapshot(self) -> KeyState: ...
    def write(self, record_key: str, plain: bytes | None) -> None: ...


def dump(state: KeyState, kind: str, now: datetime) -> dict:
    """The JSON-ready content of a backup."""
    live = sorted(
        (c for slot in state.candidates.values() for c in slot.values()), key=lambda c: c.offset
    )
    return {
        "format": 1,
        "store": kind,
        "taken": now.isoformat(),
        "secrets": [[c.record_key, base64.b64encode(c.secret).decode()] for c in live],
        "gone": sorted(state.gone),
        "opted_out": sorted(state.opted_out),
    }


def seal(content: dict, master: bytes) -> bytes:
    nonce = os.urandom(12)
    return (
        MAGIC + nonce + AESGCM(keys_backup_key(master)).encrypt(nonce, orjson.dumps(content), MAGIC)
    )


def unseal(blob: bytes, master: bytes, source: str) -> dict:
    if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + 28:
        raise BackupError(f"{source} is not a Mayak key backup (or it is cut short)")
    body = blob[len(MAGIC) :]
    try:
        return orjson.loads(AESGCM(keys_backup_key(master)).decrypt(body[:12], body[12:], MAGIC))
    except InvalidTag:
        raise BackupError(
            f"{source} does not decrypt with this master secret: it was taken under another "
            "MAYAK_IP_KEY (or data_dir/keys/producers.key), or the file is damaged -> run the "
            "restore with the master secret of the deployment that took it"
        ) from None


def backup(store: Restorable, kind: str, master: bytes, path: Path, now: datetime) -> dict:
    """Write the encrypted backup (mode 0600, atomically); returns what it holds, in counts."""
    content = dump(store.snapshot(), kind, now)
    partial = path.with_name(path.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(seal(content, master))
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, path)
    return {key: len(content[key]) for key in ("secrets", "gone", "opted_out")}


def load(path: Path, master: bytes, kind: str) -> dict:
    """Read and decrypt a backup for a ``kind`` key store (before opening the store: a failed
    restore must not leave an empty key store behind, which would pass for the real one)."""
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise BackupError(f"cannot read the backup {path}: {exc.strerror}") from None
    content = unseal(blob, master, str(path))
    if content.get("store") != kind:
        raise BackupError(
            f"{path} is a backup of the {content.get('store')!r} key store; this deployment "
            f"uses {kind!r} (MAYAK_KEY_STORE): customer index keys differ between the two"
        )
    content["path"] = str(path)
    return content


def restore(store: Restorable, content: dict, now: datetime) -> dict:
    """Restore a backup's ``content`` (``load``) into ``store``; returns counts of what was
    done and what was not."""
    path = content["path"]
    saved = [(key, base64.b64decode(value)) for key, value in content["secrets"]]
    target = store.snapshot()
    _same_install(target, saved, path)
    report: Counter[str] = Counter()
    gone = target.gone | set(content["gone"])
    for record in sorted(set(content["gone"]) - target.gone):
        store.write(f"gone/{record}", b"")
        report["destroyed_records_added"] += 1
        for have in target.live(slot_of(record) or record):
            if have.record_key == record or slot_of(have.record_key) == record:
                store.write(have.record_key, None)
                report["destroyed_here"] += 1
    written: set[str] = set()
    for record_key, secret in saved:
        slot = slot_of(record_key) or record_key
        if record_key in gone or slot in gone or _expired(slot, now):
            report["not_restored_destroyed"] += 1
            continue
        held = [c for c in target.live(slot) if c.record_key not in gone]
        if held or slot in written:
            same = held and held[0].secret == secret
            report["already_present" if same or slot in written else "kept_existing"] += 1
            continue
        store.write(record_key, secret)
        written.add(slot)
        report["restored"] += 1
    for mac in set(content["opted_out"]) - target.opted_out:
        store.write(f"optout/{mac}", b"1")
        report["opt_outs_restored"] += 1
    return dict(report)


def _same_install(target: KeyState, saved: list[tuple[str, bytes]], path: str) -> None:
    held = target.winner("secret/install-id")
    theirs = [secret for key, secret in saved if key.startswith("secret/install-id/")]
    if held is not None and theirs and held.secret != theirs[0]:
        raise BackupError(
            f"{path} is a backup of another install than this key store holds -> restore it "
            "into an empty key store (a new MAYAK_TOPIC_KEYS or MAYAK_KEYSTORE_PATH)"
        )


def _expired(slot: str, now: datetime) -> bool:
    if not slot.startswith("salt/"):
        return False
    return day_start(date.fromisoformat(slot.split("/")[1])) + SALT_LIFETIME <= now
