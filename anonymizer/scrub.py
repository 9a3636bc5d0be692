"""Scrubbing and coarsening of free-form values: paths, URLs, referrers, props.

Pure functions. What counts as personal (and what is kept) is ``anonymizer.personal``:
e-mails, phones in every separator style, IPv4/IPv6 addresses, portal customer ids, UA strings
and long numbers are redacted; years, dates, UUIDs and short ids are kept. Query strings are
reduced to the ``utm_*`` allowlist; referrers to their domain; route templates lose an HTTP
method prefix (the method is a field of its own).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlencode, urlsplit

from anonymizer.personal import (
    CUSTOMER,
    EMAIL,
    IP,
    NUMBER,
    PHONE,
    UA,
    Redactor,
)
from mayak.settings import DEFAULT_CUSTOMER_ID_PATTERN

__all__ = [
    "CUSTOMER",
    "EMAIL",
    "ID",
    "IP",
    "NUMBER",
    "PHONE",
    "UA",
    "RouteTemplates",
    "configure",
    "host_of",
    "referrer_domain",
    "referrer_domain_of_host",
    "route_path",
    "scrub_path",
    "scrub_text",
    "scrub_url",
    "scrub_value",
    "utm_of_query",
    "utm_params",
    "without_secrets",
]

ID = ":id"

_UUID_RE = re.compile(r"^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$", re.I)
_HEX_ID_RE = re.compile(r"^(?=[^g-z]*\d)[0-9a-f]{16,}$", re.I)
_METHOD_RE = re.compile(r"^\s*[A-Za-z]{3,7}\s+(?=/)")
UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")

# one per process: the customer-id format is a deployment setting (``configure``)
_redactor = Redactor(DEFAULT_CUSTOMER_ID_PATTERN)


def configure(customer_id_pattern: str = DEFAULT_CUSTOMER_ID_PATTERN) -> None:
    """Use this regex for portal customer ids (``MAYAK_CUSTOMER_ID_PATTERN``) from now on."""
    global _redactor
    if _redactor.customer_re.pattern != customer_id_pattern:
        _redactor = Redactor(customer_id_pattern)


def scrub_text(text: str) -> str:
    """Redact e-mails, phones, IP addresses, customer ids, UA strings and long numbers."""
    return _redactor.text(text)


def scrub_value(value: object) -> object:
    """Scrub strings anywhere inside a JSON-like value (dict keys included)."""
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, Mapping):
        return {scrub_text(str(k)): scrub_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub_value(v) for v in value]
    return value


@dataclass(frozen=True)
class RouteTemplates:
    """Configured route templates such as ``/cases/:id``; ``:name`` matches one segment.

    The page templates of ``MAYAK_ROUTE_TEMPLATES``, in the notation of the ``:id`` the
    anonymizer puts for ids itself. The portal's server hooks have their own, in ``{name}``
    notation (``producers.hooks.routes.ServiceRoutes``): see there why there are two."""

    templates: tuple[tuple[str, ...], ...]

    @classmethod
    def parse(cls, templates: Iterable[str]) -> RouteTemplates:
        return cls(tuple(tuple(t.strip("/").split("/")) for t in templates if t.strip()))

    def match(self, segments: list[str]) -> str | None:
        for template in self.templates:
            if len(template) == len(segments) and all(
                t.startswith(":") or t == s for t, s in zip(template, segments)
            ):
                return "/" + "/".join(template)
        return None


def _segment(segment: str) -> str:
    if segment.isdigit():
        # a year stays (/blog/2024/05/...); other numbers of 3+ digits are record ids
        year = len(segment) == 4 and segment[:2] in ("19", "20")
        return ID if len(segment) >= 3 and not year else segment
    return ID if _UUID_RE.match(segment) or _HEX_ID_RE.match(segment) else segment


#: control characters (C0, DEL, C1) and bidirectional overrides: decoded from a URL's %-escapes
#: they would reach terminals, logs and tables as they are (a stored path with %1B or %E2%80%AE
#: decoded); they are kept %-encoded instead
#: (a regex character class, also the event contract's rule: ``contract.schema``)
INVISIBLE_CLASS = r"\x00-\x1F\x7F-\x9F\u200E\u200F\u202A-\u202E\u2066-\u2069"
_INVISIBLE_RE = re.compile(f"[{INVISIBLE_CLASS}]")


def _visible(text: str) -> str:
    return _INVISIBLE_RE.sub(lambda m: quote(m.group(), safe=""), text)


def scrub_path(path: str, routes: RouteTemplates | None = None) -> str:
    """A URL path with ids templated and personal data redacted (no query, no fragment);
    control and bidi characters stay %-encoded."""
    path = _visible(unquote(path or "/"))
    segments = path.strip("/").split("/") if path.strip("/") else []
    if routes:
        templated = routes.match(segments)
        if templated:
            return templated
    # the whole path at once: a phone may span segments (/call/050/123/45/67)
    segments = [_segment(s) for s in scrub_text(path).strip("/").split("/")] if segments else []
    cleaned = "/" + "/".join(segments)
    if path.endswith("/") and segments:
        cleaned += "/"
    return cleaned[:1024]


def route_path(route: str) -> str:
    """A server route template as a path: ``POST /services/{service}/apply`` ->
    ``/services/{service}/apply`` (the method is a field of its own), scrubbed."""
    return scrub_path(_METHOD_RE.sub("", route))


def utm_params(url: str) -> dict[str, str]:
    """The allowlisted ``utm_*`` query parameters of a URL, scrubbed and truncated."""
    try:
        query = urlsplit(url).query
    except ValueError:
        return {}
    return utm_of_query(query)


def utm_of_query(query: str) -> dict[str, str]:
    """``utm_params`` of an already split query string (as ``parse_qsl``, which it replaces:
    only the ``utm_*`` pairs are decoded)."""
    if "utm" not in query.lower() and "%" not in query:
        return {}
    found: dict[str, str] = {}
    for part in query.split("&"):
        key, eq, value = part.partition("=")
        if not eq or not value:
            continue  # parse_qsl without keep_blank_values skips these too
        if "%" in key or "+" in key:
            key = unquote(key.replace("+", " "))
        key = key.lower()
        if key in UTM_FIELDS and key not in found:
            found[key] = scrub_text(_visible(unquote(value.replace("+", " "))))[:128]
    return found


def scrub_url(url: str, routes: RouteTemplates | None = None) -> str:
    """Path (ids templated, personal data redacted) plus only the ``utm_*`` query parameters
    (for dead letters that keep a URL). Not the collector's ``door.trim_url``, which only
    drops what may not enter Kafka."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return scrub_text(url)
    query = urlencode(utm_params(url))
    host = f"{parts.scheme}://{parts.hostname}" if parts.hostname else ""
    return host + scrub_path(parts.path, routes) + (f"?{query}" if query else "")


