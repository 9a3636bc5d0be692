"""The SQLite key store's rows as the shared store's records, and back.

``mayak keys backup|restore`` (``anonymizer.keybackup``) reads and writes one form for both
key stores: the record names of the shared store (``anonymizer.keyrecords``: ``secret/``,
``salt/``, ``cust/``, ``gone/``, ``optout/``). ``SqliteRecords`` translates the SQLite
store's tables (``anonymizer.keystore``) to that form and back; nothing else does.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading

from anonymizer.keyrecords import KeyState


class SqliteRecords:
    """Part of ``KeyStore``: its rows as ``KeyState`` records (``snapshot``) and one record
    written back as rows (``write``), over the store's connection, under its lock."""

    _db: sqlite3.Connection
    _lock: threading.Lock

    def snapshot(self) -> KeyState:
        """Every secret, destroyed-secret record and opt-out, as ``KeyState`` records."""
        state, offset = KeyState(), 0
        with self._lock:
            rows = [
                *((f"secret/{n}", v) for n, v in self._db.execute("SELECT * FROM secrets")),
                *((f"salt/{d}", v) for d, v in self._db.execute("SELECT * FROM salts")),
                *(
                    (f"cust/{bytes(m).hex()}", v)
                    for m, v in self._db.execute("SELECT * FROM customer_keys")
                ),
            ]
            gone = [f"salt/{d}" for (d,) in self._db.execute("SELECT * FROM destroyed_salts")]
            gone += [f"cust/{bytes(m).hex()}/{k}" for m, k in self._db.execute(_ERASED)]
            outs = [bytes(m).hex() for (m,) in self._db.execute("SELECT * FROM opt_outs")]
        for slot, value in rows:
            offset += 1
            state.apply(offset, f"{slot}/{key_id(bytes(value))}", bytes(value))
        for record_key in gone:
            state.apply(offset := offset + 1, f"gone/{record_key}", b"")
        for mac in outs:
            state.apply(offset := offset + 1, f"optout/{mac}", b"")
        return state

    def write(self, record_key: str, plain: bytes | None) -> None:
        """Store one record of ``snapshot``'s form (restore); existing rows are kept. ``None``
        deletes the candidate's row (a secret the backup says was destroyed)."""
        kind, name, *rest = record_key.split("/")
        if plain is None and kind in ("salt", "cust"):
            column = "day" if kind == "salt" else "uid_mac"
            table = "salts" if kind == "salt" else "customer_keys"
            with self._lock:
                self._db.execute(
                    f"DELETE FROM {table} WHERE {column} = ?",
                    (name if kind == "salt" else bytes.fromhex(name),),
                )
            return
        sql = {
            "secret": "INSERT OR IGNORE INTO secrets VALUES (?, ?)",
            "salt": "INSERT OR IGNORE INTO salts VALUES (?, ?)",
            "optout": "INSERT OR IGNORE INTO opt_outs VALUES (?)",
        }
        with self._lock:
            if kind == "cust":
                self._db.execute(
                    "INSERT OR IGNORE INTO customer_keys VALUES (?, ?)",
                    (bytes.fromhex(name), plain),
                )
            elif kind == "optout":
                self._db.execute(sql[kind], (bytes.fromhex(name),))
            elif kind in sql:
                self._db.execute(sql[kind], (name, plain))
            elif kind == "gone" and name == "salt":
                self._db.execute("INSERT OR IGNORE INTO destroyed_salts VALUES (?)", (rest[0],))
            elif kind == "gone" and name == "cust":
                self._db.execute(_ERASE_ID, (bytes.fromhex(rest[0]), rest[1]))


_ERASED = "SELECT uid_mac, key_id FROM erased_keys"
_ERASE_ID = "INSERT OR IGNORE INTO erased_keys VALUES (?, ?)"


def key_id(secret: bytes) -> str:
    """A short public id of a secret (a hash: it reveals nothing of the secret)."""
    return hashlib.sha256(b"mayak.key-id|" + secret).hexdigest()[:16]
