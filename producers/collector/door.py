"""Pure checks and clean-ups done at the door, before anything reaches Kafka.

URL trimming (fragment and non-allowlisted query parameters dropped), client IP resolution
(socket peer, or X-Forwarded-For only from trusted proxies), exact Origin matching per
site (scheme, host, port; never a substring or glob over the whole string), and
the privacy signals (DNT, Sec-GPC) and language read from request headers.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import re
from collections.abc import Iterable, Mapping
from typing import NamedTuple
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from anonymizer.scrub import INVISIBLE_CLASS

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def trim_url(url: str | None, allow: frozenset[str]) -> str | None:
    """The URL as it may enter Kafka: fragment, user info and every query parameter except
    utm_* and ``allow`` dropped; None for no URL or one that is not http(s)/android-app.
    Not the anonymizer's ``scrub_url``, which later templates ids in the path and redacts
    personal data (the stream jobs' job, with keys and settings the collector does not have)."""
    if not url:
        return None
    return _trim_cached(url, allow) if len(url) <= 512 else _trim(url, allow)


def _trim(url: str, allow: frozenset[str]) -> str | None:
    try:
        parts = urlsplit(url)
        netloc = parts.hostname or ""
        if ":" in netloc:  # an IPv6 literal keeps its brackets: http://[2001:db8::1]:8080/
            netloc = f"[{netloc}]"
        if parts.port:
            netloc += f":{parts.port}"
    except ValueError:
        return None
    if parts.scheme not in ("http", "https", "android-app"):
        return None
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if k.startswith("utm_") or k in allow
    ]
    return urlunsplit((parts.scheme, netloc, parts.path or "/", urlencode(query), ""))


# page URLs and referrers repeat: parse each (short) one once; bounded to a few MB
_trim_cached = functools.lru_cache(maxsize=4096)(_trim)


def parse_networks(specs: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(s, strict=False) for s in specs)


def _in(ip: str, nets: tuple[Network, ...]) -> bool:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    # a dual-stack listener reports an IPv4 peer as ::ffff:a.b.c.d: the same host
    addr = getattr(addr, "ipv4_mapped", None) or addr
    return any(addr in net for net in nets)


