"""Device types and browser names ua-parser / user-agents get wrong (issue 13, item 4).

user-agents knows desktop, mobile and tablet only: an Android TV without "Mobile" in its UA
is a tablet to it, a Galaxy Tab whose UA says "Mobile Safari" is a phone, the Yandex app is
"Yandex Browser", and ua-parser's placeholder brands (``Generic_Android``) name no maker.
The rules are markers published by the vendors (e.g. Amazon's Fire TV ``AFT*`` models,
Samsung's ``SM-T/SM-X/SM-P`` tablet models, Tesla's ``QtCarBrowser``), checked in order:
TV, console, car, wearable, tablet; otherwise user-agents' answer stands.
"""

from __future__ import annotations

import re

import ahocorasick

#: (lower-case literal, device type, confirming regex or None): one Aho-Corasick pass over the
#: lower-cased UA finds the literals (a case-insensitive alternation of them all cost ~150 us
#: per UA); a regex confirms the short, ambiguous ones (word boundaries, model numbers)
_MARKERS: tuple[tuple[str, str, str | None], ...] = (
    *(
        (m, "tv", None)
        for m in (
            "smarttv",
            "smart-tv",
            "android tv",
            "androidtv",
            "google tv",
            "googletv",
            "bravia",
            "crkey",
            "roku",
            "appletv",
            "apple tv",
            "tvos",
            "web0s",
            "webos.tv",
            "netcast",
            "hbbtv",
            "opera tv",
            "mibox",
            "chromecast",
            "dtv_",
            "tv build",
            "(tv;",
            "shield android tv",
            "webtv/",
            "tv-hdmi",
            "tv box",
        )
    ),
    ("aft", "tv", r"\bAFT[A-Z]{1,5}\b"),
    ("mitv", "tv", r"\bMiTV"),
    ("stb", "tv", r"\bSTB\b"),
    *((m, "console", None) for m in ("playstation", "xbox", "nintendo")),
    ("wii", "console", r"\bWiiU?\b"),
    *((m, "car", None) for m in ("qtcarbrowser", "tesla/", "android automotive", "carplay")),
    ("aaos", "car", r"\bAAOS\b"),
    *((m, "wearable", None) for m in ("watchos", "wear os", "wearos", "galaxy watch")),
    ("watch", "wearable", r"\bWatch\d"),
    ("sm-r", "wearable", r"\bSM-R\d{3}"),
    *(
        (m, "tablet", None)
        for m in (
            "ipad",
            "tablet",
            "mediapad",
            "matepad",
            "kindle",
            "silk/",
            "xoom",
            "playbook",
            "lenovo tb",
            "lenovo yt",
            "yt-x",
        )
    ),
    ("sm-", "tablet", r"\bSM-[TXP]\d{3}"),
    ("gt-p", "tablet", r"\bGT-P\d{4}"),
    ("tab", "tablet", r"\b[Tt]ab\b"),
    ("tb", "tablet", r"\bTB-?\d{3,4}"),
    ("pad", "tablet", r"\bPad ?\d*\b"),
    ("kf", "tablet", r"\bKF[A-Z]{2,4}\b"),
    ("nexus ", "tablet", r"Nexus (7|9|10)\b"),
    ("tpa", "tablet", r"\bTPA\d{2}"),
    *((m, "tablet", r"\b(AGS|BAH|KOB|BTV|SCM)\d?-") for m in ("ags", "bah", "kob", "btv", "scm")),
)
_ORDER = {"tv": 0, "console": 1, "car": 2, "wearable": 3, "tablet": 4}


def _automaton() -> ahocorasick.Automaton:
    auto = ahocorasick.Automaton()
    found: dict[str, list[tuple[int, str, re.Pattern | None]]] = {}
    for literal, kind, confirm in _MARKERS:
        found.setdefault(literal, []).append(
            (_ORDER[kind], kind, re.compile(confirm) if confirm else None)
        )
    for literal, targets in found.items():
        auto.add_word(literal, targets)
    auto.make_automaton()
    return auto


_AUTO = _automaton()

#: UA markers of browsers that ua-parser folds into another family (first match wins)
_BROWSERS = (
    ("YaApp_", "Yandex app"),
    ("YaSearchBrowser", "Yandex app"),
    ("YandexSearch/", "Yandex app"),
    ("YaBrowser/", "Yandex Browser"),
    ("SamsungBrowser/", "Samsung Internet"),
    ("UCBrowser/", "UC Browser"),
    ("OPR/", "Opera"),
    ("OPT/", "Opera Touch"),
    ("OPX/", "Opera GX"),
)

#: ua-parser's brand placeholders: they name no maker
_PLACEHOLDER = re.compile(r"^(Generic|Spider|Other|Unknown)", re.IGNORECASE)


def device_type(ua: str, parsed: str) -> str:
    """tv / console / car / wearable / tablet by the UA's markers (in that order of
    precedence; tablet only for what user-agents called mobile or tablet), else ``parsed``."""
    best: tuple[int, str] | None = None
    for _, targets in _AUTO.iter(ua.lower()):
        for order, kind, confirm in targets:
            if (
                (best is None or order < best[0])
                and (kind != "tablet" or parsed in ("mobile", "tablet"))
                and (confirm is None or confirm.search(ua))
            ):
                best = (order, kind)
    return best[1] if best else parsed


#: ua-parser families a regional browser's UA may be folded into (a specific family, e.g.
#: "Oculus Browser" with a "SamsungBrowser/" token, stays as ua-parser names it)
_GENERIC = frozenset(
    {
        "Chrome",
        "Chrome Mobile",
        "Chrome Mobile WebView",
        "Safari",
        "Mobile Safari",
        "Android",
        "Other",
        "Yandex Browser",
    }
)


def browser_family(ua: str, parsed: str) -> str:
    """ua-parser's family, or the regional browser its UA names (Yandex app, Samsung...)
    where ua-parser gave a generic one."""
    if parsed not in _GENERIC:
        return parsed
    for marker, name in _BROWSERS:
        if marker in ua:
            return name
    return parsed


def brand(parsed: str | None) -> str:
    """The device maker, or empty for ua-parser's placeholders (``Generic_Android``...)."""
    if not parsed or _PLACEHOLDER.match(parsed):
        return ""
    return parsed
