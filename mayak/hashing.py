"""The keyed hash every identifier of Mayak is made with (HMAC-SHA256, 128 bits, hex).

Foundation, beside the settings and the clock: the anonymizer's pseudonyms
(``anonymizer.pseudonym``) and the raw-event contract's Kafka message key
(``contract.crypto.partition_key``) are both this hash, and neither package imports the other.
Parts are joined with a unit separator so that ("ab", "c") and ("a", "bc") never collide.
"""

from __future__ import annotations

import hmac


def keyed_hash(key: bytes, *parts: str) -> str:
    """32 hex chars of HMAC-SHA256(key, parts joined by US). One-shot OpenSSL HMAC; no key is
    cached (customer keys must be forgettable)."""
    return hmac.digest(key, "\x1f".join(parts).encode(), "sha256")[:16].hex()
