"""Keys and the two cryptographic jobs of the producer side.

* ``encrypt_ip`` / ``decrypt_ip``: the client IP crosses Kafka only as AES-256-GCM ciphertext
  (``ip_enc`` = base64 of 12-byte nonce || ciphertext || 16-byte tag, associated data
  ``b"mayak.ip.v1"``). The stream jobs decrypt it with ``ip_cipher_key`` for geo/ISP lookup.
* ``partition_key``: the Kafka message key, a keyed hash (HMAC-SHA256) so one visitor's events
  stay on one partition without the key itself revealing the IP, cookie id or customer id.

Both keys derive from one 32-byte master secret: ``settings.ip_key`` (base64) when set, else a
random one created once under ``data_dir/keys/producers.key`` (mode 0600); loading it and
deriving keys lives in ``anonymizer.master`` (the shared key store derives its keys too).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os
import threading

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from anonymizer.master import derive

_AAD = b"mayak.ip.v1"


def ip_cipher_key(master: bytes) -> bytes:
    """AES-256 key for ``ip_enc`` (what the stream jobs need to decrypt)."""
    return derive(master, b"ip-aes-gcm")


def partition_secret(master: bytes) -> bytes:
    """HMAC key for Kafka message keys."""
    return derive(master, b"partition-key")


# the cipher is built once per key (the collector calls these per event)
_aead = functools.lru_cache(maxsize=8)(AESGCM)


class _Nonces:
    """Random 12-byte GCM nonces, drawn from the OS 4,096 at a time.

    ``os.urandom`` per event released the GIL for its system call, and in the collector the
    Kafka client's threads took it: the request waited for it to come back (py-spy: 16% of
    the event loop's samples under load, for a call that takes 0.4 µs alone). The nonces stay
    uniformly random (never a counter); a lock hands each one out once, and a forked child
    draws its own instead of repeating its parent's."""

    BATCH = 4096

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._pool, self._next = b"", 0

    def take(self) -> bytes:
        with self._lock:
            if self._next >= len(self._pool):
                self._pool, self._next = os.urandom(12 * self.BATCH), 0
            start = self._next
            self._next += 12
            return self._pool[start : start + 12]


_nonces = _Nonces()


def next_nonce() -> bytes:
    """A fresh random 12-byte GCM nonce (from the pool above)."""
    return _nonces.take()


def encrypt_ip(key: bytes, ip: str) -> str:
    """AES-GCM encrypt an IP address; a fresh random nonce each time."""
    nonce = next_nonce()
    return base64.b64encode(nonce + _aead(key).encrypt(nonce, ip.encode(), _AAD)).decode()


def decrypt_ip(key: bytes, blob: str) -> str:
    """Inverse of ``encrypt_ip``; raises ``cryptography.exceptions.InvalidTag`` if tampered."""
    raw = base64.b64decode(blob)
    return _aead(key).decrypt(raw[:12], raw[12:], _AAD).decode()


# the partition secret lives as long as the process (it is not a forgettable customer key), so
# its HMAC state is kept and copied per event
_partition_mac = functools.lru_cache(maxsize=8)(
    lambda secret: hmac.new(secret, digestmod=hashlib.sha256)
)


def partition_key(secret: bytes, *parts: str) -> bytes:
    """Keyed hash of the visitor identity parts, as the Kafka message key (32 hex chars): the
    same bytes as ``keyed_hash(secret, *parts).encode()``.

    Not computed by ``anonymizer.pseudonym.keyed_hash`` itself: its one-shot ``hmac.digest``
    sets up the key and fetches SHA-256 from OpenSSL 3 on every call and releases the GIL
    around it, so on the collector's event loop the Kafka client's threads get in mid-request.
    py-spy put a tenth of the loop's time there (2026-12-02; 1.2% before 820b7ec); a copied HMAC
    state costs half the CPU alone and a third beside a busy thread, and keeps the GIL."""
    mac = _partition_mac(secret).copy()
    mac.update("\x1f".join(parts).encode())
    return mac.hexdigest()[:32].encode()
