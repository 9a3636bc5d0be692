"""Traffic channels: how a visit came (``channel``) and from where (``source``).

Channels: ``direct``, ``organic_search``, ``paid_search``, ``social``, ``email``,
``referral``, ``campaign``. The utm tags decide first (as in Google Analytics' default channel
grouping); otherwise the referrer's host, looked up in ``SOURCES``; a visit's channel is the
one of its first hit that says anything (``channel_step``), so the pages viewed after an
internal link keep the visit's channel.

No maintained referrer database is on PyPI (``referer-parser`` 0.4.1 dates from 2016), so the
table below is our own, drawn from Snowplow's referer-parser database (referers.yml,
github.com/snowplow-referer-parser/referer-parser) and Google Analytics 4's default channel
group source lists (support.google.com/analytics/answer/9756891), trimmed to the engines,
networks and webmails seen in Azerbaijan, Turkey and Russia plus the global ones. A search
engine is folded across its country domains (``google.az``, ``google.com.tr``, ``yandex.ru``
are all Google / Yandex) by matching the registrable name, not the whole host.
"""

from __future__ import annotations

import re
from collections.abc import Callable, MutableMapping
from functools import lru_cache
from typing import Any

from stream_jobs.pipeline import Hit

CHANNELS = ("direct", "organic_search", "paid_search", "social", "email", "referral", "campaign")

#: host (or a suffix after a dot) -> (kind, source name); checked most specific first
SOURCES: dict[str, tuple[str, str]] = {
    # webmails (before their companies' search engines)
    "mail.google.com": ("email", "Gmail"),
    "inbox.google.com": ("email", "Gmail"),
    "com.google.android.gm": ("email", "Gmail"),
    "mail.yandex.ru": ("email", "Yandex Mail"),
    "mail.yandex.com": ("email", "Yandex Mail"),
    "mail.yandex.az": ("email", "Yandex Mail"),
    "mail.yandex.com.tr": ("email", "Yandex Mail"),
    "mail.yahoo.com": ("email", "Yahoo Mail"),
    "mail.ru": ("email", "Mail.ru"),
    "e.mail.ru": ("email", "Mail.ru"),
    "outlook.live.com": ("email", "Outlook"),
    "outlook.office.com": ("email", "Outlook"),
    "outlook.office365.com": ("email", "Outlook"),
    "mail.aol.com": ("email", "AOL Mail"),
    "mail.proton.me": ("email", "Proton Mail"),
    "mail.zoho.com": ("email", "Zoho Mail"),
    "ru.mail.mailapp": ("email", "Mail.ru"),
    "com.microsoft.office.outlook": ("email", "Outlook"),
    # social networks and messengers
    "facebook.com": ("social", "Facebook"),
    "fb.com": ("social", "Facebook"),
    "fb.me": ("social", "Facebook"),
    "messenger.com": ("social", "Facebook"),
    "com.facebook.katana": ("social", "Facebook"),
    "instagram.com": ("social", "Instagram"),
    "com.instagram.android": ("social", "Instagram"),
    "linkedin.com": ("social", "LinkedIn"),
    "lnkd.in": ("social", "LinkedIn"),
    "com.linkedin.android": ("social", "LinkedIn"),
    "t.me": ("social", "Telegram"),
    "telegram.me": ("social", "Telegram"),
    "telegram.org": ("social", "Telegram"),
    "org.telegram.messenger": ("social", "Telegram"),
    "whatsapp.com": ("social", "WhatsApp"),
    "wa.me": ("social", "WhatsApp"),
    "com.whatsapp": ("social", "WhatsApp"),
    "x.com": ("social", "X (Twitter)"),
    "twitter.com": ("social", "X (Twitter)"),
    "t.co": ("social", "X (Twitter)"),
    "youtube.com": ("social", "YouTube"),
    "youtu.be": ("social", "YouTube"),
    "vk.com": ("social", "VK"),
    "vk.ru": ("social", "VK"),
    "ok.ru": ("social", "Odnoklassniki"),
    "tiktok.com": ("social", "TikTok"),
    "reddit.com": ("social", "Reddit"),
    "pinterest.com": ("social", "Pinterest"),
    "threads.net": ("social", "Threads"),
    "discord.com": ("social", "Discord"),
    "snapchat.com": ("social", "Snapchat"),
    "quora.com": ("social", "Quora"),
    "tumblr.com": ("social", "Tumblr"),
    "dzen.ru": ("social", "Dzen"),
    "viber.com": ("social", "Viber"),
    # search engines with a fixed host
    "bing.com": ("search", "Bing"),
    "duckduckgo.com": ("search", "DuckDuckGo"),
    "search.yahoo.com": ("search", "Yahoo"),
    "ya.ru": ("search", "Yandex"),
    "go.mail.ru": ("search", "Mail.ru"),
    "baidu.com": ("search", "Baidu"),
    "ecosia.org": ("search", "Ecosia"),
    "search.brave.com": ("search", "Brave"),
    "startpage.com": ("search", "Startpage"),
    "qwant.com": ("search", "Qwant"),
    "naver.com": ("search", "Naver"),
    "seznam.cz": ("search", "Seznam"),
    "sogou.com": ("search", "Sogou"),
    "so.com": ("search", "360 Search"),
    "petalsearch.com": ("search", "Petal"),
    "search.aol.com": ("search", "AOL"),
    "ask.com": ("search", "Ask"),
    "perplexity.ai": ("search", "Perplexity"),
    "chatgpt.com": ("search", "ChatGPT"),
    "com.google.android.googlequicksearchbox": ("search", "Google"),
    "ru.yandex.searchplugin": ("search", "Yandex"),
}

