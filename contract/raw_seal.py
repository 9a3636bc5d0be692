"""``mayak.raw`` values sealed: compressed, then encrypted, so what Kafka keeps is ciphertext.

A raw event carries the full User-Agent, the URL and props before the stream jobs scrub them,
and a server hook's event the portal customer id; the topic keeps them for its retention
(24 h) in the broker's log segments, its replicas and any backup of them. The privacy contract
allows none of these at rest downstream of the collector in clear, so the producers (the
collector's frames, the hooks' events) seal each message value:

    MAGIC (4 bytes) || nonce (12) || AES-256-GCM(deflate(value, DICTIONARY)) with its 16-byte tag

under ``raw_seal_key`` (derived from the producers' master secret, like the IP cipher key;
associated data ``b"mayak.raw.v1"``; the collector labels its own values ``MAGIC_COLLECTOR``
under other associated data, see there). Compressing first keeps the topic small (ciphertext does
not compress, so the Kafka client's own compression no longer can). ``MAGIC`` starts with a
NUL byte, which no JSON text starts with, so a reader tells sealed values from plain ones:
plain values (``mayak replay-failed``, which has no secrets to seal, and producers of an older
version) are read as before.

Why a preset dictionary: a lightly loaded collector and the hooks send one event per message,
and one event alone hardly compresses (455 bytes of JSON, 351 under zlib), while a batch of
them under the client's gzip had shrunk to a third: the field names, the portal's URLs and the
user agents' common words repeat from event to event, not within one. Raw deflate primed with
``DICTIONARY``, text every raw event is made of, gets one such event to about 180 bytes
(bench traffic: 215 sealed, against 383 with plain zlib), at the same cost per message; the
stream worker fetches 1 MB per partition at a time, so smaller messages are more events per
fetch. ``MAGIC_V1`` values (plain zlib, the first sealed format) still open.
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

MAGIC = b"\x00MR2"
MAGIC_V1 = b"\x00MR1"  # zlib without a dictionary: opened, no longer written
_AAD = b"mayak.raw.v1"
#: ``MAGIC``'s format as the collector seals: its values are made from strictly validated
#: browser events, and the stream worker does not validate them again (``stream_jobs.validate``),
#: while it validates a server hook's (``MAGIC``) in full: an older hook, or a bug in one, is
#: still caught by the worker. The label is bound into the GCM tag by its own associated data:
#: relabelling a hook's value as the collector's (or back) makes it not open.
MAGIC_COLLECTOR = b"\x00MC2"
_AAD_COLLECTOR = b"mayak.raw.collector.v2"
#: deflate level 1: the frames are repetitive JSON (about 6x smaller at level 1), and the
#: collector pays this per message on its sender thread
LEVEL = 1
#: raw deflate (no zlib header and checksum: the GCM tag already proves the bytes), 32 KB window
_WBITS = -15
#: What raw events are made of, the commonest last (deflate reaches the end of its window most
#: cheaply). Part of the format: changing one byte needs a new MAGIC, or old values stop opening.
DICTIONARY = (
    b'"uid":"","campaign":"","recipient":"","service_type":"","route":"/api/","method":"POST",'
    b'"status":200,"duration_ms":,"purpose":"prefetch","sent_at":,"name":"","props":{},'
    b'"type":"email_open","type":"service_request","type":"custom","type":"outbound",'
    b'"vid":"","lang":"az","lang":"ru","lang":"en","consent":"analytics",'
    b'"type":"engagement","engaged_ms":,"scroll_pct":,"sections":{"":,'
    b'"ua":"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like '
    b'Gecko) Version/18.1 Safari/605.1.15","ua":"Mozilla/5.0 (X11; Linux x86_64; rv:133.0) '
    b'Gecko/20100101 Firefox/133.0","ua":"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) '
    b'Gecko/20100101 Firefox/133.0","ua":"Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) '
    b'AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",'
    b'"ua":"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, '
    b'like Gecko) Version/18.1 Mobile/15E148 Safari/604.1","ua":"Mozilla/5.0 (Linux; Android '
    b'10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",'
    b'"ua":"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) '
    b'Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0","ua":"Mozilla/5.0 (Windows NT 10.0; Win64; '
    b'x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",'
    b'"ref":"https://www.google.com/","ref":"https://e-legal.az/","url":"https://e-legal.az/'
    b'services/","section":"services","section":"home","section":"lawyers","section":"blog",'
    b'{"v":1,"id":"-4","type":"pageview","site":"","ts":17,"url":"https://e-legal.az/",'
    b'"ref":"https://","section":"","consent":"none","dnt":false,"gpc":false,'
    b'"ua":"Mozilla/5.0 (","ip_enc":"","received":17'
)
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


def seal(key: bytes, value: bytes, *, collector: bool = False) -> bytes:
    """``value`` compressed and encrypted under ``key``, a fresh random nonce each time;
    labelled as the collector's (``MAGIC_COLLECTOR``) when ``collector``."""
    nonce = next_nonce()
    deflate = zlib.compressobj(LEVEL, zlib.DEFLATED, _WBITS, zdict=DICTIONARY)
    packed = deflate.compress(value) + deflate.flush()
    magic, aad = (MAGIC_COLLECTOR, _AAD_COLLECTOR) if collector else (MAGIC, _AAD)
    return magic + nonce + _aead(key).encrypt(nonce, packed, aad)


