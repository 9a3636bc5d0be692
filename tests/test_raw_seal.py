"""Sealed ``mayak.raw`` values (``contract.raw_seal``): what opens, what does not."""

from __future__ import annotations

import zlib

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
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


def test_the_collectors_label_opens_and_cannot_be_moved_to_or_from_a_hooks_value() -> None:
    value = frame([b'{"v":1,"id":"a"}', b'{"v":1,"id":"b"}'])
    collectors = raw_seal.seal(KEY, value, collector=True)
    hooks = raw_seal.seal(KEY, value)
    assert raw_seal.from_collector(collectors) and not raw_seal.from_collector(hooks)
    assert raw_seal.unseal(KEY, collectors) == raw_seal.unseal(KEY, hooks) == value
    # the label is inside the tag: a hook's value relabelled as the collector's does not open,
    # nor does the collector's relabelled as a hook's
    for relabelled in (
        raw_seal.MAGIC_COLLECTOR + hooks[4:],
        raw_seal.MAGIC + collectors[4:],
    ):
        with pytest.raises(raw_seal.SealBroken, match="altered"):
            raw_seal.unseal(KEY, relabelled)


def _sealed_v1(value: bytes, level: int = 1) -> bytes:
    """``value`` as the first format sealed it: zlib with no dictionary, ``MAGIC_V1``."""
    nonce = b"\x01" * 12
    packed = zlib.compress(value, level)
    return raw_seal.MAGIC_V1 + nonce + AESGCM(KEY).encrypt(nonce, packed, b"mayak.raw.v1")


def _sealed_v2_raw(packed: bytes) -> bytes:
    nonce = b"\x02" * 12
    return raw_seal.MAGIC + nonce + AESGCM(KEY).encrypt(nonce, packed, b"mayak.raw.v1")


def test_values_sealed_in_the_first_format_still_open() -> None:
    value = frame([b'{"v":1,"id":"a","type":"pageview"}', b'{"v":1,"id":"b"}'])
    assert (
        raw_seal.is_sealed(_sealed_v1(value)) and raw_seal.unseal(KEY, _sealed_v1(value)) == value
    )


def test_one_raw_event_alone_seals_far_smaller_than_plain_zlib_did() -> None:
    # a single event, as a lightly loaded collector and the hooks send it (the common words
    # come from the dictionary, not from other events in the same message)
    event = (
        b'{"v":1,"id":"5f0c2a8e-0b7e-4d55-9a39-6f1e0e3c9b21","type":"pageview","site":"elegal",'
        b'"ts":1796284795715,"url":"https://e-legal.az/services/notary","ref":"https://www.'
        b'google.com/","section":"services","consent":"none","dnt":false,"gpc":false,"ua":'
        b'"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, '
        b'like Gecko) Version/18.1 Mobile/15E148 Safari/604.1","ip_enc":"QTI9RO29zZJh39l7tpvX'
        b'Prn/h+vj0rdPjpLIRwdDWgYmhF8iu3i5","received":1796284797715}'
    )
    sealed, first_format = raw_seal.seal(KEY, event), _sealed_v1(event)
    assert raw_seal.unseal(KEY, sealed) == event
    assert len(sealed) < 0.6 * len(first_format) < 0.6 * len(event)


def test_a_bomb_nothing_can_open_within_the_limit_is_refused() -> None:
    # whoever holds the key could seal 64 MB of zeros into about 64 KB, in either format
    zeros = b"\x00" * (raw_seal.MAX_OPENED * 16)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15, zdict=raw_seal.DICTIONARY)
    for sealed in (_sealed_v1(zeros, 9), _sealed_v2_raw(deflate.compress(zeros) + deflate.flush())):
        with pytest.raises(raw_seal.SealBroken, match="more than"):
            raw_seal.unseal(KEY, sealed)
    with pytest.raises(raw_seal.SealBroken, match="not deflate"):
        raw_seal.unseal(KEY, _sealed_v2_raw(b"\xff" * 64))
    ok = raw_seal.seal(KEY, b"\x00" * raw_seal.MAX_OPENED)
    assert len(raw_seal.unseal(KEY, ok)) == raw_seal.MAX_OPENED


def test_the_key_is_its_own() -> None:
    from contract.crypto import ip_cipher_key, partition_secret

    master = b"m" * 32
    key = raw_seal.raw_seal_key(master)
    assert len(key) == 32 and key not in {ip_cipher_key(master), partition_secret(master)}


def test_a_value_sealed_by_this_release_still_opens() -> None:
    # written once (2026-12-03) with MAGIC MR2 and this DICTIONARY: messages stay on mayak.raw
    # for a day across an upgrade, so an edited DICTIONARY under the same MAGIC must fail here
    sealed = bytes.fromhex(
        "004d52320707070707070707070707078c93a48f82378afecda5ee3c7cc33039ebfc0cebbe25a0a82ab9"
        "5e9c8f58dbb06103dfe513e94cb4b7a8e3"
    )
    assert raw_seal.unseal(KEY, sealed) == (
        b'{"v":1,"type":"pageview","url":"https://e-legal.az/services/notary","ua":"Mozilla/5.0 '
        b"(Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
        b'Safari/537.36"}'
    )