#: search engines on every country domain: <name>.<tld>, <name>.com.<cc>, <name>.co.<cc>
_COUNTRY_ENGINES = re.compile(r"(?:^|\.)(google|yandex|yahoo|bing)\.(?:(?:com?|net)\.)?[a-z]{2,3}$")
_ENGINE_NAMES = {"google": "Google", "yandex": "Yandex", "yahoo": "Yahoo", "bing": "Bing"}

#: utm_source spellings -> the name the referrer table uses
_UTM_SOURCES = {
    "fb": "Facebook",
    "ig": "Instagram",
    "tg": "Telegram",
    "wa": "WhatsApp",
    "yt": "YouTube",
    "li": "LinkedIn",
    "tw": "X (Twitter)",
    "twitter": "X (Twitter)",
    "x": "X (Twitter)",
    "vk": "VK",
    "ok": "Odnoklassniki",
    "ya": "Yandex",
    "gmail": "Gmail",
}
_EMAIL_MEDIUMS = frozenset({"email", "e-mail", "e_mail", "mail", "newsletter"})
_SOCIAL_MEDIUMS = frozenset(
    {
        "social",
        "social-network",
        "social-media",
        "sm",
        "social_network",
        "social_media",
        "social network",
        "social media",
    }
)
_PAID = re.compile(r"^(.*cp.*|ppc|retargeting|paid.*|ads?|display|banner)$")


def source_of_host(host: str) -> tuple[str, str] | None:
    """(kind, name) of a referrer host (``search``, ``social`` or ``email``), else None."""
    host = host.lower().removeprefix("www.").removeprefix("m.")
    name = host
    while name:
        if name in SOURCES:
            return SOURCES[name]
        _, _, name = name.partition(".")
    if host.startswith("mail.") or host.startswith("webmail."):
        return "email", host
    found = _COUNTRY_ENGINES.search(host)
    if found and not host.startswith(("maps.", "translate.", "docs.", "drive.", "play.")):
        return "search", _ENGINE_NAMES[found.group(1)]
    return None


def _utm_name(source: str) -> tuple[str, str]:
    """(kind or '', display name) of a utm_source value."""
    low = source.strip().lower()
    if low in _UTM_SOURCES:
        name = _UTM_SOURCES[low]
    else:
        found = source_of_host(low if "." in low else f"{low}.com")
        name = found[1] if found else source
    kind = next((k for k, n in SOURCES.values() if n == name), "")
    if not kind and name in _ENGINE_NAMES.values():
        kind = "search"
    return kind, name


@lru_cache(maxsize=8192)
def classify(
    utm_source: str, utm_medium: str, utm_campaign: str, referrer: str
) -> tuple[str, str] | None:
    """(channel, source) of one hit, or None when it says nothing (no utm tag and no
    external referrer: a direct hit or an internal link)."""
    medium = utm_medium.strip().lower()
    if utm_source or medium or utm_campaign:
        kind, name = _utm_name(utm_source) if utm_source else ("", "")
        if medium in _EMAIL_MEDIUMS or kind == "email":
            return "email", name
        if _PAID.match(medium):
            return (
                "paid_search" if kind == "search" else "social" if kind == "social" else "campaign"
            ), name
        if medium in _SOCIAL_MEDIUMS or kind == "social":
            return "social", name
        if medium == "organic" and kind == "search":
            return "organic_search", name
        if medium == "referral":
            return "referral", name
        return "campaign", name
    if not referrer:
        return None
    found = source_of_host(referrer)
    if found is None:
        return "referral", referrer
    kind, name = found
    return ("organic_search" if kind == "search" else kind), name


def channel_step(store: MutableMapping[str, Any]) -> Callable[[Hit], Hit]:
    """``channel`` and ``source`` of the visit, kept in the session store (after sessionize):
    the first hit of a session that carries utm tags or an external referrer sets them (a
    session that starts without either is ``direct``). E-mail opens keep their own (set by
    ``stream_jobs.email_opens``)."""

    def channel(hit: Hit) -> Hit:
        out = hit.out
        if out.get("event_type") == "email_open":
            return hit
        vid = out["visitor_id"]
        state = store.get(vid)
        if state is not None and "ch" in state:  # the visit's channel is known
            out["channel"], out["source"] = state["ch"], state["src"]
            return hit
        chan, src = classify(
            out.get("utm_source", ""),
            out.get("utm_medium", ""),
            out.get("utm_campaign", ""),
            out.get("referrer_domain", ""),
        ) or ("direct", "")
        src = src[:64]
        if state is not None:  # the visit's later hits take it from here (no state: the
            store[vid] = {**state, "ch": chan, "src": src}  # hit was not sessionized)
        out["channel"], out["source"] = chan, src
        return hit

    return channel
