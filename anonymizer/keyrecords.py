"""The records of the shared key store's topic and what a store knows after reading them.

Pure: no Kafka here (``anonymizer.keystore_kafka`` feeds records in), so the rules are
unit-tested with plain calls. A record key is ASCII, ``/``-separated:

* ``secret/<name>/<nonce>``, ``salt/<yyyy-mm-dd>/<nonce>``, ``cust/<uid hmac hex>/<nonce>``:
  a **candidate** for the slot before the nonce (``salt/2026-11-28``). Two stores racing to
  create one slot each write a candidate under its own key; the live candidate with the
  lowest offset wins. Compaction keeps the last value per record key and never changes
  offsets, so the winner stays the winner after compaction (a single record key per slot,
  "first write wins", would become "last write wins" once compacted).
* ``gone/<candidate key>``: that candidate was destroyed (erasure, loser clean-up);
  ``gone/salt/<day>``: the day's salt was destroyed and is never created again. Markers hold
  no secret and are never deleted, so a restore cannot bring a destroyed secret back.
* ``optout/<uid hmac hex>``: the customer opted out (a tombstone withdraws it).
* ``hb``: a heartbeat; appending is what makes the broker close a segment (compaction only
  cleans closed ones).

A value is AES-256-GCM (12-byte random nonce || ciphertext || tag) under a key derived from
the master secret, with the record key as associated data: a value cannot be moved to
another slot, and a topic written under another master secret is refused, not misread.
A ``None`` value is a tombstone (the record is deleted).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from mayak.errors import MayakError

SALT_LIFETIME = timedelta(hours=48)
HEARTBEAT = "hb"
_AAD = b"mayak.keys.v1|"
CANDIDATE_KINDS = ("secret", "salt", "cust")


class SaltExpired(LookupError):
    """The salt of that day was destroyed (or is due to be): its visitor ids cannot be made."""


def day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


class WrongMasterKey(MayakError):
    """A record (or backup) does not decrypt: it was written under another master secret."""


class KeyStoreUnavailable(MayakError):
    """The shared key store could not write a new secret (or read it back) within its bound:
    the events that need it must not be enriched without it, nor be dropped. The worker stops
    without committing them and enriches them again when it is started."""


class RecordCipher:
    """Encrypts and decrypts record values, bound to their record keys."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def seal(self, record_key: str, plain: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, plain, _AAD + record_key.encode())

    def open(self, record_key: str, value: bytes) -> bytes:
        try:
            return self._aead.decrypt(value[:12], value[12:], _AAD + record_key.encode())
        except (InvalidTag, ValueError):
            raise WrongMasterKey(
                f"the key store record {record_key!r} does not decrypt with this master secret"
                " -> every worker must use the same MAYAK_IP_KEY (or the same"
                " data_dir/keys/producers.key); start this process with the deployment's key"
            ) from None


def slot_of(record_key: str) -> str | None:
    """``salt/2026-11-28`` for ``salt/2026-11-28/<nonce>``; None if not a candidate."""
    kind = record_key.partition("/")[0]
    if kind not in CANDIDATE_KINDS:
        return None
    slot, sep, nonce = record_key.rpartition("/")
    return slot if sep and nonce and "/" in slot else None


@dataclass(frozen=True)
class Candidate:
    record_key: str
    offset: int
    secret: bytes


@dataclass
class KeyState:
    """What a store knows after reading the topic up to ``next_offset``."""

    candidates: dict[str, dict[str, Candidate]] = field(default_factory=dict)
    gone: set[str] = field(default_factory=set)
    opted_out: set[str] = field(default_factory=set)
    next_offset: int = 0

    def apply(self, offset: int, record_key: str, plain: bytes | None) -> None:
        """Take in one record (``plain``: its decrypted value, None for a tombstone)."""
        self.next_offset = max(self.next_offset, offset + 1)
        kind = record_key.partition("/")[0]
        if kind == "gone":
            if plain is not None:
                self.gone.add(record_key.removeprefix("gone/"))
                self._drop(record_key.removeprefix("gone/"))
            return
        if kind == "optout":
            mac = record_key.removeprefix("optout/")
            (self.opted_out.add if plain is not None else self.opted_out.discard)(mac)
            return
        slot = slot_of(record_key)
        if slot is None:
            return  # heartbeat, or a kind a newer version writes
        if plain is None or record_key in self.gone or slot in self.gone:
            self._drop(record_key)
        else:
            self.candidates.setdefault(slot, {})[record_key] = Candidate(record_key, offset, plain)

    def _drop(self, record_key: str) -> None:
        slot = slot_of(record_key)
        if slot is None:  # gone/salt/<day>: the whole slot
            slot = record_key
            for key in list(self.candidates.get(slot, {})):
                self._drop(key)
            return
        live = self.candidates.get(slot)
        if live is not None:
            live.pop(record_key, None)
            if not live:
                del self.candidates[slot]

    def winner(self, slot: str) -> Candidate | None:
        """The slot's live candidate with the lowest offset (what every store answers)."""
        live = self.candidates.get(slot)
        return min(live.values(), key=lambda c: c.offset) if live else None

    def live(self, slot: str) -> list[Candidate]:
        return sorted(self.candidates.get(slot, {}).values(), key=lambda c: c.offset)

    def slots(self, kind: str) -> list[str]:
        return [slot for slot in self.candidates if slot.startswith(kind + "/")]
