"""User-agent classification: ua-parser 1.x (ua-parser-rs regexes) feeding user-agents.

user-agents 2.2 would parse with ua-parser's slow legacy parser; we build its ``UserAgent``
from the fast parser's result instead, so its mobile/tablet/pc/bot rules stay as they are.
A bounded LRU cache sits in front of the whole classification (real traffic repeats UAs).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from ua_parser import OS, Device, Parser
from ua_parser import UserAgent as ParsedAgent
from ua_parser.loaders import load_builtins
from ua_parser.regex import Resolver as RegexResolver
from user_agents.parsers import (UserAgent, parse_browser, parse_device,
                                 parse_operating_system)

#: Headless and automation tools that user-agents does not flag as bots.
HEADLESS_MARKERS = ("HeadlessChrome", "PhantomJS", "Headless", "Puppeteer", "Playwright",
                    "Selenium", "python-requests", "curl/", "Wget/", "Go-http-client",
                    "okhttp", "axios/", "node-fetch", "Scrapy", "HttpClient", "libwww-perl")


@dataclass(frozen=True)
class UAInfo:
    """What the pipeline keeps of a user agent (the string itself is dropped)."""

    browser: str
    browser_major: str
    os: str
    os_major: str
    device_type: str  # desktop / mobile / tablet / other
    device_brand: str
    bot: str  # empty for humans, else the bot's family (what ``bot_hits`` counts)


class _FedUserAgent(UserAgent):
    """user-agents' classifier over an already parsed result (skips the legacy parser)."""

    def __init__(self, ua: str, result) -> None:  # noqa: D107 - see class docstring
        self.ua_string = ua
        b, o, d = _parts(result)
        self.browser = parse_browser(b.family, b.major, b.minor, b.patch, b.patch_minor)
        self.os = parse_operating_system(o.family, o.major, o.minor, o.patch, o.patch_minor)
        self.device = parse_device(d.family, d.brand, d.model)


class UAClassifier:
    """Parses and classifies user agents, with a bounded cache and a configurable bot list."""

    def __init__(self, bot_patterns: Iterable[str] = (), cache_size: int = 10_000) -> None:
        self._parser = Parser(RegexResolver(load_builtins()))
        markers = [re.escape(m) for m in HEADLESS_MARKERS] + [p for p in bot_patterns if p]
        self._bots = re.compile("|".join(markers), re.IGNORECASE)
        self.classify = lru_cache(maxsize=cache_size)(self._classify)

    def _classify(self, ua: str) -> UAInfo:
        result = self._parser.parse(ua)
        agent = _FedUserAgent(ua, result)
        b, o, d = _parts(result)
        browser, os_family = b.family, o.family
        bot = ""
        if agent.is_bot:
            bot = browser if browser != "Other" else "spider"
        else:
            match = self._bots.search(ua)
            if match:
                bot = browser if browser != "Other" else match.group(0).strip("/")
        return UAInfo(
            browser=browser,
            browser_major=b.major or "",
            os=os_family,
            os_major=o.major or "",
            device_type=_device_type(agent),
            device_brand=d.brand or "",
            bot=bot[:64],
        )


def _parts(result) -> tuple[ParsedAgent, OS, Device]:
    # ua-parser marks a lookup failure with None; user-agents expects the "Other" family
    return (result.user_agent or ParsedAgent("Other"), result.os or OS("Other"),
            result.device or Device("Other"))


def _device_type(agent: UserAgent) -> str:
    if agent.is_tablet:
        return "tablet"
    if agent.is_mobile:
        return "mobile"
    if agent.is_pc:
        return "desktop"
    return "other"


EMPTY_UA = UAInfo("", "", "", "", "other", "", "")
