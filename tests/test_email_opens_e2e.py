"""Issue 13, e-mail opens end to end: pixel requests of readers, Apple MPP, Gmail / Yahoo /
Yandex image proxies and a 200-open scanner burst from one IP go through the collector, the
stream-job steps and chDB, and come back through the marketing API with the right human open
rate; a monitoring bot's service request comes back, counted apart, through the admin API."""

from __future__ import annotations

import base64
import json
import time
from datetime import date, timedelta

import httpx
import pytest
from starlette.testclient import TestClient

from anonymizer.keystore import KeyStore
from dashboards.app import create_app as create_dashboards
from dashboards.auth import add_token, tokens_path
from mayak.settings import Settings
from producers.collector.app import GIF, create_app
from stream_jobs.dead_letters import DeadLetter
from stream_jobs.geo import GeoLookup
from stream_jobs.geo_writer import write_geoip
from stream_jobs.processors import build_pipeline, ip_decrypter
from stream_jobs.sink import Lander, event_row, failed_row
from stream_jobs.useragent import UAClassifier
from tests.producers.test_collector import FakeOutbox
from tests.stream_jobs.samples import CHROME, IPHONE
from warehouse.campaigns import register_send

pytestmark = pytest.mark.clickhouse
KEY = base64.b64encode(b"w" * 32).decode()
PROXY = "127.0.0.1"  # the test client's address, a trusted proxy: X-Forwarded-For is the client
GMAIL = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
YAHOO = "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html"
YANDEX = "Mozilla/5.0 (compatible; YandexImageResizer/2.0; +http://yandex.com/bots)"
NETWORKS = {
    "85.132.0.0/16": (29049, "AZ"),
    "17.0.0.0/8": (714, "US"),
    "66.249.64.0/19": (15169, "US"),
    "98.136.0.0/14": (36646, "US"),
    "5.255.255.0/24": (13238, "RU"),
    "40.94.0.0/16": (8075, "US"),
    "198.51.100.0/24": (64500, "NL"),
}


def _write_geo(folder) -> dict[str, str]:
    """City, ASN and Anonymous-IP databases of ``NETWORKS`` (paths by setting name)."""
    databases = {
        "geoip_city": (
            "GeoIP2-City",
            {net: {"country": {"iso_code": country}} for net, (_, country) in NETWORKS.items()},
        ),
        "geoip_asn": (
            "GeoLite2-ASN",
            {
                net: {
                    "autonomous_system_number": number,
                    "autonomous_system_organization": f"AS{number}",
                }
                for net, (number, _) in NETWORKS.items()
            },
        ),
        "geoip_anonymous": (
            "GeoIP2-Anonymous-IP",
            {"198.51.100.0/24": {"is_anonymous": True, "is_hosting_provider": True}},
        ),
    }
    return {
        name: str(write_geoip(folder / f"{name}.mmdb", kind, networks))
        for name, (kind, networks) in databases.items()
    }


def _geo(folder) -> GeoLookup:
    paths = _write_geo(folder)
    return GeoLookup(paths["geoip_city"], None, paths["geoip_asn"], paths["geoip_anonymous"])


def _plan() -> list[tuple[str, int, str, str, dict]]:
    """(expected class, recipient number, client IP, UA, extra request parts) of each fetch."""
    plan: list[tuple[str, int, str, str, dict]] = []
    plan += [("human", i, f"85.132.1.{i + 1}", IPHONE if i % 2 else CHROME, {}) for i in range(10)]
    plan += [("privacy_proxy", 100 + i, f"17.58.{i}.9", "Mozilla/5.0", {}) for i in range(30)]
    plan += [("image_proxy", 200 + i, "66.249.84.1", GMAIL, {}) for i in range(20)]
    plan += [("image_proxy", 300 + i, "98.137.0.1", YAHOO, {}) for i in range(5)]
    plan += [("image_proxy", 400 + i, "5.255.255.5", YANDEX, {}) for i in range(15)]
    # a security gateway scans the whole campaign (readers included) from one address
    plan += [("scanner", i, "40.94.1.1", CHROME, {}) for i in range(200)]
    plan += [
        ("scanner", 500, "85.132.2.1", CHROME, {"method": "HEAD"}),
        ("scanner", 501, "85.132.2.2", CHROME, {"headers": {"Sec-Purpose": "prefetch"}}),
        ("scanner", 502, "85.132.2.3", CHROME, {"query": "?s={sent}"}),  # 2 s after the send
        ("scanner", 503, "198.51.100.7", CHROME, {}),
    ]
    return plan


