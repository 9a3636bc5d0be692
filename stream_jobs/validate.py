"""Validation of raw events against the versioned schema (``contract/schema.py``).

Dead letters: ``size`` (message too large), ``schema`` (not JSON, unknown ``v``, bad fields)
and ``enrichment`` (``ip_enc`` not decryptable); see ``stream_jobs.dead_letters``. Details
name the fields and error types, never their values.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from pydantic import ValidationError

from anonymizer.personal import is_ip
from anonymizer.scrub import scrub_text
from contract.schema import SCHEMA_VERSION, RawEvent, field_of
from stream_jobs.dead_letters import DeadLetter
from stream_jobs.pipeline import Hit

MAX_RAW_BYTES = 16_384
SUPPORTED_VERSIONS = frozenset({SCHEMA_VERSION})

Decrypt = Callable[[str], str]


class Validator:
    """Turns one raw message into a ``Hit`` with the IP and UA held in memory only.

    ``decrypt_ip`` opens ``ip_enc``; ``allow_clear_ip`` (``mayak enrich`` only) accepts an
    ``ip`` field in clear, which the collector never produces.
    """

    def __init__(
        self,
        decrypt_ip: Decrypt | None = None,
        allow_clear_ip: bool = False,
        max_bytes: int = MAX_RAW_BYTES,
    ) -> None:
        self.decrypt_ip = decrypt_ip
        self.allow_clear_ip = allow_clear_ip
        self.max_bytes = max_bytes

    def __call__(self, message: Any) -> Hit | DeadLetter:
        if isinstance(message, (bytes, bytearray, str)):
            if len(message) > self.max_bytes:
                return DeadLetter("size", f"{len(message)} bytes > {self.max_bytes}")
            try:
                message = orjson.loads(message)
            except orjson.JSONDecodeError:
                return DeadLetter("schema", "not_json")
        if not isinstance(message, dict):
            return DeadLetter("schema", "not_an_object")
        data = dict(message)
        version = data.get("v", SCHEMA_VERSION)
        if version not in SUPPORTED_VERSIONS:
            return DeadLetter("schema", "unsupported_version")
        ip = data.pop("ip", None) if self.allow_clear_ip else None
        if ip is not None and not is_ip(ip):
            return DeadLetter("schema", "ip:invalid")
        try:
            event = RawEvent.model_validate(data)
        except ValidationError as exc:
            fields = sorted({f"{field_of(e)}:{e['type']}" for e in exc.errors()})
            return DeadLetter("schema", scrub_text(",".join(fields[:6])))
        if event.ip_enc and ip is None:
            if self.decrypt_ip is None:
                return DeadLetter("enrichment", "ip_enc:no_key")
            try:
                ip = self.decrypt_ip(event.ip_enc)
            except Exception:  # wrong key, tampered or truncated: all mean "cannot trust it"
                return DeadLetter("enrichment", "ip_enc:undecryptable")
        raw = event.model_dump(mode="json", exclude_none=True)
        return Hit(raw=raw, ip=ip, ua=event.ua)