def is_sealed(value: bytes) -> bool:
    return value[:4] in (MAGIC, MAGIC_V1, MAGIC_COLLECTOR)


def from_collector(value: bytes) -> bool:
    """Whether ``value`` is labelled as sealed by the collector (whether it opens is
    ``unseal``'s to say)."""
    return value[:4] == MAGIC_COLLECTOR


def opened_from_collector(value: bytes, opened: bytes) -> bool:
    """Whether ``opened``, what an opener made of ``value``, is the collector's value opened
    with the key: ``unseal`` gives a plain value back as it is and ``plain`` (an opener with
    no key) every value, so only a new object was opened."""
    return opened is not value and from_collector(value)


def unseal(key: bytes, value: bytes) -> bytes:
    """The value ``seal`` sealed; a plain value unchanged. Raises ``SealBroken``."""
    if not is_sealed(value):
        return value
    if len(value) < len(MAGIC) + 12 + 16:
        raise SealBroken("cut short")
    nonce, box = bytes(value[4:16]), bytes(value[16:])
    magic = value[:4]
    aad = _AAD_COLLECTOR if magic == MAGIC_COLLECTOR else _AAD
    try:
        packed = _aead(key).decrypt(nonce, box, aad)
    except InvalidTag:
        raise SealBroken("sealed under another key, or altered") from None
    if magic in (MAGIC, MAGIC_COLLECTOR):
        inflate = zlib.decompressobj(_WBITS, zdict=DICTIONARY)
    else:
        inflate = zlib.decompressobj()
    try:
        opened = inflate.decompress(packed, MAX_OPENED)
    except zlib.error:
        raise SealBroken("not deflate inside the seal") from None
    if inflate.unconsumed_tail or not inflate.eof:
        raise SealBroken(f"opens to more than {MAX_OPENED} bytes, or is cut short")
    return opened


def sealer(key: bytes, *, collector: bool = False) -> Transform:
    """``seal`` bound to ``key`` (what a producer calls per message); ``collector``: only the
    collector's own values."""
    return functools.partial(seal, key, collector=collector)


def opener(key: bytes) -> Transform:
    """``unseal`` bound to ``key`` (what a reader of ``mayak.raw`` calls per message)."""
    return functools.partial(unseal, key)


def plain(value: bytes) -> bytes:
    """The identity: a reader or producer with no key (tests, tools that hold no secrets)."""
    return value
