"""User-agent classification: ua-parser 1.x (ua-parser-rs regexes) feeding user-agents.

user-agents 2.2 would parse with ua-parser's slow legacy parser; we build its ``UserAgent``
from the fast parser's result instead, so its mobile/tablet/pc/bot rules stay as they are.
On top of it (``stream_jobs.devices``): TVs, consoles, cars, wearables, tablets whose UA says
"Mobile", the Yandex app, no placeholder brands; bots from ``stream_jobs.bots`` (the
crawler-user-agents list and our own agents) and from ua-parser's verdict. A bounded LRU
cache sits in front of the whole classification (real traffic repeats UAs).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from ua_parser import OS, Device, Parser
from ua_parser import UserAgent as ParsedAgent
from ua_parser.loaders import load_builtins
from ua_parser.regex import Resolver as RegexResolver
from user_agents.parsers import UserAgent, parse_browser, parse_device, parse_operating_system

from stream_jobs import devices
from stream_jobs.bots import BotMatcher

if TYPE_CHECKING:
    from ua_parser import Result


@dataclass(frozen=True)
class UAInfo:
    """What the pipeline keeps of a user agent (the string itself is dropped)."""

    browser: str
    browser_major: str
    os: str
    os_major: str
    device_type: str  # desktop / mobile / tablet / tv / console / car / wearable / other
    device_brand: str
    bot: str  # empty for humans, else the bot's family (what ``bot_hits`` counts)
    bot_category: str = ""  # search / seo / ai / monitoring / preview / library / ... / other

    @property
    def bot_detail(self) -> str:
        """``category:family`` of a bot (the dead letter's detail, see migration 0013)."""
        return f"{self.bot_category or 'other'}:{self.bot}" if self.bot else ""


class _FedUserAgent(UserAgent):
    """user-agents' classifier over an already parsed result (skips the legacy parser)."""

    def __init__(self, ua: str, result: Result) -> None:
        self.ua_string = ua
        b, o, d = _parts(result)
        self.browser = parse_browser(b.family, b.major, b.minor, b.patch, b.patch_minor)
        self.os = parse_operating_system(o.family, o.major, o.minor, o.patch, o.patch_minor)
        self.device = parse_device(d.family, d.brand, d.model)


class UAClassifier:
    """Parses and classifies user agents, with a bounded cache and a configurable bot list."""

    def __init__(self, bot_patterns: Iterable[str] = (), cache_size: int = 10_000) -> None:
        self._parser = Parser(RegexResolver(load_builtins()))
        self._bots = BotMatcher(bot_patterns)
        self.classify = lru_cache(maxsize=cache_size)(self._classify)

    def _classify(self, ua: str) -> UAInfo:
        result = self._parser.parse(ua)
        agent = _FedUserAgent(ua, result)
        b, o, d = _parts(result)
        browser = devices.browser_family(ua, b.family)
        bot, category = "", ""
        verdict = self._bots.match(ua, b.family)
        if verdict is not None:
            bot, category = verdict.family, verdict.category
        elif agent.is_bot:  # ua-parser's own verdict (device family "Spider")
            bot, category = (browser if browser != "Other" else "spider"), "other"
        return UAInfo(
            browser=browser,
            browser_major=b.major or "",
            os=o.family,
            os_major=o.major or "",
            device_type=devices.device_type(ua, _device_type(agent)),
            device_brand=devices.brand(d.brand),
            bot=bot[:64],
            bot_category=category,
        )


def _parts(result: Result) -> tuple[ParsedAgent, OS, Device]:
    # ua-parser marks a lookup failure with None; user-agents expects the "Other" family
    return (
        result.user_agent or ParsedAgent("Other"),
        result.os or OS("Other"),
        result.device or Device("Other"),
    )


def _device_type(agent: UserAgent) -> str:
    if agent.is_tablet:
        return "tablet"
    if agent.is_mobile:
        return "mobile"
    if agent.is_pc:
        return "desktop"
    return "other"


EMPTY_UA = UAInfo("", "", "", "", "other", "", "")
