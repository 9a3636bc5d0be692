"""What counts as personal in free text, and what is kept: the redaction rules of ``scrub_text``.

Redacted (replaced by a label): e-mail addresses (also ``%40``-encoded) -> ``[email]``; portal
customer ids (a configurable regex, default ``ELG-CUST-XXXX``) -> ``[customer]``; user-agent
strings (``Mozilla/5.0 ...`` or ``App/1.2 (platform; ...)``, to the end of the value) ->
``[ua]``; IPv4 and IPv6 addresses -> ``[ip]``; phone numbers in every separator style (space
. - / _ and brackets) -> ``[phone]``; other long numbers (tax ids, card and account numbers) ->
``[num]``.

Kept: UUIDs (event ids), years, dates, times, and ids of up to 8 digits (article ids in slugs),
and 13-digit numbers starting with 1 (epoch milliseconds, 2001-2033: cache busters in slugs).

A *number* is digit groups joined by separators (``050/123/45/67``). It is a phone when it
starts with ``+`` (7-15 digits) or ``00`` (11-15 digits), or is 12 digits from ``994``, or 10
digits from ``0`` (Azerbaijani national format), or 9 digits opening with a 2-digit group
(``50 123 45 67``), or 7 digits as 3-2-2 (``555-55-55``); also any 9-12 digits written in
groups of at most 4 that are not a date (``555-123-4567``); 13+ such digits are a card number.
A date inside a number is kept and the rest judged on its own. A number that is none of these
(``2024/05/15/123``, ``mayak-1-1764000000000``) is judged group by group: the longest run of
groups from each group on that is a phone by the shapes above goes, and each other digit
run is judged alone: up to 8 digits kept, 9-12 digits redacted (a phone without separators, a
tax id), 13 digits from 1 kept (epoch ms), longer redacted.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache

from mayak.settings import DEFAULT_CUSTOMER_ID_PATTERN

EMAIL = "[email]"
PHONE = "[phone]"
NUMBER = "[num]"
IP = "[ip]"
CUSTOMER = "[customer]"
UA = "[ua]"

_EMAIL_RE = re.compile(r"[\w.%+-]+(?:@|%40)[\w-]+(?:\.[\w-]+)*\.[a-z]{2,}", re.IGNORECASE)
# a UA string runs to the end of the value: its later tokens (platform, engine) identify too.
# Browsers start with Mozilla/5.0; apps with ``Name/1.2 (platform; device...)``
_UA_PRODUCTS = ("Mozilla/", "Opera/", "Dalvik/")
_UA_RE = re.compile(
    r"\b(?:(?:Mozilla|Opera|Dalvik)/\d"
    r"|[A-Za-z][\w.-]*/\d[\w.]*\s?\([^()]*;[^()]*\)).*",
    re.DOTALL,
)
_UUID = (
    r"(?P<uuid>(?<![0-9a-f])[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    r"(?![0-9a-f]))"
)
_IP6 = (
    r"(?P<ip6>(?<![\w:.])(?:[0-9a-f]{0,4}:){2,8}(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9a-f]{1,4})?"
    r"(?![\w:]|\.\d))"
)
_IP4 = r"(?P<ip4>(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?!\d|\.\d))"
# numbers: not after a letter or digit (``_`` is a separator; ``article-12345`` is a slug
# number); a lone run of up to 8 digits is kept, so it is not matched at all (speed); a
# group before ':' is left to the IPv6 branch (/cases/10234/2001:db8::7)
_G = r"\d++(?![\d:]|[0-9a-f]+:)"  # possessive: no backtracking into a digit run
_NUM = (
    rf"(?P<num>(?<![^\W_])[+(]{{0,2}}(?:\d{{9,}}+(?![:]|[0-9a-f]+:)"
    rf"|{_G}(?:[\s./_()-]{{1,4}}{_G})+|(?<=[+(]){_G}))"
)
# a long run glued to letters (``tel0501234567``), unless inside a hex id (checked below)
_GLUED = r"(?P<glued>(?<=[^\W\d_])\d{9,})"
_CANDIDATES_RE = re.compile("|".join((_UUID, _IP6, _IP4, _NUM, _GLUED)), re.IGNORECASE)
# the same without IPv6, for text without a ':' (most of it; the IPv6 branch is the slowest)
_CANDIDATES_NO_IP6_RE = re.compile("|".join((_UUID, _IP4, _NUM, _GLUED)), re.IGNORECASE)
_GROUPS_RE = re.compile(r"\d+")
_NUM_RE = re.compile(_NUM, re.IGNORECASE)
_IP4_IN_RE = re.compile(_IP4)
# one separator, used twice: 2026-03-15, 15.03.2026 (with spaces, "07 01 2026" would cut a
# phone such as "+994 50 111 07 01 2026-03-15" in two)
_DATE_RE = re.compile(
    r"(?<!\d)(?:(?:19|20)\d\d([./_-])(?:0?[1-9]|1[0-2])\1(?:0?[1-9]|[12]\d|3[01])"
    r"|(?:0?[1-9]|[12]\d|3[01])([./_-])(?:0?[1-9]|1[0-2])\2(?:19|20)\d\d)(?!\d)"
)
_AMOUNT_RE = re.compile(r"\d{1,3}(?:[ .,]\d{3})+(?:[.,]\d{1,2})?")  # 1 250 000.00
_HEX_CHARS = frozenset("0123456789abcdefABCDEF")


def _run(digits: str) -> str:
    """One run of digits without separators."""
    n = len(digits)
    if n <= 8 or (n == 13 and digits[0] == "1"):
        return digits
    if n <= 12:
        national = n == 10 and digits[0] == "0"
        return PHONE if n == 9 or national or (n == 12 and digits.startswith("994")) else NUMBER
    return PHONE if n <= 15 and digits.startswith("00") else NUMBER


def _date_like(groups: list[str]) -> bool:
    """A year (1900-2099) next to day/month-sized groups: 2024/05/15, 15.03.2026 10 30."""
    has_year = any(len(g) == 4 and g[:2] in ("19", "20") for g in groups)
    return has_year and any(len(g) <= 2 and 0 < int(g) <= 31 for g in groups)


def _is_phone(digits: str, groups: list[str]) -> bool:
    n = len(digits)
    if _date_like(groups):
        return False
    return (
        (n == 12 and digits.startswith("994"))
        or (n == 10 and digits[0] == "0")
        or (11 <= n <= 15 and digits.startswith("00"))
        or (n == 9 and len(groups) > 1 and len(groups[0]) == 2)
        or (n == 7 and [len(g) for g in groups] == [3, 2, 2])
    )


def _number(text: str) -> str:
    groups = _GROUPS_RE.findall(text)
    n = sum(map(len, groups))
    if n < 7 and (len(groups) < 4 or "." not in text):
        return text  # too short for a phone or an id (2024/05), and not an IPv4 address
    # an address or a date inside (/cases/10234/198.18.7.7, 15.03.2026 050 123 45 67): the
    # address goes, the date stays, and what is around either is judged on its own
    for found in _IP4_IN_RE.finditer(text):
        if is_ip(found.group()):
            return _numbers(text[: found.start()]) + IP + _numbers(text[found.end() :])
    date = _DATE_RE.search(text)
    if date:
        return _numbers(text[: date.start()]) + date.group() + _numbers(text[date.end() :])
    digits = "".join(groups)
    if text.lstrip("(").startswith("+"):
        if 7 <= n <= 15:
            return PHONE
        if n > 15:
            return NUMBER
    elif _is_phone(digits, groups):
        return PHONE
    elif (
        len(groups) > 1
        and n >= 9
        and max(map(len, groups)) <= 4
        and not _date_like(groups)
        and not _AMOUNT_RE.fullmatch(text)
    ):
        return PHONE if n <= 12 else NUMBER  # 555-123-4567; 4111 1111 1111 1111
    return _by_groups(text)


MAX_PHONE_DIGITS = 15  # E.164


def _by_groups(text: str) -> str:
    """Not one number: a phone may still be a part of it (/cases/10000/050/123/45/67), the
    longest one from each group on; other groups are judged alone."""
    spans = [(m.start(), m.end()) for m in _GROUPS_RE.finditer(text)]
    groups = [text[a:b] for a, b in spans]
    out, pos, i = [], 0, 0
    while i < len(groups):
        # a phone has at most MAX_PHONE_DIGITS digits, so at most that many groups: trying
        # every longer run made a long number cost cubic time (a 2 KB path: ~6 s of the
        # worker's event loop)
        for j in range(min(len(groups), i + MAX_PHONE_DIGITS), i + 1, -1):
            if _is_phone("".join(groups[i:j]), groups[i:j]):
                out.append(text[pos : spans[i][0]] + PHONE)
                pos, i = spans[j - 1][1], j
                break
        else:
            out.append(text[pos : spans[i][0]] + _run(groups[i]))
            pos, i = spans[i][1], i + 1
    return "".join(out) + text[pos:]


def _numbers(text: str) -> str:
    return _NUM_RE.sub(lambda m: _number(m.group()), text)


def is_ip(value: object) -> bool:
    """Whether ``value`` (as text) is an IPv4 or IPv6 address."""
    try:
        ipaddress.ip_address(str(value))
        return True
    except ValueError:
        return False


def _in_hex_id(text: str, start: int, end: int) -> bool:
    """Whether text[start:end] lies inside a hex token of 16+ characters (a hash, an id)."""
    while start and text[start - 1].isalnum():
        start -= 1
    while end < len(text) and text[end].isalnum():
        end += 1
    return end - start >= 16 and all(c in _HEX_CHARS for c in text[start:end])


def _candidate(match: re.Match[str]) -> str:
    kind, text = match.lastgroup, match.group()
    if kind == "num":
        return _number(text)
    if kind == "glued":
        return text if _in_hex_id(match.string, match.start(), match.end()) else _run(text)
    if kind in ("ip4", "ip6"):
        if is_ip(text):
            return IP if any(c.isalnum() for c in text) else text
        # 10:30:00, 300.1.2.3, 050.123.45.67: not addresses, but maybe numbers
        return _GROUPS_RE.sub(lambda g: _run(g.group()), text) if kind == "ip6" else _number(text)
    return text  # a UUID


# everything above needs a digit, ':' (IPv6) or '@' / '%40' (e-mail); other text is returned
# as it is unless it holds a customer id
_NEEDS_SCRUB_RE = re.compile(r"[\d@%:]")


class Redactor:
    """Applies the rules above to one string; results are cached (values repeat)."""

    def __init__(
        self, customer_id_pattern: str = DEFAULT_CUSTOMER_ID_PATTERN, cache_size: int = 16_384
    ) -> None:
        self.customer_re = re.compile(customer_id_pattern, re.IGNORECASE)
        self.text = lru_cache(maxsize=cache_size)(self._text)

    def _text(self, text: str) -> str:
        if not _NEEDS_SCRUB_RE.search(text):
            return self.customer_re.sub(CUSTOMER, text) if self.customer_re.search(text) else text
        if "@" in text or "%40" in text:
            text = _EMAIL_RE.sub(EMAIL, text)
        text = self.customer_re.sub(CUSTOMER, text)
        if "/" in text and (("(" in text and ";" in text) or any(p in text for p in _UA_PRODUCTS)):
            text = _UA_RE.sub(UA, text)
        candidates = _CANDIDATES_RE if ":" in text else _CANDIDATES_NO_IP6_RE
        return candidates.sub(_candidate, text)
