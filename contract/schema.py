"""The raw event contract, version 1 (DESIGN.md section 3), as pydantic models.

``ClientEvent`` is what a browser may POST to the collector (``/e``); ``RawEvent`` is what is
produced to Kafka ``mayak.raw`` by the collector, the e-mail pixel and the server hooks, and
what the stream jobs validate. Field names are part of the contract: see producers/README.md.
Both models forbid unknown fields, so a typo is a 400 naming the field, not silent data loss.
"""

from __future__ import annotations

import re
from typing import Annotated, Final, Literal
from uuid import UUID

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)
from pydantic_core import ErrorDetails

from anonymizer.scrub import INVISIBLE_CLASS

SCHEMA_VERSION: Final = 1

#: Event types a browser may send; the others (``EventType``) are made by the collector or the
#: hooks only.
BROWSER_TYPES = frozenset({"pageview", "engagement", "custom", "outbound"})

#: a recipient made of digits and separators only: a phone or customer number, not a token
_NUMBER_LIKE = re.compile(r"[0-9_-]+")
MAX_MS = 86_400_000  # one day: no single page view is engaged for longer
# 2020-01-01 .. 2100-01-01 in epoch ms; rejects seconds-instead-of-ms and garbage clocks
MIN_TS, MAX_TS = 1_577_836_800_000, 4_102_444_800_000

Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")]
#: Free text a page sends (names, property values, URLs) holds no control characters (C0,
#: DEL, C1) and no bidirectional overrides: a browser never sends them (it percent-encodes
#: URLs, and a page's data-* attributes are the site's own), and NUL, ESC, CR/LF or U+202E in
#: a stored name reach terminals, logs and the dashboards' tables (red team, 2026-12-02).
_NO_CONTROLS = rf"^[^{INVISIBLE_CLASS}]*$"
Name = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64, strip_whitespace=True, pattern=_NO_CONTROLS),
]
# Opaque identifiers (cookie id, e-mail recipient token): no '@', so an e-mail address never fits
Token = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{8,128}$")]
Url = Annotated[str, StringConstraints(max_length=2048, pattern=_NO_CONTROLS)]
PropKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,40}$")]
PropValue = (
    Annotated[str, StringConstraints(max_length=200, pattern=_NO_CONTROLS)] | int | float | bool
)
EventType = Literal["pageview", "engagement", "custom", "outbound", "email_open", "service_request"]
Ms = Annotated[int, Field(ge=0, le=MAX_MS)]


class _Base(BaseModel):
    # no inf or NaN: JSON has neither (the wire format would write null, which no field takes)
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    v: Literal[1] = SCHEMA_VERSION
    id: UUID  # made by the sender so that a retry can never count twice
    type: EventType
    site: Slug
    ts: Annotated[int, Field(ge=MIN_TS, le=MAX_TS)]  # client clock, epoch ms
    url: Url | None = None
    ref: Url | None = None
    section: Name | None = None
    name: Name | None = None  # custom event name
    engaged_ms: Ms | None = None
    scroll_pct: Annotated[int, Field(ge=0, le=100)] | None = None
    sections: Annotated[dict[Name, Ms], Field(max_length=32)] | None = None  # name -> dwell ms
    props: Annotated[dict[PropKey, PropValue], Field(max_length=20)] | None = None
    consent: Literal["analytics", "none"] = "none"
    dnt: bool = False  # Do-Not-Track seen (header or navigator)
    gpc: bool = False  # Global Privacy Control seen
    vid: Token | None = None  # first-party cookie id, only with consent

    @field_validator("vid")
    @classmethod
    def _vid_needs_consent(cls, vid: str | None, info: ValidationInfo) -> str | None:
        d = info.data
        if vid is not None and (d.get("consent") != "analytics" or d.get("dnt") or d.get("gpc")):
            raise ValueError("only allowed with consent=analytics and no DNT/GPC")
        return vid


class ClientEvent(_Base):
    """One event as a browser sends it to ``POST /e`` (the beacon, or a portal's own JS).

    Strict: a value of the wrong JSON type is a 400 naming the field, never coerced
    (``"ts": "1796..."``, ``"engaged_ms": "5"``, ``"dnt": "yes"`` are refused). Only ``id``
    is read from its JSON string form (a UUID, dashed or hex as the beacon sends it)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    id: UUID = Field(strict=False)

    @field_validator("type")
    @classmethod
    def _browser_types_only(cls, value: str) -> str:
        if value not in BROWSER_TYPES:
            raise ValueError(f"{value!r} cannot be sent by a browser")
        return value


class RawEvent(_Base):
    """One event on ``mayak.raw``: the client's fields plus what the producer side adds."""

    uid: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = None
    campaign: Slug | None = None  # e-mail campaign id (email_open)
    # opaque recipient token, pseudonymized downstream; not a bare number (a phone number or a
    # customer id would sit in clear on mayak.raw: red team, 2026-12-02, ``994501234567``;
    # with separators too, ``050-123-45-67``)
    recipient: Token | None = None
    service_type: Name | None = None  # service_request: which portal service
    route: Annotated[str, StringConstraints(max_length=256)] | None = None  # route template
    method: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3,7}$")] | None = None
    status: Annotated[int, Field(ge=100, le=599)] | None = None
    duration_ms: Annotated[float, Field(ge=0)] | None = None
    ua: Annotated[str, StringConstraints(max_length=512)] | None = (
        None  # full UA, parsed then dropped
    )
    ip_enc: Annotated[str, StringConstraints(max_length=128)] | None = None  # AES-GCM, base64
    lang: Annotated[str, StringConstraints(max_length=35)] | None = None
    received: int | None = None  # producer clock, epoch ms
    # email_open only (issue 13): a prefetch header was sent; the send time from the pixel URL
    purpose: Literal["prefetch"] | None = None
    sent_at: Annotated[int, Field(ge=MIN_TS, le=MAX_TS)] | None = None

    @field_validator("recipient")
    @classmethod
    def _recipient_is_no_number(cls, recipient: str | None) -> str | None:
        # digits alone or with separators: 050-123-45-67 is a phone number in a token's place
        if recipient is not None and _NUMBER_LIKE.fullmatch(recipient):
            raise ValueError("must be an opaque token, not a number (a phone or customer id)")
        return recipient

    def to_json(self) -> bytes:
        """Compact JSON without null fields (the wire format of ``mayak.raw``)."""
        return self.model_dump_json(exclude_none=True).encode()


def field_of(error: ErrorDetails) -> str:
    """Dotted field path of one pydantic error, e.g. ``props.x`` or ``3.type``."""
    return ".".join(str(p) for p in error.get("loc", ())) or "body"
