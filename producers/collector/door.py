"""Pure checks and clean-ups done at the door, before anything reaches Kafka.

URL trimming (fragment and non-allowlisted query parameters dropped), exact Origin matching per
site (scheme, host, port; never a substring or glob over the whole string), and
the privacy signals (DNT, Sec-GPC) and language read from request headers. The client's
address (socket peer, or a trusted proxy's header) is ``mayak.client_address``, which the
dashboards share.
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Iterable, Mapping
from typing import NamedTuple
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from anonymizer.scrub import INVISIBLE_CLASS


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


def sites_open_to_any_origin(sites: Mapping[str, Iterable[str]]) -> list[str]:
    """The sites whose Origin list is the glob ``*`` (any page may send their events)."""
    return sorted(site for site, globs in sites.items() if any(g.strip() == "*" for g in globs))


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
