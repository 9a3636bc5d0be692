"""Events opened from the collector's seal are not validated twice
(``stream_jobs.validate.Vouched``).

What the collector writes (its fast path, its model path and its pixel; a server hook's event
too) must come out of the pipeline exactly as it does through the full validation; what a
producer cannot vouch for (the schema version, the IP's own seal) is still checked; and only
values that opened under the collector's label are vouched for: a hook's sealed value, a plain
one, or one that only looks sealed are validated in full."""

from __future__ import annotations

import asyncio
import base64
import secrets
import time
import uuid
from pathlib import Path

import orjson
import pytest

from contract import raw_seal
from contract.crypto import decrypt_ip, encrypt_ip, ip_cipher_key
from contract.raw_frames import frame
from contract.schema import ClientEvent, RawEvent
from mayak.settings import Settings
from producers.collector.events import EventFactory
from stream_jobs.dead_letters import DeadLetter
from stream_jobs.validate import MAX_RAW_BYTES, Vouched, vouch
from tests.stream_jobs.samples import AZ_IP, CHROME, IPHONE, TR_IP
from tests.stream_jobs.test_sj_intake import _intake

pytestmark = pytest.mark.unit

MASTER = secrets.token_bytes(32)
IP_KEY = ip_cipher_key(MASTER)  # what the worker opens the collector's IPs with


def _producers_values(tmp_path: Path) -> list[bytes]:
    """raw event values as the collector (fast path, model path, pixel) and a hook write them."""
    factory = EventFactory(Settings(data_dir=tmp_path, ip_key=base64.b64encode(MASTER).decode()))
    now = int(time.time() * 1000)
    client = [
        {"v": 1, "id": uuid.uuid4().hex, "type": "pageview", "site": "elegal", "ts": now,
         "url": "https://e-legal.az/services/notary?utm_source=tg&x=1", "ref": "https://t.me/"},
        {"v": 1, "id": str(uuid.uuid4()), "type": "engagement", "site": "elegal", "ts": now,
         "url": "https://e-legal.az/r/divorce", "engaged_ms": 12_000, "scroll_pct": 80,
         "sections": {" faq ": 3000, "prices": 9000}, "consent": "analytics",
         "vid": "abcdefgh1234"},
        {"v": 1, "id": str(uuid.uuid4()), "type": "custom", "site": "elegal", "ts": now,
         "name": " signup ", "props": {"form": "call-back", "n": 3, "ok": True, "x": 1.5}},
        {"v": 1, "id": str(uuid.uuid4()), "type": "outbound", "site": "elegal", "ts": now,
         "props": {"to": "https://e-gov.az/services/42?q=1"}, "dnt": True},
    ]  # fmt: skip
    values = []
    for i, event in enumerate(client):
        ctx = factory.context(
            {"user-agent": (CHROME, IPHONE)[i % 2], "accept-language": "az-AZ,az;q=0.9"},
            (AZ_IP, TR_IP)[i % 2],
            dnt=False,
            gpc=i == 3,
        )
        ev = ClientEvent.model_validate(event)
        values.append(factory.from_client(ev, ctx)[1])
        values.append(factory.from_client_model(ev, ctx)[1])
    ctx = factory.context({"user-agent": CHROME}, AZ_IP, dnt=False, gpc=False)
    opened = factory.email_open("spring-2026", "tok_8f3a9c2d1e", ctx)
    assert opened is not None
    values.append(opened[1])
    hook = RawEvent(
        id=uuid.uuid4(),
        type="service_request",
        site="elegal",
        ts=now,
        received=now,
        uid="CUST-42",
        service_type=" notary ",
        route="/services/:id",
        method="POST",
        status=201,
        duration_ms=12.5,
    )
    values.append(hook.to_json())
    return values


def test_what_the_producers_write_comes_out_the_same_vouched_or_validated(
    make_pipeline, tmp_path: Path
) -> None:
    values = _producers_values(tmp_path)
    validated = make_pipeline(decrypt_ip=lambda blob: decrypt_ip(IP_KEY, blob))
    trusting = make_pipeline(decrypt_ip=lambda blob: decrypt_ip(IP_KEY, blob))

    plain = [validated.run(v) for v in values]
    vouched = [trusting.run(vouch(v)) for v in values]

    assert all(isinstance(e, dict) for e in plain), plain  # all valid: none dead-lettered
    assert vouched == plain
    assert {"AZ", "TR"} <= {e["country"] for e in plain}  # the IPs were opened both ways
    assert any(e["section_names"] == ["faq", "prices"] for e in plain)


