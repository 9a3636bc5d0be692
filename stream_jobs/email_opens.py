"""Who fetched an e-mail pixel: a reader (``human``) or a machine.

Classes (``open_class`` of an ``email_open`` event), first rule that applies wins:

- ``image_proxy``: a mail provider's image proxy fetching for a reader who opened the message
  (Gmail ``GoogleImageProxy``, ``YahooMailProxy``, Yandex ``YandexImageResizer``; or any
  fetch from Google's, Yahoo's or Yandex's own network by an agent that is not a known bot).
  A real open, but the device, browser and country are the proxy's, so they are left empty.
- ``privacy_proxy``: Apple Mail Privacy Protection prefetches every message's images on
  delivery, opened or not: fetches from Apple's networks (AS714, AS6185) or iCloud Private
  Relay's egress (Akamai AS36183), or with MPP's bare ``Mozilla/5.0`` user agent.
- ``scanner``: Gmail's prefetch on delivery (its fixed ``... Edge/12.246 Mozilla/5.0`` agent,
  checked first), security gateways and link checkers: a HEAD request, a prefetch header, an
  open within ``early_s`` seconds of the send time the pixel URL carries, a security vendor's
  network (``scanner_asns``), a hosting network (MaxMind Anonymous-IP), a UA that is a known
  bot or HTTP library, or the ``burst_opens``-th open of one campaign from one IP address
  within ``burst_window_s`` (and every later one).
- ``human``: everything else.

None of these becomes a bot's dead letter: reports show human and machine opens side by side.
Limits: an unseen proxy or scanner with a browser UA on a consumer network passes as human;
a burst is only seen from its ``burst_opens``-th open on (the first ones count as human), and
is tracked per worker in memory; a mail client on an Apple network (e.g. a Mac in an Apple
office) counts as MPP.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from typing import Any

from stream_jobs.geo import GeoLookup
from stream_jobs.pipeline import Hit
from stream_jobs.useragent import UAClassifier

#: (UA marker, provider) of published mail image proxies
PROXY_AGENTS = (
    ("GoogleImageProxy", "Gmail"),
    ("ggpht.com", "Gmail"),
    ("YahooMailProxy", "Yahoo Mail"),
    ("YandexImageResizer", "Yandex Mail"),
    ("YaMail", "Yandex Mail"),
)
#: ASN -> provider whose network only fetches mail images for readers (no consumer access)
PROXY_ASNS = {
    15169: "Gmail",
    36646: "Yahoo Mail",
    10310: "Yahoo Mail",
    26101: "Yahoo Mail",
    34010: "Yahoo Mail",
    13238: "Yandex Mail",
    208722: "Yandex Mail",
}
#: Apple's networks, and Akamai's iCloud Private Relay egress (AS36183), on which Mail Privacy
#: Protection fetches run (Word to the Wise, "Apple MPP reporting and geolocation", 2021-09)
APPLE_ASNS = frozenset({714, 6185, 36183})
#: the user agent of Gmail's prefetch, which fetches a message's images from Google's network
#: when it arrives, before anyone opens it (SparkPost, "Gmail prefetching images")
GMAIL_PREFETCH_AGENT = "Edge/12.246 Mozilla/5.0"
MPP_AGENT = "Mozilla/5.0"
#: security gateways' networks: Microsoft (Defender / EOP), Proofpoint, Mimecast, Barracuda,
#: Cisco (IronPort), Broadcom (Symantec.cloud), Trend Micro, Sophos
SCANNER_ASNS = (8075, 22843, 26211, 30031, 15324, 16417, 21345, 16880, 202054)
#: reader fields that describe the proxy, not the reader, on a machine open
_PROXY_BLANK = {
    "browser": "",
    "browser_major": "",
    "os": "",
    "os_major": "",
    "device_brand": "",
    "device_type": "other",
    "country": "",
}


class OpenClassifier:
    """Classifies ``email_open`` hits (rules in the module docstring); the burst memory is
    bounded (``max_keys`` campaign + IP pairs, least recently seen forgotten first)."""

    def __init__(
        self,
        classifier: UAClassifier,
        geo: GeoLookup,
        *,
        scanner_asns: Iterable[int] = SCANNER_ASNS,
        early_s: float = 10.0,
        burst_opens: int = 10,
        burst_window_s: float = 60.0,
        max_keys: int = 50_000,
    ) -> None:
        self.classifier = classifier
        self.geo = geo
        self.scanner_asns = frozenset(scanner_asns)
        self.early_ms = early_s * 1000
        self.burst_opens = burst_opens
        self.burst_window_ms = burst_window_s * 1000
        self.max_keys = max_keys
        self._recent: OrderedDict[int, deque[int]] = OrderedDict()

    def classify(self, hit: Hit, asn: int) -> tuple[str, str]:
        """(open class, provider or machine name) of one open."""
        ua, raw = hit.ua or "", hit.raw
        if GMAIL_PREFETCH_AGENT in ua:
            return "scanner", "Gmail prefetch"
        for marker, provider in PROXY_AGENTS:
            if marker in ua:
                return "image_proxy", provider
        if asn in PROXY_ASNS:
            # a bot on the provider's network (Apps Script, a script's HTTP library) is no
            # reader's proxy: only an agent that is not a known bot counts as the proxy
            bot = self._bot(ua)
            return ("scanner", bot) if bot else ("image_proxy", PROXY_ASNS[asn])
        if asn in APPLE_ASNS or ua.strip() == MPP_AGENT:
            return "privacy_proxy", "Apple Mail Privacy Protection"
        if raw.get("method") == "HEAD" or raw.get("purpose") == "prefetch":
            return "scanner", "prefetch"
        sent_at, received = raw.get("sent_at"), raw.get("received") or raw["ts"]
        if sent_at and 0 <= received - sent_at < self.early_ms:
            return "scanner", "early"
        if asn in self.scanner_asns:
            return "scanner", f"AS{asn}"
        bot = self._bot(ua)
        if bot:
            return "scanner", bot
        if self.geo.network_kind(hit.ip).hosting:
            return "scanner", "hosting network"
        if self._burst(raw.get("campaign", ""), hit.ip or "", int(raw["ts"])):
            return "scanner", "burst"
        return "human", ""

    def _bot(self, ua: str) -> str:
        """The bot's name (at most 48 characters) when ``ua`` is a known bot or missing."""
        return (self.classifier.classify(ua).bot if ua else "no user agent")[:48]

    def _burst(self, campaign: str, ip: str, ts: int) -> bool:
        key = hash((campaign, ip))  # in memory only: the IP never leaves the process
        times = self._recent.get(key)
        if times is None:
            times = self._recent[key] = deque(maxlen=self.burst_opens)
        self._recent.move_to_end(key)
        times.append(ts)
        while len(self._recent) > self.max_keys:
            self._recent.popitem(last=False)
        return len(times) >= self.burst_opens and ts - times[0] <= self.burst_window_ms


def email_open_step(opens: OpenClassifier) -> Callable[[Hit], Hit]:
    """``open_class`` of e-mail opens (after the geo step, which gives the ASN); other events
    get an empty one. A machine open keeps no reader fields (they are the proxy's)."""

    def email_open(hit: Hit) -> Hit:
        out: dict[str, Any] = hit.out
        if hit.raw.get("type") != "email_open":
            out["open_class"] = ""
            return hit
        kind, name = opens.classify(hit, int(out.get("asn") or 0))
        out["open_class"] = kind
        # an open's channel is e-mail; its source names the proxy or scanner that fetched it
        out["channel"], out["source"] = "email", name
        if kind != "human":
            out.update(_PROXY_BLANK)
        return hit

    return email_open
