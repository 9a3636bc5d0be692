"""Bot detection: the maintained crawler list (PyPI ``crawler-user-agents``) plus our own agents.

``BotMatcher.match(ua)`` names the bot (family) and its category (search, seo, ai, monitoring,
preview, library, headless, scanner, feed, ads, archiver, research, other). Sources, first
match wins:

1. ``OWN_AGENTS``: agents the list misses or names too loosely (monitoring probes, AI user
   agents, HTTP libraries, headless browsers, bot names appended to a browser UA); literal,
   case-insensitive substrings.
2. The crawler-user-agents patterns (about 1,500 regexes, each tagged by the list). Running
   them as one alternation costs ~2 ms per UA; instead every pattern's longest required
   literal goes into one Aho-Corasick automaton (pyahocorasick), and only the few patterns
   whose literal occurs in the UA are then run (case-sensitive, as the list's own tests do).
3. Extra regexes from settings (``bot_patterns``).

ua-parser's own verdict (device family ``Spider``) is the caller's fourth source
(``stream_jobs.useragent``). Everything here runs once per distinct UA (the caller caches).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from re import _constants as sre_c  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]

import ahocorasick
from crawleruseragents import CRAWLER_USER_AGENTS_DATA

#: crawler-user-agents tags -> our category, in order of precedence when a pattern has several
TAG_CATEGORY = (
    ("ai-crawler", "ai"),
    ("search-engine", "search"),
    ("social-preview", "preview"),
    ("monitoring", "monitoring"),
    ("seo", "seo"),
    ("http-library", "library"),
    ("browser-automation", "headless"),
    ("scanner", "scanner"),
    ("feed-reader", "feed"),
    ("advertising", "ads"),
    ("archiver", "archiver"),
    ("academic", "research"),
)
CATEGORIES = frozenset(c for _, c in TAG_CATEGORY) | {"other"}

#: (literal, family, category): what the list lacks or names too loosely. A literal matches
#: anywhere in the UA, case-insensitively, so it also catches a name appended to a browser UA.
OWN_AGENTS: tuple[tuple[str, str, str], ...] = (
    # monitoring and synthetic checks
    ("Zabbix", "Zabbix", "monitoring"),
    ("check_http/", "Nagios", "monitoring"),
    ("nagios-plugins", "Nagios", "monitoring"),
    ("Uptime-Kuma", "Uptime Kuma", "monitoring"),
    ("Route53-Health-Check", "Route 53 Health Check", "monitoring"),
    ("ELB-HealthChecker", "ELB Health Checker", "monitoring"),
    ("DatadogSynthetics", "Datadog Synthetics", "monitoring"),
    ("Chrome-Lighthouse", "Lighthouse", "monitoring"),
    ("PTST/", "WebPageTest", "monitoring"),
    ("Pingdom", "Pingdom", "monitoring"),
    ("UptimeRobot", "UptimeRobot", "monitoring"),
    ("StatusCake", "StatusCake", "monitoring"),
    ("kube-probe", "kube-probe", "monitoring"),
    ("Prometheus/", "Prometheus", "monitoring"),
    ("Blackbox Exporter", "Prometheus", "monitoring"),
    # AI agents and crawlers, link previews
    ("Perplexity-User", "Perplexity-User", "ai"),
    ("PerplexityBot", "PerplexityBot", "ai"),
    ("Claude-User", "Claude-User", "ai"),
    ("ClaudeBot", "ClaudeBot", "ai"),
    ("Claude-SearchBot", "Claude-SearchBot", "ai"),
    ("ChatGPT-User", "ChatGPT-User", "ai"),
    ("OAI-SearchBot", "OAI-SearchBot", "ai"),
    ("GPTBot", "GPTBot", "ai"),
    ("meta-externalagent", "Meta External Agent", "ai"),
    ("meta-externalfetcher", "Meta External Fetcher", "ai"),
    ("Bytespider", "Bytespider", "ai"),
    ("Amazonbot", "Amazonbot", "ai"),
    ("Applebot-Extended", "Applebot-Extended", "ai"),
    ("CCBot", "CCBot", "ai"),
    ("GoogleOther", "GoogleOther", "search"),
    ("Storebot-Google", "Storebot-Google", "search"),
    ("Google-InspectionTool", "Google-InspectionTool", "search"),
    ("YandexBot", "YandexBot", "search"),
    ("bingbot", "Bingbot", "search"),
    ("facebookexternalhit", "Facebook Preview", "preview"),
    ("TelegramBot", "Telegram Preview", "preview"),
    ("WhatsApp/", "WhatsApp Preview", "preview"),
    ("Slackbot", "Slack Preview", "preview"),
    ("Discordbot", "Discord Preview", "preview"),
    ("LinkedInBot", "LinkedIn Preview", "preview"),
    ("Twitterbot", "Twitter Preview", "preview"),
    ("SkypeUriPreview", "Skype Preview", "preview"),
    # mail security gateways and mail servers that fetch a message's images and links
    # (public bot-UA lists for e-mail opens, e.g. the GMass one; red team review 2026-12-02)
    ("Barracuda Sentinel", "Barracuda Sentinel", "scanner"),
    ("Microsoft Office Existence Discovery", "MS Office Existence Discovery", "scanner"),
    ("Microsoft Exchange/", "Microsoft Exchange", "scanner"),
    ("Office 365 Connectors", "Office 365 Connectors", "scanner"),
    ("dataaccessd/", "Apple dataaccessd", "scanner"),
    ("SCMGUARD", "SCMGUARD", "scanner"),
    # HTTP libraries and command-line clients
    ("lua-resty-http", "lua-resty-http", "library"),
    ("python-requests", "python-requests", "library"),
    ("aiohttp", "aiohttp", "library"),
    ("Python-urllib", "Python-urllib", "library"),
    ("python-httpx", "httpx", "library"),
    ("Python/", "Python", "library"),
    ("curl/", "curl", "library"),
    ("Wget", "Wget", "library"),
    ("Go-http-client", "Go-http-client", "library"),
    ("okhttp", "okhttp", "library"),
    ("axios/", "axios", "library"),
    ("node-fetch", "node-fetch", "library"),
    ("undici", "undici", "library"),
    ("Scrapy", "Scrapy", "library"),
    ("Apache-HttpClient", "Apache-HttpClient", "library"),
    ("HttpClient", "HttpClient", "library"),
    ("libwww-perl", "libwww-perl", "library"),
    ("Java/1.", "Java", "library"),
    ("Java-http-client", "Java", "library"),
    ("Faraday", "Faraday", "library"),
    ("GuzzleHttp", "Guzzle", "library"),
    ("PostmanRuntime", "Postman", "library"),
    ("insomnia/", "Insomnia", "library"),
    ("Dart/", "Dart", "library"),
    ("reqwest", "reqwest", "library"),
    ("HTTPie", "HTTPie", "library"),
    # headless and automated browsers
    ("HeadlessChrome", "HeadlessChrome", "headless"),
    ("PhantomJS", "PhantomJS", "headless"),
    ("Headless", "Headless", "headless"),
    ("Puppeteer", "Puppeteer", "headless"),
    ("Playwright", "Playwright", "headless"),
    ("Selenium", "Selenium", "headless"),
    ("Cypress/", "Cypress", "headless"),
)

#: crawler-list patterns that also match parts of browser UAs (uap-core's fixtures: phone
#: model names, an Opera Mini build number): such a match does not count when the collision's
#: regex matches too
MODEL_COLLISIONS = {
    "Butterfly": re.compile(r"HTC[ _]?(J )?Butterfly"),
    "Sonic": re.compile(r"ViewSonic|Ultra Sonic"),
    "008\\/": re.compile(r"\d008/"),
}


#: ua-parser families that name a browser (or nothing), not the agent: a bot whose UA parses
#: as one of these is named by our list instead
BROWSER_FAMILIES = frozenset(
    {
        "",
        "Other",
        "crawler",
        "Mozilla",
        "Chrome",
        "Chrome Mobile",
        "Chrome Mobile WebView",
        "Chrome Mobile iOS",
        "Chromium",
        "HeadlessChrome",
        "Safari",
        "Mobile Safari",
        "Mobile Safari UI/WKWebView",
        "Firefox",
        "Firefox Mobile",
        "Firefox iOS",
        "Edge",
        "Edge Mobile",
        "Opera",
        "Opera Mobile",
        "IE",
        "IE Mobile",
        "Samsung Internet",
        "Yandex Browser",
        "UC Browser",
        "Android",
        "Electron",
        "Apple Mail",
        "WebKit Nightly",
    }
)


@dataclass(frozen=True)
class BotVerdict:
    """Who the bot is (family, at most 48 characters) and what kind (one of ``CATEGORIES``)."""

    family: str
    category: str


def required_literals(pattern: str) -> list[str]:
    """Literals one of which occurs in every UA ``pattern`` matches (longest run per branch);
    empty when the pattern has none of at least 3 characters (then it is always run)."""
    try:
        parsed = sre_parse.parse(pattern)
    except re.error:
        return []
    items = list(parsed)
    if len(items) == 1 and items[0][0] is sre_c.BRANCH:
        found = [_longest_run(list(branch)) for branch in items[0][1][1]]
        return found if all(found) else []
    run = _longest_run(items)
    return [run] if run else []


def _longest_run(items: list) -> str:
    best, current = "", ""
    for op, arg in items:
        if op is sre_c.LITERAL:
            current += chr(arg)
            continue
        best, current = max(best, current, key=len), ""
    best = max(best, current, key=len)
    return best if len(best) >= 3 else ""


def _category(tags: Iterable[str]) -> str:
    tags = set(tags or ())
    return next((cat for tag, cat in TAG_CATEGORY if tag in tags), "other")


def _family_of(text: str) -> str:
    return re.sub(r"[^0-9A-Za-z]+$", "", re.sub(r"^[^0-9A-Za-z]+", "", text))[:48] or "bot"


class _Guarded:
    """A crawler regex that does not count where ``unless`` matches (a device model name)."""

    def __init__(self, regex: re.Pattern, unless: re.Pattern) -> None:
        self.regex, self.unless = regex, unless

    def search(self, ua: str) -> re.Match | None:
        return None if self.unless.search(ua) else self.regex.search(ua)


class BotMatcher:
    """Matches a UA against our agents, the crawler list and extra regexes (see module doc)."""

    def __init__(self, extra_patterns: Iterable[str] = ()) -> None:
        self._auto = ahocorasick.Automaton()
        keys: dict[str, list[tuple]] = {}
        for literal, family, category in OWN_AGENTS:
            keys.setdefault(literal.lower(), []).append((0, -len(literal), None, family, category))
        self._always: list[tuple[re.Pattern | _Guarded, str]] = []
        regex: re.Pattern | _Guarded
        for entry in CRAWLER_USER_AGENTS_DATA:
            regex, category = re.compile(entry["pattern"]), _category(entry.get("tags"))
            if entry["pattern"] in MODEL_COLLISIONS:
                regex = _Guarded(regex, MODEL_COLLISIONS[entry["pattern"]])
            literals = required_literals(entry["pattern"])
            if not literals:
                self._always.append((regex, category))
            for literal in literals:
                keys.setdefault(literal.lower(), []).append((1, 0, regex, "", category))
        for key, targets in keys.items():
            self._auto.add_word(key, targets)
        self._auto.make_automaton()
        extra = [p for p in extra_patterns if p]
        self._extra = re.compile("|".join(extra), re.IGNORECASE) if extra else None

    def match(self, ua: str, parsed_family: str = "") -> BotVerdict | None:
        """The bot ``ua`` belongs to, or None. ``parsed_family``: ua-parser's browser family,
        preferred as the name of a listed crawler when it is a specific one."""
        # our agents first, the longest literal first ("HeadlessChrome" before "Headless")
        hits = sorted(
            (t for _, targets in self._auto.iter(ua.lower()) for t in targets), key=lambda t: t[:2]
        )
        for source, _, regex, family, category in hits:
            if source == 0:
                return BotVerdict(self._name(parsed_family, family), category)
            found = regex.search(ua)
            if found:
                return BotVerdict(self._name(parsed_family, found.group(0)), category)
        for regex, category in self._always:
            found = regex.search(ua)
            if found:
                return BotVerdict(self._name(parsed_family, found.group(0)), category)
        if self._extra is not None:
            found = self._extra.search(ua)
            if found:
                return BotVerdict(self._name(parsed_family, found.group(0)), "other")
        return None

    @staticmethod
    def _name(parsed_family: str, ours: str) -> str:
        """ua-parser's family when it names the agent itself (``PingdomBot``, ``Boto3``), else
        ours: a browser family means the bot's name was appended to a browser's UA."""
        if parsed_family and parsed_family not in BROWSER_FAMILIES:
            return parsed_family[:48]
        return _family_of(ours)
