"""``mayak.raw`` values sealed: compressed, then encrypted, so what Kafka keeps is ciphertext.

A raw event carries the full User-Agent, the URL and props before the stream jobs scrub them,
and a server hook's event the portal customer id; the topic keeps them for its retention
(24 h) in the broker's log segments, its replicas and any backup of them. The privacy contract
allows none of these at rest downstream of the collector in clear, so the producers (the
collector's frames, the hooks' events) seal each message value:

    MAGIC (4 bytes) || nonce (12) || AES-256-GCM(zlib(value)) with its 16-byte tag

under ``raw_seal_key`` (derived from the producers' master secret, like the IP cipher key;
associated data ``b"mayak.raw.v1"``). Compressing first keeps the topic as small as the Kafka
client's own compression did (ciphertext does not compress). ``MAGIC`` starts with a NUL
byte, which no JSON text starts with, so a reader tells sealed values from plain ones: plain
values (``mayak replay-failed``, which has no secrets to seal, and producers of an older
version) are read as before.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from anonymizer.master import derive, load_master_secret
from contract.crypto import next_nonce

if TYPE_CHECKING:
    from mayak.settings import Settings

MAGIC = b"\x00MR1"
_AAD = b"mayak.raw.v1"
#: zlib level 1: the frames are repetitive JSON (about 6x smaller at level 1), and the
#: collector pays this per message on its sender thread
LEVEL = 1
#: a sealed value may not inflate past this (Kafka's 1 MB message limit, with room): a forged
#: small value must not decompress into gigabytes
MAX_OPENED = 4 * 1024 * 1024

#: a message value in, a message value out: a sealer or an opener bound to its key, or ``plain``
Transform = Callable[[bytes], bytes]


class SealBroken(ValueError):
    """A sealed value that does not open: another key, tampered, or inflating too far."""


def raw_seal_key(master: bytes) -> bytes:
    """AES-256 key of sealed ``mayak.raw`` values (producers seal, stream jobs open)."""
    return derive(master, b"raw-seal-aes-gcm")


def key_of(settings: Settings) -> bytes:
    """The seal key of the deployment ``settings`` describe (its producers' master secret:
    ``MAYAK_IP_KEY``, else the key file under the data directory)."""
    return raw_seal_key(load_master_secret(settings.ip_key, settings.data_dir))


_aead = functools.lru_cache(maxsize=8)(AESGCM)


def seal(key: bytes, value: bytes) -> bytes:
    """``value`` compressed and encrypted under ``key``, a fresh random nonce each time."""
    nonce = next_nonce()
    return MAGIC + nonce + _aead(key).encrypt(nonce, zlib.compress(value, LEVEL), _AAD)


def is_sealed(value: bytes) -> bool:
    return value[:4] == MAGIC


def unseal(key: bytes, value: bytes) -> bytes:
    """The value ``seal`` sealed; a plain value unchanged. Raises ``SealBroken``."""
    if not is_sealed(value):
        return value
    if len(value) < len(MAGIC) + 12 + 16:
        raise SealBroken("cut short")
    nonce, box = bytes(value[4:16]), bytes(value[16:])
    try:
        packed = _aead(key).decrypt(nonce, box, _AAD)
    except InvalidTag:
        raise SealBroken("sealed under another key, or altered") from None
    inflate = zlib.decompressobj()
    try:
        opened = inflate.decompress(packed, MAX_OPENED)
    except zlib.error:
        raise SealBroken("not zlib inside the seal") from None
    if inflate.unconsumed_tail or not inflate.eof:
        raise SealBroken(f"opens to more than {MAX_OPENED} bytes, or is cut short")
    return opened


def sealer(key: bytes) -> Transform:
    """``seal`` bound to ``key`` (what a producer calls per message)."""
    return functools.partial(seal, key)


def opener(key: bytes) -> Transform:
    """``unseal`` bound to ``key`` (what a reader of ``mayak.raw`` calls per message)."""
    return functools.partial(unseal, key)


def plain(value: bytes) -> bytes:
    """The identity: a reader or producer with no key (tests, tools that hold no secrets)."""
    return value
