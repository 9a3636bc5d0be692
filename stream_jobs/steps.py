"""The enrichment steps after validation, in pipeline order.

consent -> useragent -> geo -> pseudonymize -> scrub -> sessionize. Each takes a ``Hit`` and
returns it (with more of ``hit.out`` filled in) or a ``DeadLetter``. Keys, salts, clock, readers
and the session store are injected; nothing here touches Kafka or ClickHouse.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping
from datetime import date
from functools import lru_cache
from typing import Any, Protocol
from urllib.parse import urlsplit

from anonymizer import pseudonym
from anonymizer.scrub import (
    CUSTOMER,
    IP,
    UA,
    RouteTemplates,
    referrer_domain_of_host,
    route_path,
    scrub_path,
    scrub_text,
    utm_of_query,
    without_secrets,
)
from mayak.clock import Clock
from mayak.settings import SESSION_TIMEOUT_MINUTES
from stream_jobs.dead_letters import DeadLetter
from stream_jobs.geo import GeoLookup
from stream_jobs.pipeline import Hit
from stream_jobs.useragent import EMPTY_UA, UAClassifier

SESSION_TIMEOUT_MS = SESSION_TIMEOUT_MINUTES * 60_000
MAX_SECTIONS = 32  # per engagement event (the raw contract allows as many)
MAX_PROPS = 20  # per event (the raw contract allows as many)
MAX_PROP_VALUE = 200  # characters of one prop value once made a string
MAX_SECTION_MS = 86_400_000  # one day, as engaged_ms


class Keys(Protocol):
    """What the steps need from the key store (see ``anonymizer.keystore.KeyStore``)."""

    visitor_key: bytes

    def salt_for(self, day: date, now: Any) -> bytes: ...
    def customer_key(self, uid: str) -> bytes: ...
    def is_opted_out(self, uid: str) -> bool: ...


def consent_step(keys: Keys) -> Callable[[Hit], Hit | DeadLetter]:
    """Opted-out customers' hits are dead letters; DNT, GPC or no consent: the cookieless path."""

    def consent(hit: Hit) -> Hit | DeadLetter:
        raw = hit.raw
        if raw.get("uid") and keys.is_opted_out(raw["uid"]):
            return DeadLetter("consent", "opted_out")
        hit.consented = (
            raw.get("consent") == "analytics" and not raw.get("dnt") and not raw.get("gpc")
        )
        hit.out["consent"] = "analytics" if hit.consented else "none"
        return hit

    return consent


def useragent_step(classifier: UAClassifier) -> Callable[[Hit], Hit | DeadLetter]:
    """Browser, OS (major versions only) and device; bots leave with reason ``bot`` and
    detail ``category:family``. E-mail opens stay: a mail proxy or scanner is an open class
    (``stream_jobs.email_opens``), never a bot's dead letter."""

    def useragent(hit: Hit) -> Hit | DeadLetter:
        info = classifier.classify(hit.ua) if hit.ua else EMPTY_UA
        if info.bot and hit.raw.get("type") != "email_open":
            return DeadLetter("bot", info.bot_detail)
        hit.out.update(
            browser=info.browser,
            browser_major=info.browser_major,
            os=info.os,
            os_major=info.os_major,
            device_type=info.device_type,
            device_brand=info.device_brand,
            is_bot=0,
        )
        return hit

    return useragent


def geo_step(geo: GeoLookup, hosting_bots: bool = False) -> Callable[[Hit], Hit | DeadLetter]:
    """Country, ISP and ASN of the in-memory IP. ``hosting_bots``: a service request (a
    server-side hit: no JS ran, whatever its UA says) from a hosting network (MaxMind
    Anonymous-IP) leaves as a bot, ``hosting:<network>``; VPN users are people and stay."""

    def geo_(hit: Hit) -> Hit | DeadLetter:
        info = geo.lookup(hit.ip)
        if (
            hosting_bots
            and hit.raw.get("type") == "service_request"
            and geo.network_kind(hit.ip).hosting
        ):
            return DeadLetter("bot", f"hosting:{(info.isp or 'hosting network')[:48]}")
        hit.out.update(country=info.country, isp=info.isp, asn=info.asn)
        return hit

    return geo_


def is_active(state: Any, ts: int, timeout_ms: int) -> bool:
    """Whether ``state`` (a session-store value) is a session a hit at ``ts`` would join."""
    return (
        state is not None and ts - state["last"] <= timeout_ms and state["start"] - ts <= timeout_ms
    )


