"""Issue 13: e-mail open rules one by one (burst, send time, no UA), the pixel's fetch signals,
and hosting networks as a bot signal for hits without JS evidence (MaxMind Anonymous-IP)."""

from __future__ import annotations

from pathlib import Path

import pytest

from producers.collector.pixel_gate import PixelGate, fetch_signals
from stream_jobs.geo import GeoLookup
from stream_jobs.geo_writer import write_geoip
from stream_jobs.processors import build_pipeline
from tests.clock import FakeClock
from tests.stream_jobs.samples import AZ_IP, CHROME, raw_event

ROOT = Path(__file__).resolve().parents[2]
SHARED_ANON = next(
    (
        p
        for p in (
            b / "shared" / "testdata" / "maxmind" / "GeoIP2-Anonymous-IP-Test.mmdb"
            for b in (ROOT.parent, ROOT.parent.parent)
        )
        if p.exists()
    ),
    None,
)


def _open(n: int, ip: str = "203.0.113.5", ua: str | None = CHROME, **fields) -> dict:
    return raw_event(
        type="email_open",
        campaign="news-7",
        recipient=f"rcpt{n:06d}",
        ip=ip,
        ua=ua,
        url=None,
        ts=1_780_000_000_000 + n * 1000,
        **fields,
    )


def test_a_burst_from_one_address_turns_into_scanner_opens(make_pipeline) -> None:
    pipeline = make_pipeline()
    burst = [pipeline.run(_open(i))["open_class"] for i in range(14)]
    assert burst == ["human"] * 9 + ["scanner"] * 5  # seen from the 10th open on (the limit)
    spread = [pipeline.run(_open(100 + i, ip=f"85.132.9.{i + 1}"))["open_class"] for i in range(14)]
    assert spread == ["human"] * 14  # readers of one office or ISP on their own addresses


def test_send_time_head_prefetch_and_no_user_agent(make_pipeline) -> None:
    pipeline = make_pipeline()
    early = _open(1, ip=AZ_IP, sent_at=1_780_000_000_000 - 3000, received=1_780_000_001_000)
    later = _open(2, ip=AZ_IP, sent_at=1_780_000_000_000 - 3_600_000)
    assert pipeline.run(early)["open_class"] == "scanner"
    assert pipeline.run(later)["open_class"] == "human"
    assert pipeline.run(_open(3, ip=AZ_IP, method="HEAD"))["open_class"] == "scanner"
    assert pipeline.run(_open(4, ip=AZ_IP, purpose="prefetch"))["open_class"] == "scanner"
    assert pipeline.run(_open(5, ip=AZ_IP, ua=None))["open_class"] == "scanner"
    python = pipeline.run(_open(6, ip=AZ_IP, ua="python-requests/2.32.3"))
    assert (python["open_class"], python["source"]) == ("scanner", "Python Requests")


def test_fetch_signals_and_the_pixel_window() -> None:
    assert fetch_signals("GET", {}, {}) == {}
    assert fetch_signals("HEAD", {"sec-purpose": "prefetch;prerender"}, {"s": "1780000000"}) == {
        "method": "HEAD",
        "purpose": "prefetch",
        "sent_at": 1_780_000_000_000,
    }
    assert fetch_signals("GET", {"x-moz": "prefetch"}, {"s": "1780000000123"}) == {
        "purpose": "prefetch",
        "sent_at": 1_780_000_000_123,
    }
    assert fetch_signals("GET", {}, {"s": "yesterday"}) == {}  # ignored, the open still counts
    assert fetch_signals("GET", {}, {"s": "12"}) == {}  # 1970: not a send time
    clock = FakeClock()
    gate = PixelGate(30, max_keys=2, clock=clock)
    assert gate.first("c", "r1", "1.1.1.1", "ua") and not gate.first("c", "r1", "1.1.1.1", "ua")
    assert gate.first("c", "r1", "2.2.2.2", "ua")  # another fetcher: a scanner, then a reader
    clock.advance(31)
    assert gate.first("c", "r1", "1.1.1.1", "ua")  # after the window: another open
    gate.forget("c", "r1", "1.1.1.1", "ua")  # not recorded (broker down): the retry counts
    assert gate.first("c", "r1", "1.1.1.1", "ua")


@pytest.fixture
def anon_db(tmp_path) -> Path:
    return write_geoip(
        tmp_path / "anon.mmdb",
        "GeoIP2-Anonymous-IP",
        {
            "192.0.2.0/24": {"is_anonymous": True, "is_hosting_provider": True},
            "198.18.0.0/15": {"is_anonymous": True, "is_anonymous_vpn": True},
        },
    )


