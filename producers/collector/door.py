"""Pure checks and clean-ups done at the door, before anything reaches Kafka.

URL scrubbing (fragment and non-allowlisted query parameters dropped), client IP resolution
(socket peer, or X-Forwarded-For only from trusted proxies), Origin matching per site, and
the privacy signals (DNT, Sec-GPC) and language read from request headers.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def scrub_url(url: str | None, allow: frozenset[str]) -> str | None:
    """Drop the fragment, user info and every query parameter except utm_* and ``allow``."""
    if not url:
        return None
    return _scrub_cached(url, allow) if len(url) <= 512 else _scrub(url, allow)


def _scrub(url: str, allow: frozenset[str]) -> str | None:
    try:
        parts = urlsplit(url)
        netloc = parts.hostname or ""
        if parts.port:
            netloc += f":{parts.port}"
    except ValueError:
        return None
    if parts.scheme not in ("http", "https", "android-app"):
        return None
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if k.startswith("utm_") or k in allow]
    return urlunsplit((parts.scheme, netloc, parts.path or "/", urlencode(query), ""))


# page URLs and referrers repeat: parse each (short) one once; bounded to a few MB
_scrub_cached = functools.lru_cache(maxsize=4096)(_scrub)


def parse_networks(specs: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(s, strict=False) for s in specs)


def _in(ip: str, nets: tuple[Network, ...]) -> bool:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(addr in net for net in nets)


def client_ip(peer: str | None, forwarded_for: str | None, trusted: tuple[Network, ...]) -> str:
    """The client address: the peer, unless the peer is a trusted proxy; then the right-most
    X-Forwarded-For hop that is not itself a trusted proxy (left-most hops are forgeable)."""
    ip = peer or ""
    if forwarded_for and _in(ip, trusted):
        for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
            ip = hop
            if not _in(hop, trusted):
                break
    return _canonical_ip(ip)


@functools.lru_cache(maxsize=4096)
def _canonical_ip(ip: str) -> str:
    try:
        return str(ipaddress.ip_address(ip))
    except ValueError:
        return ""


def origin_allowed(origin: str | None, globs: Iterable[str]) -> bool:
    """No Origin header (server-to-server, curl) is allowed; a present one must match a glob."""
    if origin is None:
        return True
    return _origin_matches(origin, tuple(globs))


@functools.lru_cache(maxsize=1024)
def _origin_matches(origin: str, globs: tuple[str, ...]) -> bool:
    return any(fnmatchcase(origin.lower(), g.lower()) for g in globs)


def privacy_signals(headers: Mapping[str, str]) -> tuple[bool, bool]:
    """(DNT, GPC) as sent by the browser in the ``DNT`` and ``Sec-GPC`` headers."""
    return headers.get("dnt", "").strip() == "1", headers.get("sec-gpc", "").strip() == "1"


def language(accept_language: str | None) -> str | None:
    """The first language tag of Accept-Language (e.g. ``az-AZ``), or None."""
    if not accept_language:
        return None
    tag = accept_language.split(",")[0].split(";")[0].strip()
    return tag[:35] if tag and tag != "*" else None
