"""Validation of raw events against the versioned schema (``contract/schema.py``).

Dead letters: ``size`` (message too large), ``schema`` (not JSON, unknown ``v``, bad fields)
and ``enrichment`` (``ip_enc`` not decryptable); see ``stream_jobs.dead_letters``. Details
name the fields and error types, never their values.

Events that opened from the collector's seal (``contract.raw_seal.MAGIC_COLLECTOR``) are
``Vouched``: the collector made them from strictly validated ``ClientEvent``s, within
``RawEvent``'s limits by construction (its pixel through ``RawEvent`` itself), and the seal's
GCM tag proves they come from a holder of the producers' secret, unchanged. Validating them
again cost about 8 us of the worker's 40-50 per event (``RawEvent.model_validate`` and
``model_dump``), so only what a producer cannot vouch for is checked: the schema version, and
the IP's own seal. Everything else is validated in full, as before: the server hooks' sealed
events (they run in the portal's processes, perhaps of an older Mayak), ``mayak
replay-failed``'s plain values, anything else on the topic.
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


class Vouched(dict):
    """A raw event opened from a seal: validated by the producer that sealed it."""


def vouch(event: Any, max_bytes: int = MAX_RAW_BYTES) -> Any:
    """``event`` (an element of an opened sealed frame, or a sealed single event's bytes) as
    ``Vouched``; anything that is not a JSON object within ``max_bytes`` is left as it is, for
    the full validation to reject with its reason."""
    if isinstance(event, (bytes, bytearray)) and len(event) <= max_bytes:
        try:
            event = orjson.loads(event)
        except orjson.JSONDecodeError:
            return event
    return Vouched(event) if isinstance(event, dict) else event


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
        if type(message) is Vouched:
            return self._vouched(message)
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
            ip = self._open_ip(event.ip_enc)
            if isinstance(ip, DeadLetter):
                return ip
        raw = event.model_dump(mode="json", exclude_none=True)
        return Hit(raw=raw, ip=ip, ua=event.ua)

    def _vouched(self, event: Vouched) -> Hit | DeadLetter:
        """What the sealing producer validated as a ``Hit``: the same fields, types and values
        ``RawEvent`` validation and ``model_dump`` give for it."""
        if event.get("v", SCHEMA_VERSION) not in SUPPORTED_VERSIONS:
            return DeadLetter("schema", "unsupported_version")
        ip = self._open_ip(event["ip_enc"]) if event.get("ip_enc") else None
        if isinstance(ip, DeadLetter):
            return ip
        return Hit(raw=event, ip=ip, ua=event.get("ua"))  # vouch() made it a copy already

    def _open_ip(self, ip_enc: str) -> str | DeadLetter:
        if self.decrypt_ip is None:
            return DeadLetter("enrichment", "ip_enc:no_key")
        try:
            return self.decrypt_ip(ip_enc)
        except Exception:  # wrong key, tampered or truncated: all mean "cannot trust it"
            return DeadLetter("enrichment", "ip_enc:undecryptable")
