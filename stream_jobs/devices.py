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

_TV = re.compile(
    r"SmartTV|Smart-TV|SMART-TV|Android ?TV|Google ?TV|\bBRAVIA\b|\bAFT[A-Z]{1,5}\b|CrKey|"
    r"\bRoku\b|Apple ?TV|\btvOS\b|Tizen[^;)]*\bTV\b|Web0S|webOS\.TV|NetCast|HbbTV|Opera TV|"
    r"\bMiTV|MIBOX|SHIELD Android TV|\bTV Build\b|; TV\b|\(TV;|DTV_|\bSTB\b|Chromecast",
    re.IGNORECASE)
_CONSOLE = re.compile(r"PlayStation|\bPS[345]\b|Xbox|Nintendo|\bWiiU?\b", re.IGNORECASE)
_CAR = re.compile(r"QtCarBrowser|\bTesla/|Android Automotive|\bAAOS\b|CarPlay")
_WEARABLE = re.compile(r"watchOS|Wear ?OS|\bWatch\d|Galaxy Watch|\bSM-R\d{3}|; wv\) Watch",
                       re.IGNORECASE)
_TABLET = re.compile(
    r"iPad|\bSM-[TXP]\d{3}|\bGT-P\d{4}|\bTab(let)?\b|\bTB-?\d{3,4}|\bTB\d{3}|MediaPad|MatePad|"
    r"\bPad ?\d*\b|Kindle|\bKF[A-Z]{2,4}\b|\bSilk/|Nexus (7|9|10)\b|\b(AGS|BAH|KOB|BTV|SCM)\d?-|"
    r"Lenovo (TB|YT)|\bYT-X|Xoom|PlayBook|\bTPA\d{2}")

#: UA markers of browsers that ua-parser folds into another family (first match wins)
_BROWSERS = (("YaApp_", "Yandex app"), ("YaSearchBrowser", "Yandex app"),
             ("YandexSearch/", "Yandex app"), ("YaBrowser/", "Yandex Browser"),
             ("SamsungBrowser/", "Samsung Internet"), ("UCBrowser/", "UC Browser"),
             ("OPR/", "Opera"), ("OPT/", "Opera Touch"), ("OPX/", "Opera GX"))

#: ua-parser's brand placeholders: they name no maker
_PLACEHOLDER = re.compile(r"^(Generic|Spider|Other|Unknown)", re.IGNORECASE)


def device_type(ua: str, parsed: str) -> str:
    """tv / console / car / wearable / tablet by the UA's markers, else ``parsed``."""
    if _TV.search(ua):
        return "tv"
    if _CONSOLE.search(ua):
        return "console"
    if _CAR.search(ua):
        return "car"
    if _WEARABLE.search(ua):
        return "wearable"
    if parsed in ("mobile", "tablet") and _TABLET.search(ua):
        return "tablet"
    return parsed


def browser_family(ua: str, parsed: str) -> str:
    """ua-parser's family, or the regional browser its UA names (Yandex app, Samsung...)."""
    for marker, name in _BROWSERS:
        if marker in ua:
            if name == "Opera" and parsed.startswith("Opera"):
                return parsed  # Opera Mobile / Opera Mini stay as ua-parser names them
            return name
    return parsed


def brand(parsed: str | None) -> str:
    """The device maker, or empty for ua-parser's placeholders (``Generic_Android``...)."""
    if not parsed or _PLACEHOLDER.match(parsed):
        return ""
    return parsed