def _query(extra: dict) -> str:
    """The pixel URL's query; ``{sent}``: a send time 2 s before this request (taken now, not
    when the plan was made: the requests before it may take longer than the 10 s window)."""
    return extra.get("query", "").replace("{sent}", str(int(time.time()) - 2))


READERS = 10 + 20 + 5 + 15  # human + Gmail, Yahoo and Yandex proxies (each a real open)
BY_CLASS = {"human": 10, "image_proxy": 40, "privacy_proxy": 30, "scanner": 204}


def _token(i: int) -> str:
    return f"rcpt{i:06d}"


def test_opens_are_classified_and_the_human_open_rate_is_right(tmp_path, wh) -> None:
    settings = Settings(
        data_dir=tmp_path,
        ip_key=KEY,
        collector_trusted_proxies=[PROXY],
        collector_rate_per_s=20.0,
        collector_rate_burst=60,
    )
    box = FakeOutbox()
    pixel = TestClient(create_app(settings, outbox=box), client=(PROXY, 5000))
    now = int(time.time())
    plan = _plan()
    for _, token, ip, ua, extra in plan:
        headers = {"User-Agent": ua, "X-Forwarded-For": ip, **extra.get("headers", {})}
        url = f"/o/spring-2026/{_token(token)}.gif{_query(extra)}"
        answer = pixel.request(extra.get("method", "GET"), url, headers=headers)
        assert answer.status_code == 200 and answer.headers["content-type"] == "image/gif"
        assert extra.get("method") == "HEAD" or answer.content == GIF
    # a reader re-opening within the de-duplication window is one open
    for _ in range(3):
        again = pixel.get(
            f"/o/spring-2026/{_token(0)}.gif",
            headers={"User-Agent": CHROME, "X-Forwarded-For": "85.132.1.1"},
        )
        assert again.status_code == 200 and again.content == GIF
    assert len(box.records) == len(plan)
    assert 'reason="pixel_repeat"} 3' in pixel.get("/metrics").text
    assert 'reason="rate_limited"' not in pixel.get("/metrics").text

    keys = KeyStore(tmp_path / "keys.db")
    pipeline = build_pipeline(
        keys=keys,
        geo=_geo(tmp_path),
        classifier=UAClassifier(),
        sessions={},
        decrypt_ip=ip_decrypter(settings),
        allow_clear_ip=True,
    )  # the hooks' bot event below
    bot = {
        "v": 1,
        "id": "6f1c1e0e-1d1a-4f57-9a53-0c1d2e3f4a5b",
        "type": "service_request",
        "site": "elegal",
        "ts": now * 1000,
        "service_type": "notary",
        "ua": "Zabbix",
        "ip": "85.132.3.3",
    }
    results = [pipeline.run(value) for _, value in box.records]
    results.append(pipeline.run(json.dumps(bot).encode()))
    events = [r for r in results if not isinstance(r, DeadLetter)]
    failed = [r for r in results if isinstance(r, DeadLetter)]
    assert len(events) == len(plan) and [f.detail for f in failed] == ["monitoring:Zabbix"]
    assert [e["open_class"] for e in events] == [expected for expected, *_ in plan]
    gmail = next(e for e in events if e["source"] == "Gmail")
    assert (gmail["device_type"], gmail["os"], gmail["browser"], gmail["country"]) == (
        "other",
        "",
        "",
        "",
    )  # not 'Windows XP desktop in the US' any more
    assert {e["channel"] for e in events} == {"email"}

    Lander(wh, "events", event_row).land([(0, i, e) for i, e in enumerate(events)])
    Lander(wh, "failed_events", failed_row).land(
        [(0, i, f.to_record()) for i, f in enumerate(failed)]
    )
    today = date.today()
    register_send(wh, "elegal", "spring-2026", 400, today, actor="marketing")
    token = add_token(tokens_path(settings), "mia.marketing", "marketing")
    admin = add_token(tokens_path(settings), "ali.admin", "admin")
    api = TestClient(create_dashboards(settings, wh, keys))
    span = {
        "site": "elegal",
        "from": str(today - timedelta(days=1)),
        "to": str(today + timedelta(days=1)),
    }
    report = api.get(
        "/api/marketing/campaigns", params=span, headers={"Authorization": f"Bearer {token}"}
    ).json()
    spring = next(c for c in report["campaigns"] if c["campaign_id"] == "spring-2026")
    assert spring["human_unique_opens"] == READERS
    assert spring["human_open_rate"] == round(READERS / 400, 4)
    assert spring["opens_by_class"] == BY_CLASS
    assert spring["machine_opens"] == 234 and spring["opens"] == len(plan)
    bots = api.get(
        "/api/admin/bots", params=span, headers={"Authorization": f"Bearer {admin}"}
    ).json()
    assert bots["categories"] == {"monitoring": 1}
    assert bots["bots"] == [{"category": "monitoring", "family": "Zabbix", "hits": 1}]
    keys.close()