def test_what_no_producer_can_vouch_for_is_still_checked(make_pipeline) -> None:
    pipeline = make_pipeline(decrypt_ip=lambda blob: decrypt_ip(IP_KEY, blob))
    base = {"v": 1, "id": str(uuid.uuid4()), "type": "pageview", "site": "elegal",
            "ts": int(time.time() * 1000), "ua": CHROME}  # fmt: skip

    newer = pipeline.run(vouch(orjson.dumps(base | {"v": 2})))
    forged = pipeline.run(vouch(orjson.dumps(base | {"ip_enc": "AAAA" * 11})))
    keyless = make_pipeline().run(Vouched(base | {"ip_enc": encrypt_ip(IP_KEY, AZ_IP)}))

    assert isinstance(newer, DeadLetter) and (newer.reason, newer.detail) == (
        "schema",
        "unsupported_version",
    )
    assert isinstance(forged, DeadLetter) and (forged.reason, forged.detail) == (
        "enrichment",
        "ip_enc:undecryptable",
    )
    assert "ip_enc" not in forged.event  # the dead letter keeps no secret
    assert isinstance(keyless, DeadLetter) and keyless.detail == "ip_enc:no_key"


def test_vouch_leaves_what_is_no_json_object_to_the_full_validation(make_pipeline) -> None:
    pipeline = make_pipeline()
    oversize = orjson.dumps({"v": 1, "url": "x" * MAX_RAW_BYTES})
    for value, reason, detail in [
        (oversize, "size", f"{len(oversize)} bytes > {MAX_RAW_BYTES}"),
        (b'{"v": 1, "id": ', "schema", "not_json"),
        (b"[1, 2]", "schema", "not_an_object"),
        (7, "schema", "not_an_object"),
    ]:
        kept = vouch(value)
        assert type(kept) is not Vouched
        letter = pipeline.run(kept)
        assert isinstance(letter, DeadLetter) and (letter.reason, letter.detail) == (
            reason,
            detail,
        ), value


def _recording_intake(make_pipeline, open_raw: raw_seal.Transform = raw_seal.plain):
    """An intake whose pipeline notes the type of every raw event it is handed."""
    intake, pipeline, *_ = _intake(make_pipeline, batch=100, open_raw=open_raw)
    seen: list[type] = []
    parse = pipeline.parse
    pipeline.parse = lambda raw: seen.append(type(raw)) or parse(raw)  # type: ignore[method-assign]
    return intake, seen


def _event() -> dict:
    return {"v": 1, "id": str(uuid.uuid4()), "type": "pageview", "site": "elegal",
            "ts": int(time.time() * 1000), "ua": CHROME}  # fmt: skip


def test_the_intake_vouches_only_for_what_opened_from_a_seal(make_pipeline) -> None:
    key = b"k" * 32
    intake, seen = _recording_intake(make_pipeline, raw_seal.opener(key))

    def collectors(value: bytes) -> bytes:
        return raw_seal.seal(key, value, collector=True)

    intake.add(0, None, collectors(frame([orjson.dumps(_event()), orjson.dumps(_event())])))
    intake.add(0, None, collectors(orjson.dumps(_event())))  # a single event
    intake.add(1, None, raw_seal.seal(key, orjson.dumps(_event())))  # a server hook's
    intake.add(1, None, orjson.dumps(_event()))  # plain: a replay, a producer with no secret
    intake.add(1, None, frame([orjson.dumps(_event()), orjson.dumps(_event())]))  # plain frame
    results = asyncio.run(intake.flush())

    assert all(isinstance(r, dict) for r in results), results
    assert seen == [Vouched, Vouched, Vouched, bytes, bytes, dict, dict]


def test_a_value_that_only_looks_like_the_collectors_is_not_vouched_for(make_pipeline) -> None:
    """An intake that holds no key (``raw_seal.plain``) opens nothing, so vouches for nothing,
    whatever a value's first bytes say."""
    intake, seen = _recording_intake(make_pipeline)  # the default opener: raw_seal.plain
    event = _event()
    intake.add(0, None, raw_seal.seal(b"k" * 32, orjson.dumps(event), collector=True))
    intake.add(0, None, raw_seal.MAGIC_COLLECTOR + orjson.dumps(event))

    results = asyncio.run(intake.flush())

    assert seen == [bytes, bytes]
    assert [(r.reason, r.detail) for r in results] == [("schema", "not_json")] * 2
