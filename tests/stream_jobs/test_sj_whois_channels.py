"""Issue 13: every visit gets a traffic channel and, for search and social, the source name."""

from __future__ import annotations

import pytest

from stream_jobs.channels import CHANNELS, classify, source_of_host
from tests.stream_jobs.samples import raw_event

PAGE = "https://e-legal.az/services/notary"


@pytest.mark.parametrize(
    "url, ref, channel, source",
    [
        (PAGE, "https://www.google.az/search?q=notarius+baki", "organic_search", "Google"),
        (PAGE, "https://www.google.com.tr/", "organic_search", "Google"),
        (PAGE, "https://google.co.uk/", "organic_search", "Google"),
        (PAGE, "https://yandex.ru/search/?text=notarius", "organic_search", "Yandex"),
        (PAGE, "https://yandex.az/", "organic_search", "Yandex"),
        (PAGE, "https://www.bing.com/search?q=e-legal", "organic_search", "Bing"),
        (PAGE, "https://m.facebook.com/", "social", "Facebook"),
        (PAGE, "https://l.facebook.com/l.php?u=https%3A%2F%2Fe-legal.az", "social", "Facebook"),
        (PAGE, "https://l.instagram.com/?u=https%3A%2F%2Fe-legal.az", "social", "Instagram"),
        (PAGE, "https://t.me/", "social", "Telegram"),
        (PAGE, "https://web.whatsapp.com/", "social", "WhatsApp"),
        (PAGE, "https://www.linkedin.com/feed/", "social", "LinkedIn"),
        (PAGE, "android-app://org.telegram.messenger/", "social", "Telegram"),
        (PAGE, "https://mail.google.com/", "email", "Gmail"),
        (PAGE, "https://mail.yandex.ru/", "email", "Yandex Mail"),
        (
            PAGE + "?utm_source=newsletter&utm_medium=email&utm_campaign=spring-2026",
            None,
            "email",
            "newsletter",
        ),
        (
            PAGE + "?utm_source=google&utm_medium=cpc&utm_campaign=notary",
            None,
            "paid_search",
            "Google",
        ),
        (
            PAGE + "?utm_source=fb&utm_medium=social",
            "https://l.facebook.com/",
            "social",
            "Facebook",
        ),
        (PAGE + "?utm_source=partner&utm_campaign=expo", None, "campaign", "partner"),
        (PAGE, "https://azerbaijan-news.az/article/123", "referral", "azerbaijan-news.az"),
        (PAGE, None, "direct", ""),
    ],
)
def test_channel_of_real_referrers(make_pipeline, url, ref, channel, source) -> None:
    event = make_pipeline().run(raw_event(url=url, ref=ref))
    assert (event["channel"], event["source"]) == (channel, source)
    assert event["channel"] in CHANNELS


def test_the_visit_keeps_its_channel_and_a_new_visit_gets_its_own(make_pipeline) -> None:
    sessions: dict = {}
    pipeline = make_pipeline(sessions)
    ts = 1_780_000_000_000
    landing = pipeline.run(raw_event(ts=ts, ref="https://www.google.az/"))
    inner = pipeline.run(
        raw_event(
            ts=ts + 60_000, url="https://e-legal.az/faq", ref="https://e-legal.az/services/notary"
        )
    )
    later = pipeline.run(raw_event(ts=ts + 90 * 60_000, url="https://e-legal.az/faq"))
    assert landing["session_id"] == inner["session_id"] != later["session_id"]
    assert (inner["channel"], inner["source"]) == ("organic_search", "Google")
    assert (later["channel"], later["source"]) == ("direct", "")


def test_search_engines_fold_across_country_domains() -> None:
    hosts = [
        "google.az",
        "www.google.ru",
        "google.com.tr",
        "google.co.jp",
        "news.google.com",
        "yandex.com.tr",
        "yandex.kz",
        "ya.ru",
        "cn.bing.com",
        "search.yahoo.com",
    ]
    assert {source_of_host(h)[1] for h in hosts} == {"Google", "Yandex", "Bing", "Yahoo"}
    assert source_of_host("maps.google.com") is None  # not a search
    assert source_of_host("googleblog.example") is None
    assert classify("", "", "", "docs.python.org") == ("referral", "docs.python.org")