@functools.lru_cache(maxsize=65536)
def rate_bucket(ip: str) -> str:
    """Whose token bucket a client address draws from: an IPv6 client's /64 (one home line
    or one VM gets a whole /64: one address each would let it send at 2^64 times the rate),
    an IPv4 address itself."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:  # ::ffff:a.b.c.d is the IPv4 client a.b.c.d
            return str(addr.ipv4_mapped)
        return str(ipaddress.IPv6Network((addr, 64), strict=False))
    return ip


def client_ip(
    peer: str | None,
    forwarded_for: str | None,
    trusted: tuple[Network, ...],
    rfc7239: bool = False,
) -> str:
    """The client address: the peer, unless the peer is a trusted proxy; then the right-most
    X-Forwarded-For hop that is not itself a trusted proxy (left-most hops are forgeable).
    ``forwarded_for``: every X-Forwarded-For line of the request, joined in order with ", "
    (a proxy that adds its own line after the client's must not let the client's win). A hop
    may carry a port (``203.0.113.7:41234``, ``[2001:db8::1]:443``, as some load balancers
    write it) or an IPv6 zone; both are dropped. ``rfc7239``: the lines are RFC 7239
    ``Forwarded`` elements instead, and the hops their ``for=`` values (an element without one,
    ``for=unknown`` or an obfuscated ``for=_name`` is a hop whose address nobody knows)."""
    ip = peer or ""
    if forwarded_for and _in(ip, trusted):
        hops = (
            forwarded_hops(forwarded_for)
            if rfc7239
            else [h.strip() for h in forwarded_for.split(",") if h.strip()]
        )
        for hop in reversed(hops):
            ip = _hop_address(hop)
            if not _in(ip, trusted):
                break
    return _canonical_ip(ip)


def forwarded_hops(header: str) -> list[str]:
    """The ``for=`` value of each element of a Forwarded header, in order, unquoted
    (``for="[2001:db8::1]:4711"`` gives ``[2001:db8::1]:4711``); "" for an element without one.

    Elements are split at every comma and pairs at every semicolon, quotes or not: no value a
    proxy writes (an address, a port, ``unknown``, an ``_obfuscated`` name, a host, a scheme)
    holds either, and only the right-most elements, the proxies' own, are ever read. A
    quote-aware split would let a client's text swallow them (``for="x, for=...``), and a
    regular expression for quoted strings went quadratic on a client's 16 KB of ``\\"``
    (1.6 s of the event loop for one header)."""
    hops = []
    for element in header.split(","):
        if not element.strip():
            continue
        value = ""
        for pair in element.split(";"):
            name, eq, raw = pair.partition("=")
            if eq and name.strip().lower() == "for":
                value = raw.strip()
                if len(value) >= 2 and value[0] == value[-1] == '"':
                    value = _QUOTED_PAIR.sub(r"\1", value[1:-1])
        hops.append(value)
    return hops


_QUOTED_PAIR = re.compile(r"\\(.)")  # RFC 9110 quoted-pair: a backslash escapes one character


_V4_WITH_PORT = re.compile(r"(\d{1,3}(?:\.\d{1,3}){3}):\d{1,5}")
_V6_BRACKETED = re.compile(r"\[([0-9A-Fa-f:.]+)(?:%[^\]]*)?\](?::\d{1,5})?")


def _hop_address(hop: str) -> str:
    """One X-Forwarded-For hop as a bare address: port, brackets and zone id dropped
    (anything else is returned as is, and ``_canonical_ip`` refuses what is not an address)."""
    v4 = _V4_WITH_PORT.fullmatch(hop)
    if v4:
        return v4.group(1)
    v6 = _V6_BRACKETED.fullmatch(hop)
    if v6:
        return v6.group(1)
    return hop.split("%", 1)[0] if ":" in hop else hop


@functools.lru_cache(maxsize=4096)
def _canonical_ip(ip: str) -> str:
    try:
        addr = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return ""
    mapped = getattr(addr, "ipv4_mapped", None)  # ::ffff:1.2.3.4 is the IPv4 client 1.2.3.4
    return str(mapped or addr)


class OriginPattern(NamedTuple):
    """One allowed Origin: scheme, host (``*.`` = one or more subdomain labels), port
    (None = the scheme's default, ``*`` = any); or ``any`` for the glob ``*``."""

    scheme: str
    host: str
    port: str | None
    any: bool = False


#: an Origin as browsers send it: scheme://host[:port], nothing else (no user info, no path)
_ORIGIN = re.compile(
    r"(https?)://([a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?|\[[0-9a-f:.]+\])"
    r"(?::([0-9]{1,5}))?"
)
_GLOB = re.compile(
    r"(https?)://((?:\*\.)?[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?|\[[0-9a-f:.]+\])"
    r"(?::([0-9]{1,5}|\*))?"
)
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_DEFAULT_PORT = {"http": "80", "https": "443"}


def parse_origin_glob(glob: str) -> OriginPattern:
    """``https://e-legal.az``, ``https://*.e-legal.az``, ``http://localhost:*`` or ``*``;
    anything else is a configuration error (ValueError), not a pattern that matches oddly."""
    if glob.strip() == "*":
        return OriginPattern("", "", None, any=True)
    m = _GLOB.fullmatch(glob.strip().lower())
    if not m:
        raise ValueError(
            f"bad Origin pattern {glob!r}: expected scheme://host[:port], a "
            "'*.' subdomain wildcard, a ':*' port wildcard, or '*'"
        )
    scheme, host, port = m.groups()
    return OriginPattern(scheme, host, port or _DEFAULT_PORT[scheme])


def parse_origin(origin: str) -> tuple[str, str, str] | None:
    """(scheme, host, port) of a well-formed Origin header, else None."""
    m = _ORIGIN.fullmatch(origin.lower())
    if not m:
        return None
    scheme, host, port = m.groups()
    if not host.startswith("[") and not all(_LABEL.fullmatch(x) for x in host.split(".")):
        return None
    port = port or _DEFAULT_PORT[scheme]
    return (scheme, host, port) if 0 < int(port) < 65536 else None


def _matches(parts: tuple[str, str, str], pattern: OriginPattern) -> bool:
    scheme, host, port = parts
    if scheme != pattern.scheme or (pattern.port != "*" and port != pattern.port):
        return False
    if pattern.host.startswith("*."):
        return host.endswith(pattern.host[1:]) and len(host) > len(pattern.host) - 1
    return host == pattern.host


def origin_allowed(origin: str | None, globs: Iterable[str]) -> bool:
    """No Origin header (server-to-server, curl) is allowed; a present one must match one of
    the site's patterns exactly in scheme, host and port (see ``parse_origin_glob``)."""
    if origin is None:
        return True
    return _origin_matches(origin, tuple(globs))


@functools.lru_cache(maxsize=1024)
def _origin_matches(origin: str, globs: tuple[str, ...]) -> bool:
    patterns = [parse_origin_glob(g) for g in globs]
    if any(p.any for p in patterns):
        return True
    parts = parse_origin(origin)
    return parts is not None and any(_matches(parts, p) for p in patterns)


async def broker_reachable(bootstrap: str, timeout: float = 1.0) -> str:
    """ "ok" when one of the bootstrap brokers accepts a TCP connection, else the error."""
    error = "no bootstrap server"
    for server in bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(host.strip("[]"), int(port)), timeout
            )
        except (TimeoutError, OSError, ValueError) as exc:
            error = f"broker {server.strip()} unreachable: {type(exc).__name__}"
            continue
        writer.close()
        return "ok"
    return error


