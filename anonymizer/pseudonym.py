"""Keyed pseudonyms (HMAC-SHA256, truncated to 128 bits, hex).

Pure functions: every key and salt is passed in. Parts are joined with a unit separator so
that ("ab", "c") and ("a", "bc") never collide.
"""

from __future__ import annotations

import hashlib
import hmac


def keyed_hash(key: bytes, *parts: str) -> str:
    """32 hex chars of HMAC-SHA256(key, parts joined by US): every keyed hash of Mayak (the
    pseudonyms here and the collector's Kafka message key, ``contract.crypto.partition_key``).
    One-shot OpenSSL HMAC; no key is cached (customer keys must be forgettable)."""
    return hmac.digest(key, "\x1f".join(parts).encode(), "sha256")[:16].hex()


def cookieless_visitor_id(daily_salt: bytes, site: str, ip: str, ua: str) -> str:
    """Visitor id without consent: changes every day with the salt, unlinkable once it is gone."""
    return keyed_hash(daily_salt, "cookieless", site, ip, ua)


def cookie_visitor_id(visitor_key: bytes, site: str, vid: str) -> str:
    """Visitor id with consent: a keyed hash of the first-party cookie id (stable across days)."""
    return keyed_hash(visitor_key, "cookie", site, vid)


def customer_pid(customer_key: bytes, uid: str) -> str:
    """Customer pseudonym under the customer's own key; destroying the key erases the link."""
    return keyed_hash(customer_key, "customer", uid)


def session_id(visitor_id: str, start_ms: int) -> str:
    """Session id from the (already pseudonymous) visitor id and the session's first hit.

    Deterministic so that re-processing after a crash yields the same id.
    """
    return hashlib.blake2b(f"{visitor_id}:{start_ms}".encode(), digest_size=12).hexdigest()
