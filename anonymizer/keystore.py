"""The key store: every secret the anonymizer needs, kept outside ClickHouse and never logged.

Responsibilities:

* **Daily salts** for cookieless visitor ids. ``salt_for(day)`` creates the salt of a UTC day on
  first use; ``purge_expired(now)`` destroys every salt whose day started 48 h or more ago, so
  a visitor seen on two days cannot be linked. A destroyed salt is never re-created.
* **Per-customer keys** for ``customer_pid``. ``customer_key(uid)`` returns the customer's key,
  creating it on first use; ``forget_customer(uid)`` destroys it (erasure: pseudonyms already
  in the warehouse can no longer be linked to the customer, and the next event of the same
  customer gets a new, unrelated pseudonym).
* **Opt-outs**: ``opt_out(uid)`` / ``is_opted_out(uid)`` / ``opt_in(uid)``.
* **The visitor key** used to pseudonymize first-party cookie ids (consented visitors).

Storage is one SQLite file (mode 0600) with ``secure_delete`` on, so destroyed keys and salts
are overwritten on disk, not just unlinked from the b-tree. Customer ids are never stored in
clear: rows are indexed by an HMAC of the uid under a store-wide index key. SQLite makes the
store safe to share between the worker and the CLI (``mayak erase``) on one host; a
multi-host deployment sets ``MAYAK_KEY_STORE=kafka`` and gets ``KafkaKeyStore``
(``anonymizer.keystore_kafka``), the same methods (``KeyStoreLike``) over a compacted topic.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import sqlite3
import threading
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from anonymizer.keyrecords import SALT_LIFETIME, SaltExpired, day_start
from anonymizer.keystore_records import SqliteRecords, key_id
from anonymizer.master import load_master_secret

if TYPE_CHECKING:
    from mayak.settings import Settings

_SCHEMA = """
CREATE TABLE IF NOT EXISTS secrets (name TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS salts (day TEXT PRIMARY KEY, salt BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS destroyed_salts (day TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS customer_keys (uid_mac BLOB PRIMARY KEY, key BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS opt_outs (uid_mac BLOB PRIMARY KEY);
CREATE TABLE IF NOT EXISTS erased_keys (uid_mac BLOB, key_id TEXT, PRIMARY KEY (uid_mac, key_id));
"""


class KeyStoreLike(Protocol):
    """What every key store offers: ``KeyStore`` (one host) and ``KafkaKeyStore`` (shared)."""

    visitor_key: bytes

    @property
    def install_id(self) -> str: ...
    def salt_for(self, day: date, now: datetime) -> bytes: ...
    def purge_expired(self, now: datetime) -> list[date]: ...
    def salt_days(self) -> list[date]: ...
    def customer_key(self, uid: str) -> bytes: ...
    def has_customer(self, uid: str) -> bool: ...
    def forget_customer(self, uid: str) -> bool: ...
    def opt_out(self, uid: str) -> None: ...
    def opt_in(self, uid: str) -> bool: ...
    def is_opted_out(self, uid: str) -> bool: ...
    def close(self) -> None: ...


class KeyStore(SqliteRecords):
    """Secrets of the anonymizer in one SQLite file; thread-safe, multi-process safe. Its
    rows as the shared store's records (backup, restore): ``anonymizer.keystore_records``."""

    def __init__(self, path: Path | str, *, mint: bool = True) -> None:
        """``mint=False`` (restoring a backup): create no store-wide secret on opening."""
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if not self.path.exists():
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            str(path), timeout=30, check_same_thread=False, isolation_level=None
        )
        self._db.execute("PRAGMA secure_delete = ON")
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.executescript(_SCHEMA)
        if mint:
            self._index_key = self._secret("uid-index")
            self.visitor_key = self._secret("visitor-cookie")

    @property
    def install_id(self) -> str:
        """A random id of this store, also written to ``data_dir/install.id`` (mayak/install.py)
        so that a store lost beside existing data is noticed instead of silently re-created."""
        return self._secret("install-id").hex()[:32]

    def __repr__(self) -> str:  # never show key material
        return f"KeyStore({str(self.path)!r})"

    def close(self) -> None:
        self._db.close()

    # --- store-wide secrets --------------------------------------------------------------
    def _secret(self, name: str) -> bytes:
        return self._get_or_create(
            "SELECT value FROM secrets WHERE name = ?",
            "INSERT OR IGNORE INTO secrets (name, value) VALUES (?, ?)",
            name,
        )

    def _get_or_create(self, select: str, insert: str, key: object) -> bytes:
        with self._lock:
            row = self._db.execute(select, (key,)).fetchone()
            if row is None:
                # INSERT OR IGNORE + re-read: another process may have won the race
                self._db.execute(insert, (key, secrets.token_bytes(32)))
                row = self._db.execute(select, (key,)).fetchone()
            return bytes(row[0])

    # --- daily salts ---------------------------------------------------------------------
    def salt_for(self, day: date, now: datetime) -> bytes:
        """The salt of ``day`` (UTC); raises ``SaltExpired`` once it is 48 h old or destroyed."""
        if day_start(day) + SALT_LIFETIME <= now:
            raise SaltExpired(day.isoformat())
        with self._lock:
            gone = self._db.execute(
                "SELECT 1 FROM destroyed_salts WHERE day = ?", (day.isoformat(),)
            ).fetchone()
        if gone:
            raise SaltExpired(day.isoformat())
        return self._get_or_create(
            "SELECT salt FROM salts WHERE day = ?",
            "INSERT OR IGNORE INTO salts (day, salt) VALUES (?, ?)",
            day.isoformat(),
        )

    def purge_expired(self, now: datetime) -> list[date]:
        """Destroy every salt whose day started ``SALT_LIFETIME`` ago or earlier."""
        with self._lock:
            days = [date.fromisoformat(d) for (d,) in self._db.execute("SELECT day FROM salts")]
            expired = [d for d in days if day_start(d) + SALT_LIFETIME <= now]
            for day in expired:
                self._db.execute(
                    "INSERT OR IGNORE INTO destroyed_salts (day) VALUES (?)", (day.isoformat(),)
                )
                self._db.execute("DELETE FROM salts WHERE day = ?", (day.isoformat(),))
        return expired

    def salt_days(self) -> list[date]:
        """Days whose salt exists now (for operators and tests; never the salts themselves)."""
        with self._lock:
            return sorted(
                date.fromisoformat(d) for (d,) in self._db.execute("SELECT day FROM salts")
            )

    # --- customers -----------------------------------------------------------------------
    def _mac(self, uid: str) -> bytes:
        return hmac.new(self._index_key, uid.encode(), hashlib.sha256).digest()

    def customer_key(self, uid: str) -> bytes:
        """The customer's pseudonym key, created on first use (and again after erasure)."""
        return self._get_or_create(
            "SELECT key FROM customer_keys WHERE uid_mac = ?",
            "INSERT OR IGNORE INTO customer_keys (uid_mac, key) VALUES (?, ?)",
            self._mac(uid),
        )

    def has_customer(self, uid: str) -> bool:
        with self._lock:
            return (
                self._db.execute(
                    "SELECT 1 FROM customer_keys WHERE uid_mac = ?", (self._mac(uid),)
                ).fetchone()
                is not None
            )

    def forget_customer(self, uid: str) -> bool:
        """Destroy the customer's key (erasure). True if a key existed. The key's id (a hash,
        no secret) is kept, so that restoring an older backup cannot bring the key back."""
        mac = self._mac(uid)
        with self._lock:
            row = self._db.execute("SELECT key FROM customer_keys WHERE uid_mac = ?", (mac,))
            for (key,) in row.fetchall():
                self._db.execute(
                    "INSERT OR IGNORE INTO erased_keys VALUES (?, ?)", (mac, key_id(bytes(key)))
                )
            cur = self._db.execute("DELETE FROM customer_keys WHERE uid_mac = ?", (mac,))
            return cur.rowcount > 0

    def opt_out(self, uid: str) -> None:
        """Record that the customer objects to analytics: their events are dead letters from now
        on (reason ``consent``)."""
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO opt_outs (uid_mac) VALUES (?)", (self._mac(uid),)
            )

    def opt_in(self, uid: str) -> bool:
        """Withdraw an opt-out. True if there was one."""
        with self._lock:
            cur = self._db.execute("DELETE FROM opt_outs WHERE uid_mac = ?", (self._mac(uid),))
            return cur.rowcount > 0

    def is_opted_out(self, uid: str) -> bool:
        with self._lock:
            return (
                self._db.execute(
                    "SELECT 1 FROM opt_outs WHERE uid_mac = ?", (self._mac(uid),)
                ).fetchone()
                is not None
            )


def keystore_path(settings: Settings) -> Path:
    """``settings.keystore_path``, else ``data_dir/keys/anonymizer.db``."""
    return (
        Path(settings.keystore_path)
        if settings.keystore_path
        else settings.data_dir / "keys" / "anonymizer.db"
    )


def keystore_from_settings(settings: Settings, mint: bool = True) -> KeyStoreLike:
    """The key store of ``settings.key_store``: this host's SQLite file (``local``), shared by
    the worker, the CLI and ``mayak erase`` on the host; or the compacted topic every worker
    on every host shares (``kafka``, anonymizer/keystore_kafka.py)."""
    if settings.key_store == "kafka":
        from anonymizer.keystore_kafka import KafkaKeyStore  # kafka-python: only when chosen

        return KafkaKeyStore(
            settings.kafka_bootstrap,
            settings.topic_keys,
            load_master_secret(settings.ip_key, settings.data_dir),
            segment_s=settings.key_store_segment_s,
            heartbeat_s=settings.key_store_heartbeat_s,
            timeout_s=settings.key_store_timeout_s,
            mint=mint,
        )
    return KeyStore(keystore_path(settings), mint=mint)


def keystore_location(settings: Settings) -> str:
    """Where the key store lives, for messages to the operator."""
    if settings.key_store == "kafka":
        return f"the Kafka topic {settings.topic_keys} at {settings.kafka_bootstrap}"
    return str(keystore_path(settings))


def keystore_exists(settings: Settings) -> bool:
    """True if the key store holds (or may hold) secrets: the file, or a non-empty topic."""
    if settings.key_store == "kafka":
        from anonymizer.keystopic import topic_has_records

        return topic_has_records(settings.kafka_bootstrap, settings.topic_keys)
    return keystore_path(settings).exists()
