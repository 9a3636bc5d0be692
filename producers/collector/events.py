"""Turns what arrived at the door into ``RawEvent`` Kafka messages (key, JSON value).

Adds the request context (User-Agent, encrypted IP, language, receive time, DNT/GPC flags),
trims ``url`` and ``ref`` (``door.trim_url``), dates the event by the receive time when the
client's clock is far off (``event_time``), applies the site's policy for DNT/GPC visits
(drop, or count anonymously without a cookie id), and computes the partition key as a keyed
hash: the cookie id when there is one, else IP + User-Agent, so a visitor's events stay in
order.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass

import orjson

from anonymizer.master import load_master_secret
from contract import crypto
from contract.schema import SCHEMA_VERSION, ClientEvent, RawEvent
from mayak.clock import SYSTEM_CLOCK, Clock, epoch_ms
from mayak.settings import Settings
from producers.collector import door

#: (key, value) of one message to ``mayak.raw``
KafkaMessage = tuple[bytes, bytes]
URL_MAX = 2048  # RawEvent.url / .ref
#: the client fields copied as they are, in RawEvent's field order (between ref and consent)
_OPTIONAL = ("section", "name", "engaged_ms", "scroll_pct", "sections", "props")
#: The client's clock is believed only this far from the receive time; outside it the event is
#: dated when it was received. The event time decides retention (TTL) and reports, so a
#: browser clock set to 2098 must not keep a row for decades. Ahead: clocks drift minutes at
#: most. Behind: the beacon sends at once or on leaving the page, and retries briefly.
MAX_AHEAD_MS = 10 * 60 * 1000
MAX_BEHIND_MS = 24 * 60 * 60 * 1000


def event_time(ts: int, received: int) -> int:
    """``ts`` when within [received - 24 h, received + 10 min], else ``received``."""
    return ts if received - MAX_BEHIND_MS <= ts <= received + MAX_AHEAD_MS else received


@dataclass(frozen=True)
class Context:
    """What the collector knows about the request, besides the events themselves."""

    ip: str
    ua: str | None
    lang: str | None
    dnt: bool
    gpc: bool
    received: int


class EventFactory:
    """Builds the Kafka messages; holds the keys (derived once from the master secret)."""

    def __init__(self, settings: Settings, clock: Clock = SYSTEM_CLOCK) -> None:
        master = load_master_secret(settings.ip_key, settings.data_dir)
        self._ip_key = crypto.ip_cipher_key(master)
        self._part_key = crypto.partition_secret(master)
        self._allow = frozenset(settings.collector_query_allowlist)
        self._drop_sites = frozenset(settings.collector_dnt_drop_sites)
        self._pixel_site = settings.collector_pixel_site
        self._clock = clock

    def context(self, headers: Mapping[str, str], ip: str, dnt: bool, gpc: bool) -> Context:
        ua = door.user_agent(headers.get("user-agent"))
        return Context(
            ip=ip,
            ua=ua[:512] if ua else None,
            lang=door.language(headers.get("accept-language")),
            dnt=dnt,
            gpc=gpc,
            received=epoch_ms(self._clock),
        )

    def dropped_by_privacy(self, ev: ClientEvent, dnt: bool, gpc: bool) -> bool:
        """True when the site counts DNT/GPC visits not at all and this one carries a signal."""
        return ev.site in self._drop_sites and (dnt or gpc or ev.dnt or ev.gpc)

    def _key(self, site: str, who: str | None, ctx: Context) -> bytes:
        if who:
            return crypto.partition_key(self._part_key, site, who)
        return crypto.partition_key(self._part_key, site, ctx.ip, ctx.ua or "")

    def _common(self, ctx: Context) -> dict:
        return {
            "ua": ctx.ua,
            "lang": ctx.lang,
            "received": ctx.received,
            "ip_enc": crypto.encrypt_ip(self._ip_key, ctx.ip) if ctx.ip else None,
        }

    def from_client(self, ev: ClientEvent, ctx: Context) -> KafkaMessage:
        """One browser event as a Kafka message; a DNT/GPC visit never keeps a cookie id.

        The value is what ``RawEvent(...).to_json()`` makes (``from_client_model``), written
        directly: ``ev`` is already validated and everything the collector adds is within the
        contract's limits by construction, so a second validation pass would only cost time.
        A trimmed URL that grew past the limit takes the validating path (and is refused
        there, as before)."""
        dnt, gpc = ctx.dnt or ev.dnt, ctx.gpc or ev.gpc
        private = dnt or gpc
        url = door.trim_url(ev.url, self._allow)
        ref = door.trim_url(ev.ref, self._allow)
        if (url and len(url) > URL_MAX) or (ref and len(ref) > URL_MAX):
            return self.from_client_model(ev, ctx)
        vid = None if private else ev.vid
        out: dict = {
            "v": SCHEMA_VERSION,
            "id": str(ev.id),
            "type": ev.type,
            "site": ev.site,
            "ts": event_time(ev.ts, ctx.received),
        }
        if url is not None:
            out["url"] = url
        if ref is not None:
            out["ref"] = ref
        for name in _OPTIONAL:
            value = getattr(ev, name)
            if value is not None:
                out[name] = value
        out["consent"] = "none" if private else ev.consent
        out["dnt"] = dnt
        out["gpc"] = gpc
        if vid is not None:
            out["vid"] = vid
        if ctx.ua is not None:
            out["ua"] = ctx.ua
        if ctx.ip:
            out["ip_enc"] = crypto.encrypt_ip(self._ip_key, ctx.ip)
        if ctx.lang is not None:
            out["lang"] = ctx.lang
        out["received"] = ctx.received
        return self._key(ev.site, vid, ctx), orjson.dumps(out)

    def from_client_model(self, ev: ClientEvent, ctx: Context) -> KafkaMessage:
        """``from_client`` through the ``RawEvent`` model (validating everything again)."""
        dnt, gpc = ctx.dnt or ev.dnt, ctx.gpc or ev.gpc
        fields = ev.model_dump(exclude={"v", "url", "ref", "dnt", "gpc", "vid", "consent"})
        fields["ts"] = event_time(ev.ts, ctx.received)
        private = dnt or gpc
        raw = RawEvent(
            **fields,
            **self._common(ctx),
            dnt=dnt,
            gpc=gpc,
            url=door.trim_url(ev.url, self._allow),
            ref=door.trim_url(ev.ref, self._allow),
            consent="none" if private else ev.consent,
            vid=None if private else ev.vid,
        )
        return self._key(raw.site, raw.vid, ctx), raw.to_json()

    def email_open(
        self, campaign: str, recipient: str, ctx: Context, fetch: dict | None = None
    ) -> KafkaMessage | None:
        """The pixel's event; the recipient token is pseudonymized downstream, never stored.
        ``fetch``: ``method`` / ``purpose`` / ``sent_at`` (``pixel_gate.fetch_signals``)."""
        if self._pixel_site in self._drop_sites and (ctx.dnt or ctx.gpc):
            return None
        raw = RawEvent(
            id=uuid.uuid4(),
            type="email_open",
            site=self._pixel_site,
            ts=ctx.received,
            campaign=campaign,
            recipient=recipient,
            dnt=ctx.dnt,
            gpc=ctx.gpc,
            **(fetch or {}),
            **self._common(ctx),
        )
        return self._key(raw.site, recipient, ctx), raw.to_json()
