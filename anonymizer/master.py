"""The deployment's 32-byte master secret and the keys derived from it, one per purpose.

Every Mayak process of a deployment shares the master secret (``MAYAK_IP_KEY``, or the key
file ``data_dir/keys/producers.key``): the producers encrypt client IPs with a key derived
from it, the stream jobs decrypt them, and the shared key store (``anonymizer.keystore_kafka``)
encrypts its records and indexes customers with keys derived from it. It lives here, at the
bottom of the layers, so the anonymizer can derive its keys; ``contract.crypto`` re-exports it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path


def load_master_secret(ip_key: str, data_dir: Path) -> bytes:
    """The 32-byte master secret: from ``ip_key`` (base64) or the key file, created if absent."""
    if ip_key:
        raw = base64.b64decode(ip_key)
        if len(raw) != 32:
            raise ValueError("MAYAK_IP_KEY must be 32 bytes, base64-encoded")
        return raw
    path = data_dir / "keys" / "producers.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_bytes(32))
    raw = path.read_bytes()
    if len(raw) != 32:
        raise ValueError(f"{path} must hold exactly 32 bytes")
    return raw


def derive(master: bytes, purpose: bytes) -> bytes:
    """A 32-byte key for one ``purpose``; keys of different purposes are unrelated."""
    return hmac.new(master, b"mayak/" + purpose, hashlib.sha256).digest()


def keystore_cipher_key(master: bytes) -> bytes:
    """AES-256-GCM key of the shared key store's record values."""
    return derive(master, b"keystore-aes-gcm")


def keystore_index_key(master: bytes) -> bytes:
    """HMAC key of the shared key store's record keys (customer ids never appear in clear)."""
    return derive(master, b"keystore-uid-index")


def keys_backup_key(master: bytes) -> bytes:
    """AES-256-GCM key of ``mayak keys backup`` files."""
    return derive(master, b"keys-backup-aes-gcm")
