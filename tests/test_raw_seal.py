"""Sealed ``mayak.raw`` values (``contract.raw_seal``): what opens, what does not."""

from __future__ import annotations

import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contract import raw_seal
from contract.raw_frames import events_of, frame

KEY, OTHER = bytes(range(32)), bytes(range(1, 33))


@given(st.binary(max_size=4096))
def test_what_is_sealed_opens_to_the_same_bytes(value: bytes) -> None:
    sealed = raw_seal.seal(KEY, value)
    assert raw_seal.is_sealed(sealed) and raw_seal.unseal(KEY, sealed) == value


def test_a_sealed_frame_hides_its_events_and_is_smaller_than_the_plain_one() -> None:
    ua = b"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0"
    values = [b'{"id":"%d","ua":"%s","uid":"CUST-42"}' % (i, ua) for i in range(200)]
    plain = frame(values)
    sealed = raw_seal.seal(KEY, plain)
    assert b"CUST-42" not in sealed and b"Chrome" not in sealed
    assert len(sealed) < len(plain) / 5  # compressed before it is encrypted
    assert len(events_of(raw_seal.unseal(KEY, sealed))) == 200
    assert raw_seal.seal(KEY, plain) != sealed  # a fresh nonce each time


@pytest.mark.parametrize("value", [b'{"v":1}', b"[1,2]", b"", b"not json"])
def test_plain_values_pass_unchanged(value: bytes) -> None:
    assert not raw_seal.is_sealed(value) and raw_seal.unseal(KEY, value) == value


def test_another_key_or_a_changed_byte_does_not_open() -> None:
    sealed = raw_seal.seal(KEY, b'{"uid":"CUST-1"}')
    with pytest.raises(raw_seal.SealBroken, match="another key"):
        raw_seal.unseal(OTHER, sealed)
    changed = bytearray(sealed)
    changed[-20] ^= 1
    with pytest.raises(raw_seal.SealBroken):
        raw_seal.unseal(KEY, bytes(changed))
    with pytest.raises(raw_seal.SealBroken):
        raw_seal.unseal(KEY, raw_seal.MAGIC + b"short")


def test_a_sealed_bomb_does_not_inflate_past_the_limit() -> None:
    # whoever holds the key could seal 64 MB of zeros into about 64 KB
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = b"\x01" * 12
    bomb = zlib.compress(b"\x00" * (raw_seal.MAX_OPENED * 16), 9)
    sealed = raw_seal.MAGIC + nonce + AESGCM(KEY).encrypt(nonce, bomb, b"mayak.raw.v1")
    with pytest.raises(raw_seal.SealBroken, match="more than"):
        raw_seal.unseal(KEY, sealed)
    ok = raw_seal.seal(KEY, b"\x00" * raw_seal.MAX_OPENED)
    assert len(raw_seal.unseal(KEY, ok)) == raw_seal.MAX_OPENED


def test_the_key_is_its_own() -> None:
    from contract.crypto import ip_cipher_key, partition_secret

    master = b"m" * 32
    key = raw_seal.raw_seal_key(master)
    assert len(key) == 32 and key not in {ip_cipher_key(master), partition_secret(master)}