def _wait_for_opens(
    url: str, headers: dict, params: dict, opens: int, timeout: float = 120.0
) -> dict:
    deadline, spring = time.monotonic() + timeout, {}
    while time.monotonic() < deadline:
        report = httpx.get(url, headers=headers, params=params, timeout=10).json()
        spring = next(
            (c for c in report.get("campaigns", []) if c["campaign_id"] == "spring-2026"), {}
        )
        if spring.get("opens", 0) >= opens:
            return spring
        time.sleep(0.5)
    raise AssertionError(f"opens never reached {opens}: {spring}")


@pytest.mark.kafka
def test_opens_through_kafka_the_worker_and_the_marketing_api(stack, tmp_path) -> None:
    stack.env.update({f"MAYAK_{k.upper()}": v for k, v in _write_geo(tmp_path).items()})
    stack.env["MAYAK_COLLECTOR_TRUSTED_PROXIES"] = json.dumps([PROXY])
    settings = stack.settings
    auth = {"Authorization": f"Bearer {add_token(tokens_path(settings), 'mia', 'marketing')}"}
    stack.start_worker()
    stack.start_collector()
    plan = _plan()
    with httpx.Client(base_url=settings.collector_url, timeout=10) as http:
        for _, token, ip, ua, extra in plan:
            headers = {"User-Agent": ua, "X-Forwarded-For": ip, **extra.get("headers", {})}
            answer = http.request(
                extra.get("method", "GET"),
                f"/o/spring-2026/{_token(token)}.gif{_query(extra)}",
                headers=headers,
            )
            assert answer.status_code == 200 and answer.headers["content-type"] == "image/gif"
    api = settings.dashboards_url
    sent = httpx.post(
        f"{api}/api/marketing/campaigns/spring-2026/sends",
        headers=auth,
        json={"site": settings.collector_pixel_site, "sent": 400},
        timeout=10,
    )
    assert sent.status_code == 200
    today = date.today()
    span = {
        "site": settings.collector_pixel_site,
        "from": str(today - timedelta(days=1)),
        "to": str(today + timedelta(days=1)),
    }
    spring = _wait_for_opens(f"{api}/api/marketing/campaigns", auth, span, len(plan))
    assert spring["opens"] == len(plan) and spring["opens_by_class"] == BY_CLASS
    assert spring["human_unique_opens"] == READERS
    assert spring["human_open_rate"] == round(READERS / 400, 4)


def test_a_pixel_refused_by_the_broker_counts_when_retried(tmp_path) -> None:
    box = FakeOutbox()
    settings = Settings(data_dir=tmp_path, ip_key=KEY)
    pixel = TestClient(create_app(settings, outbox=box))
    working = box.produce

    async def down(records) -> None:
        from producers.collector.outbox import Unavailable

        raise Unavailable("down")

    box.produce = down
    assert (
        pixel.get(f"/o/spring-2026/{_token(1)}.gif", headers={"User-Agent": CHROME}).status_code
        == 503
    )
    box.produce = working
    again = pixel.get(f"/o/spring-2026/{_token(1)}.gif", headers={"User-Agent": CHROME})
    assert again.status_code == 200 and len(box.records) == 1  # not taken for a repeat
