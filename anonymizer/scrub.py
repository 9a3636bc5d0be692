"""Scrubbing and coarsening of free-form values: paths, URLs, referrers, props.

Pure functions. What is redacted: e-mail addresses (also %40-encoded), phone numbers (the
+994 / 0XX Azerbaijani formats and any other run of 9+ digits with separators), and digit
runs of 5 or more (case numbers, tax ids, card numbers). Query strings are reduced to the
``utm_*`` allowlist; referrers to their domain.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlencode, urlsplit

EMAIL = "[email]"
PHONE = "[phone]"
NUMBER = "[num]"
ID = ":id"

_EMAIL_RE = re.compile(r"[\w.%+-]+(?:@|%40)[\w-]+(?:\.[\w-]+)*\.[a-z]{2,}", re.IGNORECASE)
# +994 50 123 45 67, +994-50-123-45-67, (012) 555-55-55, 050 123 45 67, 0501234567 ...
_PHONE_RE = re.compile(r"(?<![\w+])(?:\+|00)?\(?\d[\d\s().-]{6,}\d(?!\w)")
_LOCAL_PHONE_RE = re.compile(r"(?<!\d)\d{3}-\d{2}-\d{2}(?!\d)")
_DIGITS_RE = re.compile(r"\d{5,}")
_UUID_RE = re.compile(r"^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$", re.I)
_HEX_ID_RE = re.compile(r"^(?=[^g-z]*\d)[0-9a-f]{16,}$", re.I)
UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")


def _phone(match: re.Match[str]) -> str:
    text = match.group(0)
    digits = sum(c.isdigit() for c in text)
    if digits >= 9 or (text.startswith(("+", "00")) and digits >= 8):
        return PHONE
    return text


# every pattern above needs a digit or an '@' / '%40': text without them is returned as is
_NEEDS_SCRUB_RE = re.compile(r"[\d@%]")


def scrub_text(text: str) -> str:
    """Redact e-mails, phone numbers and long digit runs in one free-form string."""
    if not _NEEDS_SCRUB_RE.search(text):
        return text
    text = _EMAIL_RE.sub(EMAIL, text)
    text = _PHONE_RE.sub(_phone, text)
    text = _LOCAL_PHONE_RE.sub(PHONE, text)
    return _DIGITS_RE.sub(NUMBER, text)


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
    """Configured route templates such as ``/cases/:id``; ``:name`` matches one segment."""

    templates: tuple[tuple[str, ...], ...]

    @classmethod
    def parse(cls, templates: Iterable[str]) -> "RouteTemplates":
        return cls(tuple(tuple(t.strip("/").split("/")) for t in templates if t.strip()))

    def match(self, segments: list[str]) -> str | None:
        for template in self.templates:
            if len(template) == len(segments) and all(
                    t.startswith(":") or t == s for t, s in zip(template, segments)):
                return "/" + "/".join(template)
        return None


def _segment(segment: str) -> str:
    if segment.isdigit() and len(segment) >= 3 or _UUID_RE.match(segment) or _HEX_ID_RE.match(segment):
        return ID
    return scrub_text(segment)


def scrub_path(path: str, routes: RouteTemplates | None = None) -> str:
    """A URL path with ids templated and personal data redacted (no query, no fragment)."""
    path = unquote(path or "/")
    segments = path.strip("/").split("/") if path.strip("/") else []
    if routes:
        templated = routes.match(segments)
        if templated:
            return templated
    cleaned = "/" + "/".join(_segment(s) for s in segments)
    if path.endswith("/") and segments:
        cleaned += "/"
    return cleaned[:1024]


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
            found[key] = scrub_text(unquote(value.replace("+", " ")))[:128]
    return found


def scrub_url(url: str, routes: RouteTemplates | None = None) -> str:
    """Path plus only the ``utm_*`` query parameters (for failed events that keep a URL)."""
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