def host_of(url: str | None) -> str:
    """Lower-case host of a URL without ``www.``; empty when there is none."""
    if not url:
        return ""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return ""
    return host.removeprefix("www.")


def referrer_domain(ref: str | None, own_url: str | None) -> str:
    """The referrer's domain, empty for none or for a link from the same site."""
    return referrer_domain_of_host(ref, host_of(own_url))


def referrer_domain_of_host(ref: str | None, own_host: str) -> str:
    """``referrer_domain`` given the own URL's ``host_of`` already."""
    domain = host_of(ref)
    if not domain or domain == own_host:
        return ""
    return scrub_text(domain)[:253]


def without_secrets(value: object, secrets: Mapping[str | None, str]) -> object:
    """``value`` (a JSON-like value) with every occurrence of the given secrets replaced by its
    label, e.g. ``{ua: "[ua]", ip: "[ip]", uid: "[customer]"}``: an event's own identity copied
    into its props, which no pattern would recognise (an app's UA, a numeric customer id).
    Secrets shorter than 4 characters are only matched as whole values."""
    found = {s: label for s, label in secrets.items() if s}
    return _replaced(value, found) if found else value


def _replaced(value: object, found: dict[str, str]) -> object:
    if isinstance(value, str):
        for secret, label in found.items():
            if value == secret or (len(secret) >= 4 and secret in value):
                value = label if value == secret else value.replace(secret, label)
        return value
    if isinstance(value, Mapping):
        return {_replaced(k, found): _replaced(v, found) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_replaced(v, found) for v in value]
    return value