def visitor_on_consent(
    cookie_vid: str, cookieless_vid: str, ts: int, sessions: Mapping[str, Any], timeout_ms: int
) -> str:
    """The visitor id of a consented hit that also carries the device's IP and UA.

    A visitor who grants consent in the middle of a visit starts sending the cookie id; until
    then the same visit was counted under the cookieless pseudonym (daily salt, site, IP, UA).
    Switching ids there would make one person two visitors and one visit two one-page visits.
    So: when the cookie id is unknown to the session store (consent was just granted: a cookie
    id that ever had a session is in the store) and the cookieless pseudonym has a session
    this hit would join, the hit keeps the cookieless pseudonym, and so does every later hit
    of that session (the cookie id stays unknown meanwhile). The next visit, after
    ``timeout_ms`` of inactivity, is counted under the cookie id. A known cookie id always
    wins, so two consented browsers behind one IP and UA are never merged.

    Limits (the visit is then split, as before this rule): the store lookup is local, so in a
    multi-worker deployment the cookieless and the cookie hits may be keyed to partitions of
    different workers; and it relies on hits being processed in about the order they happened
    (live traffic is; a backlog read partition by partition may run the consented hits first).
    """
    if cookie_vid in sessions:
        return cookie_vid
    if is_active(sessions.get(cookieless_vid), ts, timeout_ms):
        return cookieless_vid
    return cookie_vid


def pseudonymize_step(
    keys: Keys,
    clock: Clock,
    sessions: Mapping[str, Any] | None = None,
    timeout_ms: int = SESSION_TIMEOUT_MS,
) -> Callable[[Hit], Hit]:
    """``visitor_id`` and ``customer_pid``; afterwards the IP and UA are forgotten. Copies of
    the IP, UA or customer id inside the props are cut out first: this is the last step that
    knows them, and no pattern recognises every UA or customer id.

    ``sessions``: the session store (read only here), for consent granted mid-visit (see
    ``visitor_on_consent``); without it a consented hit always takes the cookie id.
    """
    salts: dict[date, bytes] = {}

    def daily_salt() -> bytes:
        now = clock.now()
        day = now.date()
        if day not in salts:
            salts.clear()  # keep only today's salt in memory
            salts[day] = keys.salt_for(day, now)
        return salts[day]

    def pseudonymize(hit: Hit) -> Hit:
        raw, site = hit.raw, hit.raw["site"]
        if raw.get("type") == "email_open" and raw.get("recipient"):
            # one pseudonym per recipient and campaign: unique opens, nothing linkable beyond
            vid = pseudonym.keyed_hash(
                keys.visitor_key, "recipient", site, raw.get("campaign", ""), raw["recipient"]
            )
        elif hit.consented and raw.get("vid"):
            vid = pseudonym.cookie_visitor_id(keys.visitor_key, site, raw["vid"])
            if sessions is not None and (hit.ip or hit.ua) and vid not in sessions:
                cookieless = pseudonym.cookieless_visitor_id(
                    daily_salt(), site, hit.ip or "", hit.ua or ""
                )
                vid = visitor_on_consent(vid, cookieless, int(raw["ts"]), sessions, timeout_ms)
        elif hit.ip or hit.ua:
            vid = pseudonym.cookieless_visitor_id(daily_salt(), site, hit.ip or "", hit.ua or "")
        else:
            # nothing identifies the device (e.g. a replayed failed event): a one-event visitor
            vid = pseudonym.keyed_hash(daily_salt(), "event", raw["id"])
        uid = raw.get("uid")
        hit.out["visitor_id"] = vid
        hit.out["customer_pid"] = pseudonym.customer_pid(keys.customer_key(uid), uid) if uid else ""
        if raw.get("props"):
            raw["props"] = without_secrets(raw["props"], {hit.ip: IP, hit.ua: UA, uid: CUSTOMER})
        hit.ip = hit.ua = None
        return hit

    return pseudonymize