def privacy_signals(headers: Mapping[str, str]) -> tuple[bool, bool]:
    """(DNT, GPC) as sent by the browser in the ``DNT`` and ``Sec-GPC`` headers (several lines
    joined by commas). DNT is set by a value that starts with ``1`` (the Tracking Preference
    Expression allows extensions after it, ``1xyz``), GPC by ``1``; on any line, since a
    privacy-first collector honours the wish when lines disagree."""
    dnt = [v.strip() for v in headers.get("dnt", "").split(",")]
    gpc = [v.strip() for v in headers.get("sec-gpc", "").split(",")]
    return any(v.startswith("1") for v in dnt), "1" in gpc


_INVISIBLE = re.compile(f"[{INVISIBLE_CLASS}]")


def user_agent(header: str | None) -> str | None:
    """The User-Agent as text: header values arrive decoded as latin-1 (RFC 9110: other
    bytes are opaque), so an app's UTF-8 UA (``Galaxy Ə``) is decoded again as UTF-8 where it
    is valid; control and bidi characters are dropped (never stored, as in every text field).
    Empty: None."""
    if not header or (header.isascii() and header.isprintable()):
        return header or None
    try:
        header = header.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        pass  # not UTF-8 bytes (or already text): keep the characters as they came
    return _INVISIBLE.sub("", header).strip() or None


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether ``Accept-Encoding`` takes gzip: named (or ``*``) with a weight above 0
    (RFC 9110, 12.5.3: ``gzip;q=0`` refuses it)."""
    weights: dict[str, float] = {}
    for item in accept_encoding.lower().split(","):
        coding, _, params = item.partition(";")
        q = 1.0
        name, _, value = params.strip().partition("=")
        if name.strip() == "q":
            try:
                q = float(value)
            except ValueError:
                q = 0.0  # a weight that is no number: not an acceptance
        weights.setdefault(coding.strip(), q)
    return weights.get("gzip", weights.get("x-gzip", weights.get("*", 0.0))) > 0


#: a BCP 47 language tag as browsers send it: letters, then subtags of letters and digits
_LANGUAGE_TAG = re.compile(r"[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8}){0,3}")


def language(accept_language: str | None) -> str | None:
    """The first language tag of Accept-Language (e.g. ``az-AZ``), or None for anything that
    is not one (a header is the client's to write: ``john@x.az`` is no language)."""
    if not accept_language:
        return None
    tag = accept_language.split(",")[0].split(";")[0].strip()
    return tag if _LANGUAGE_TAG.fullmatch(tag) else None