def test_service_requests_from_hosting_networks_are_bots(
    keys, classifier, clock, geo_dbs, anon_db
) -> None:
    geo = GeoLookup(geo_dbs["city"], geo_dbs["isp"], geo_dbs["asn"], anon_db)
    assert geo.network_kind("192.0.2.7").hosting and geo.network_kind("198.18.1.1").anonymous
    flagged = build_pipeline(
        keys=keys,
        geo=geo,
        classifier=classifier,
        sessions={},
        clock=clock,
        allow_clear_ip=True,
        hosting_bots=True,
    )
    bot = flagged.run(raw_event(type="service_request", ip="192.0.2.7"))
    assert (bot.reason, bot.detail) == ("bot", "hosting:hosting network")
    # the beacon's events ran JS, and VPN users are people: both stay
    assert flagged.run(raw_event(ip="192.0.2.7"))["event_type"] == "pageview"
    assert (
        flagged.run(raw_event(type="service_request", ip="198.18.1.1"))["event_type"]
        == "service_request"
    )
    off = build_pipeline(
        keys=keys,
        geo=geo,
        classifier=classifier,
        sessions={},
        clock=clock,
        allow_clear_ip=True,
        hosting_bots=False,
    )
    assert (
        off.run(raw_event(type="service_request", ip="192.0.2.7"))["event_type"]
        == "service_request"
    )


@pytest.mark.skipif(SHARED_ANON is None, reason="MaxMind test databases not beside the repo")
def test_maxmind_anonymous_ip_test_database() -> None:
    geo = GeoLookup(anonymous=SHARED_ANON)
    assert geo.network_kind("6.1.0.2").hosting and not geo.network_kind("1.2.3.4").hosting
    assert geo.network_kind("1.2.3.4").anonymous and not geo.network_kind("8.8.8.8").anonymous


_NOW = 1_800_000_000_000
#: Gmail's prefetch on delivery (SparkPost, "Gmail prefetching images")
GMAIL_PREFETCH = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/42.0.2311.135 Safari/537.36 Edge/12.246 Mozilla/5.0"
)
APPLE_MAIL = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)"
)
_REAL_OPENS = [
    # (user agent, ASN, expected class, expected name): published agents of mail services
    (
        "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)",
        15169,
        "image_proxy",
        "Gmail",
    ),
    # Gmail's prefetch on delivery, from Google's network, before anyone opens the message
    (GMAIL_PREFETCH, 15169, "scanner", "Gmail prefetch"),
    (GMAIL_PREFETCH, 0, "scanner", "Gmail prefetch"),
    # a script on Google's network is no reader's proxy
    ("python-requests/2.31.0", 15169, "scanner", "Python Requests"),
    (
        "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html",
        36646,
        "image_proxy",
        "Yahoo Mail",
    ),
    ("Mozilla/5.0", 12345, "privacy_proxy", "Apple Mail Privacy Protection"),
    # MPP on iCloud Private Relay's egress (Akamai), with a browser-like agent
    (APPLE_MAIL, 36183, "privacy_proxy", "Apple Mail Privacy Protection"),
    # the same Mail app with MPP off, from a consumer network: a reader
    (APPLE_MAIL, 29049, "human", ""),
    (
        "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17328; Pro)",
        29049,
        "human",
        "",
    ),
    ("Barracuda Sentinel (EE)", 29049, "scanner", "Barracuda Sentinel"),
    ("Microsoft Office Existence Discovery", 29049, "scanner", "MS Office Existence Discovery"),
    (
        "Microsoft Exchange/15.20 (Windows NT 10.0; Win64; x64)",
        29049,
        "scanner",
        "Microsoft Exchange",
    ),
    ("Office 365 Connectors", 29049, "scanner", "Office 365 Connectors"),
    ("iOS/16.5.1 (20F75) dataaccessd/1.0", 29049, "scanner", "Apple dataaccessd"),
    ("SCMGUARD", 29049, "scanner", "SCMGUARD"),
    ("lua-resty-http/0.10 (Lua) ngx_lua/10019", 29049, "scanner", "lua-resty-http"),
]


@pytest.mark.parametrize("ua, asn, expected, name", _REAL_OPENS)
def test_real_mail_services_and_scanners(ua: str, asn: int, expected: str, name: str) -> None:
    from stream_jobs.email_opens import OpenClassifier
    from stream_jobs.pipeline import Hit
    from stream_jobs.useragent import UAClassifier

    opens = OpenClassifier(UAClassifier(), GeoLookup())
    raw = {"type": "email_open", "campaign": "spring", "ts": _NOW, "received": _NOW}
    assert opens.classify(Hit(raw=raw, ip="85.132.10.20", ua=ua), asn) == (expected, name)