def scrub_step(routes: RouteTemplates) -> Callable[[Hit], Hit]:
    """Contract fields from the raw ones: templated path, referrer domain, utm, scrubbed props."""

    # pages and referrers repeat: split each (url, ref, route) once (bounded; in memory only)
    @lru_cache(maxsize=8192)
    def url_fields(url: str, ref: str | None, route: str | None) -> tuple[str, ...]:
        """(path, referrer_domain, utm_source, utm_medium, utm_campaign)."""
        try:  # split once: path, utm_* and the own host for the referrer
            parts = urlsplit(url)
            url_path, query = parts.path, parts.query
            own_host = (parts.hostname or "").removeprefix("www.")
        except ValueError:
            url_path, query, own_host = "/", "", ""
        path = route_path(route) if route and not url else scrub_path(url_path, routes)
        utm = utm_of_query(query)
        return (
            path,
            referrer_domain_of_host(ref, own_host),
            utm.get("utm_source", ""),
            utm.get("utm_medium", ""),
            utm.get("utm_campaign", ""),
        )

    def scrub(hit: Hit) -> Hit:
        raw, out = hit.raw, hit.out
        path, referrer, source, medium, campaign = url_fields(
            raw.get("url") or "", raw.get("ref"), raw.get("route")
        )
        out.update(
            event_id=raw["id"],
            event_type=raw["type"],
            site_id=raw["site"],
            ts=raw["ts"],
            path=path,
            section=scrub_text(raw.get("section") or "")[:64],
            referrer_domain=referrer,
            utm_source=source,
            utm_medium=medium,
            utm_campaign=campaign,
            engaged_ms=raw.get("engaged_ms") or 0,
            scroll_pct=raw.get("scroll_pct") or 0,
            service_type=scrub_text(raw.get("service_type") or "")[:64],
            campaign_id=scrub_text(raw.get("campaign") or "")[:64],
        )
        out.update(event_details(raw))
        return hit

    return scrub


def event_details(raw: dict[str, Any]) -> dict[str, Any]:
    """``event_name``, ``props``, ``outbound_url``, ``section_names`` and ``section_ms``.

    Props: at most ``MAX_PROPS`` keys, values as scrubbed strings (a number or boolean too: one
    column type, so any prop can be a report dimension). An outbound click's destination
    (``props.to``, origin + path from the beacon) becomes ``outbound_url``: the origin (scheme,
    host, port; never credentials), the path scrubbed like page paths, no query, no fragment.
    Sections: the first ``MAX_SECTIONS`` names (scrubbed; a name that scrubs to one already
    seen adds its dwell there) with their dwell in ms, clamped to the event's range.
    """
    props = dict(raw.get("props") or {})
    outbound = _outbound_url(props.pop("to", None)) if raw.get("type") == "outbound" else ""
    clean: dict[str, str] = {}
    for key, value in props.items():
        if len(clean) >= MAX_PROPS:
            break
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        clean[scrub_text(str(key))[:40]] = scrub_text(text)[:MAX_PROP_VALUE]
    dwell: dict[str, int] = {}
    for name, ms in list((raw.get("sections") or {}).items())[:MAX_SECTIONS]:
        name = scrub_text(str(name).strip())[:64]
        if name:
            dwell[name] = min(dwell.get(name, 0) + max(int(ms or 0), 0), MAX_SECTION_MS)
    return {
        "event_name": scrub_text(raw.get("name") or "")[:64],
        "props": clean,
        "outbound_url": outbound,
        "section_names": list(dwell),
        "section_ms": list(dwell.values()),
    }


def _outbound_url(to: Any) -> str:
    if not isinstance(to, str) or not to:
        return ""
    try:
        parts = urlsplit(to)
        host, port = parts.hostname or "", parts.port
    except ValueError:
        return ""
    if parts.scheme not in ("http", "https") or not host:
        return ""
    origin = f"{parts.scheme}://{scrub_text(host)}" + (f":{port}" if port else "")
    return (origin + scrub_path(parts.path))[:1024]


def sessionize_step(
    store: MutableMapping[str, Any], timeout_ms: int = SESSION_TIMEOUT_MS
) -> Callable[[Hit], Hit]:
    """``session_id``: a new session after ``timeout_ms`` of inactivity of the visitor.

    ``store`` maps visitor_id -> {"start": ms, "last": ms}: a Faust table in the worker (its
    changelog keeps sessions across restarts), a dict in ``mayak enrich``.
    """

    def sessionize(hit: Hit) -> Hit:
        vid, ts = hit.out["visitor_id"], int(hit.out["ts"])
        state = store.get(vid)
        if state is None or not is_active(state, ts, timeout_ms):
            state = {"start": ts, "last": ts}
        else:
            # a late, out-of-order hit joins the session without renaming it; other keys of
            # the state (the visit's channel, ``stream_jobs.channels``) stay
            state = {**state, "start": state["start"], "last": max(state["last"], ts)}
        store[vid] = state
        hit.out["session_id"] = pseudonym.session_id(vid, state["start"])
        return hit

    return sessionize
