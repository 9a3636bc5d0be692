"""Realistic portal URLs and values, both ways: what is personal goes, what is not stays.

The rules are in ``anonymizer/personal.py``; each row here is one of them at work.
"""

from __future__ import annotations

import ipaddress
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anonymizer import scrub
from anonymizer.scrub import route_path, scrub_path, scrub_text, scrub_url, utm_params

SITE = "https://e-legal.az"

PERSONAL_URLS = [  # (url, path after scrubbing, the personal value that must be gone)
    ("/kabinet/ELG-CUST-7QX9", "/kabinet/[customer]", "7QX9"),
    ("/kabinet/elg-cust-7qx9/muracietler", "/kabinet/[customer]/muracietler", "7qx9"),
    ("/profile/+994501234567", "/profile/[phone]", "501234567"),
    ("/profile/%2B994501234567", "/profile/[phone]", "501234567"),
    ("/profile/994501234567/edit", "/profile/[phone]/edit", "501234567"),
    ("/profile/00994501234567", "/profile/[phone]", "501234567"),
    ("/zeng/050/123/45/67", "/zeng/[phone]", "123"),
    ("/zeng/050_123_45_67", "/zeng/[phone]", "123_45"),
    ("/zeng/050.123.45.67", "/zeng/[phone]", "123.45"),
    ("/zeng/(050)%20123-45-67", "/zeng/[phone]", "123-45"),
    ("/zeng/%2B994%2050%20123%2045%2067", "/zeng/[phone]", "123 45"),
    ("/zeng/+994-50-123-45-67", "/zeng/[phone]", "123-45"),
    ("/zeng/050%20123%2045%2067", "/zeng/[phone]", "123 45"),
    ("/zeng/50 123 45 67", "/zeng/[phone]", "123 45"),
    ("/zeng/0501234567", "/zeng/[phone]", "501234567"),
    ("/zeng/(012)%20555-55-55", "/zeng/[phone]", "555-55"),
    ("/zeng/555-55-55", "/zeng/[phone]", "555-55"),
    ("/arxiv/2024/05/15/0501234567", "/arxiv/2024/05/15/[phone]", "501234567"),
    ("/cases/10000/050/123/45/67", "/cases/:id/[phone]", "123/45"),
    ("/cases/10000/994_50_123_45_67/x", "/cases/:id/[phone]/x", "123_45"),
    ("/profil/tel0501234567", "/profil/tel[phone]", "501234567"),
    ("/search?q=ali@mail.az", "/search", "ali"),
    ("/u/ali%40mail.az/", "/u/[email]/", "ali"),
    ("/u/ali.veliyev@mail.az", "/u/[email]", "veliyev"),
    ("/ip/198.18.7.77", "/ip/[ip]", "198.18"),
    ("/ip/85.132.10.200/log", "/ip/[ip]/log", "85.132"),
    ("/ip/2001:db8::7", "/ip/[ip]", "db8"),
    ("/ip/2001%3Adb8%3A%3A7", "/ip/[ip]", "db8"),
    ("/ip/fe80::1ff:fe23:4567:890a", "/ip/[ip]", "fe23"),
    ("/ip/::ffff:198.18.7.77", "/ip/[ip]", "198.18"),
    ("/cases/10234/198.18.7.7", "/cases/:id/[ip]", "198.18"),  # after another number
    ("/cases/10234/2001:db8::7/x", "/cases/:id/[ip]/x", "db8"),
    ("/sened/voen-1400057421", "/sened/voen-[num]", "1400057421"),
    ("/odenis/4111%201111%201111%201111", "/odenis/[num]", "1111"),
]

KEPT_URLS = [  # (url, path after scrubbing): nothing here is personal
    ("/az/xeberler/2026-03-15-yeni-qanun", "/az/xeberler/2026-03-15-yeni-qanun"),
    ("/blog/2024/05/article-12345", "/blog/2024/05/article-12345"),
    ("/services/notary/apply?id=77&step=2", "/services/notary/apply"),
    ("/fresh/mayak-1-1764000000000", "/fresh/mayak-1-1764000000000"),
    ("/docs/ariza-2025.pdf", "/docs/ariza-2025.pdf"),
    ("/az/qanunlar/15.03.2026-qerar-123", "/az/qanunlar/15.03.2026-qerar-123"),
    ("/az/qanunlar/2026_03_15_qerar", "/az/qanunlar/2026_03_15_qerar"),
    ("/arxiv/2024/05/15/123", "/arxiv/2024/05/15/:id"),
    ("/az/xeberler/2025", "/az/xeberler/2025"),
    ("/az/mecelle/madde-123.4", "/az/mecelle/madde-123.4"),
    ("/az/kodeks/madde-12345678", "/az/kodeks/madde-12345678"),
    ("/iclas/2026-03-15T10:30:00-baki", "/iclas/2026-03-15T10:30:00-baki"),
    ("/app/release-1.2.3", "/app/release-1.2.3"),
    ("/cases/12345", "/cases/:id"),
    ("/events/3fa85f64-5717-4562-b3fc-2c963f66afa6", "/events/:id"),
    ("/files/a3f5e8d9c1b2a4f60123456789abcdef", "/files/:id"),
    ("/en/news/covid-19-rules-2020", "/en/news/covid-19-rules-2020"),
    ("/sitemap-2.xml", "/sitemap-2.xml"),
    ("/", "/"),
]


@pytest.mark.parametrize(("url", "path", "secret"), PERSONAL_URLS)
def test_personal_values_in_portal_urls_are_removed(url: str, path: str, secret: str) -> None:
    assert scrub_path(url.split("?")[0]) == path
    assert scrub_url(SITE + url) == SITE + path
    assert secret not in scrub_url(SITE + url)


@pytest.mark.parametrize(("url", "path"), KEPT_URLS)
def test_what_is_not_personal_is_kept(url: str, path: str) -> None:
    assert scrub_url(SITE + url) == SITE + path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # personal -> removed
        ("994501234567", "[phone]"),  # a campaign id made of a phone number
        ("050/123/45/67", "[phone]"),
        ("050_123_45_67", "[phone]"),
        ("(050) 123-45-67", "[phone]"),
        ("+994 50 123 45 67", "[phone]"),
        ("0501234567", "[phone]"),
        ("+1 (555) 123-4567", "[phone]"),
        ("555-123-4567", "[phone]"),
        ("8 800 555 35 35", "[phone]"),
        ("ELG-CUST-7QX9", "[customer]"),
        ("kabinet ELG-CUST-AB12CD", "kabinet [customer]"),
        ("198.18.7.77", "[ip]"),
        ("from 10.0.0.1 via 2a02:4780::1", "from [ip] via [ip]"),
        ("ali@mail.az yazdı", "[email] yazdı"),
        ("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0", "[ua]"),
        ("app E-Legal-App/3.1 (Android 14; SM-S918B)", "app [ua]"),
        ("kart 4111111111111111", "kart [num]"),
        ("VÖEN 1400057421", "VÖEN [num]"),
        ("15.03.2026 050 123 45 67", "15.03.2026 [phone]"),  # a date beside a phone: each judged
        ("2026-03-15 10:30 +994 50 123 45 67", "2026-03-15 10:30 [phone]"),
        # not personal -> kept
        ("newsletter-2026-11", "newsletter-2026-11"),
        ("spring_2026_05_15", "spring_2026_05_15"),
        ("Xəbərlər", "Xəbərlər"),
        ("iclas 10:30", "iclas 10:30"),
        ("15.03.2026 10:30", "15.03.2026 10:30"),
        ("Maddə 123.4, bənd 5", "Maddə 123.4, bənd 5"),
        ("case 1234567 of 2024", "case 1234567 of 2024"),
        ("page 2 of 14", "page 2 of 14"),
        ("ts 1764000000000", "ts 1764000000000"),
        ("id 3fa85f64-5717-4562-b3fc-2c963f66afa6", "id 3fa85f64-5717-4562-b3fc-2c963f66afa6"),
        ("hash a3f5e8d9c1b2a4f60123456789abcdef", "hash a3f5e8d9c1b2a4f60123456789abcdef"),
        ("std::vector", "std::vector"),
        ("1.2.3.4.5", "1.2.3.4.5"),
        ("1 250 000.00 AZN", "1 250 000.00 AZN"),
        ("2024/05/15/123", "2024/05/15/123"),
        ("Maddə 12/3 (bənd 1; 2)", "Maddə 12/3 (bənd 1; 2)"),
    ],
)
def test_free_text_both_ways(text: str, expected: str) -> None:
    assert scrub_text(text) == expected


def test_utm_values_and_referrers_lose_phones_ips_and_customer_ids() -> None:
    url = (
        f"{SITE}/x?utm_source=050/123/45/67&utm_medium=ELG-CUST-7QX9"
        "&utm_campaign=994501234567&utm_content=198.18.7.77"
    )
    assert utm_params(url) == {
        "utm_source": "[phone]",
        "utm_medium": "[customer]",
        "utm_campaign": "[phone]",
        "utm_content": "[ip]",
    }
    assert scrub.referrer_domain("http://198.18.7.77/a", SITE) == "[ip]"
    assert scrub.referrer_domain("http://[2001:db8::7]:8080/a", SITE) == "[ip]"


def test_route_templates_lose_the_http_method() -> None:
    assert route_path("POST /services/{service}/apply") == "/services/{service}/apply"
    assert route_path("/services/{service}/apply") == "/services/{service}/apply"
    assert route_path("get /kabinet/ELG-CUST-7QX9") == "/kabinet/[customer]"


def test_the_customer_id_format_is_a_setting() -> None:
    try:
        scrub.configure(r"P-\d{6}")
        assert scrub_text("/kabinet/P-123456/x") == "/kabinet/[customer]/x"
        assert scrub_text("ELG-CUST-7QX9") == "ELG-CUST-7QX9"  # no longer this portal's format
    finally:
        scrub.configure()
    assert scrub_text("ELG-CUST-7QX9") == "[customer]"


def test_the_setting_is_validated() -> None:
    from pydantic import ValidationError

    from mayak.settings import Settings

    assert Settings().customer_id_pattern == scrub.DEFAULT_CUSTOMER_ID_PATTERN
    for bad in ("ELG-(", "x*"):
        with pytest.raises(ValidationError, match="customer_id_pattern"):
            Settings(customer_id_pattern=bad)


def test_the_events_own_identity_is_cut_out_of_values() -> None:
    ua = "E-Legal-App/3.1 (Android 14; SM-S918B)"
    props = {"agent": ua, "who": "customer 4711-AZ", "n": 3, "list": [ua, "ok"]}
    assert scrub.without_secrets(props, {ua: "[ua]", "4711-AZ": "[customer]", None: "[ip]"}) == {
        "agent": "[ua]",
        "who": "customer [customer]",
        "n": 3,
        "list": ["[ua]", "ok"],
    }
    assert scrub.without_secrets({"k": "a7", "j": "a71"}, {"a7": "[customer]"}) == {
        "k": "[customer]",
        "j": "a71",
    }  # short secrets: whole values only


# --- properties: every separator style, every address --------------------------------------

_SEPARATORS = st.sampled_from([" ", "-", ".", "/", "_", "", " - "])


@st.composite
def az_phones(draw) -> str:
    """An Azerbaijani number as people type it: any prefix, grouping and separators."""
    operator = draw(st.sampled_from(["50", "51", "55", "70", "77", "99", "10", "12"]))
    number = draw(st.integers(1_000_000, 9_999_999))
    groups = [str(number)[:3], str(number)[3:5], str(number)[5:]]
    if draw(st.booleans()):
        groups = [str(number)]
    prefix = draw(st.sampled_from(["+994", "994", "00994", "0", "(0", "+994 (", ""]))
    head = prefix + operator + (")" if prefix.endswith("(") else "")
    return draw(_SEPARATORS).join([head, *groups])


@settings(max_examples=300, deadline=None)
@given(
    phone=az_phones(),
    where=st.sampled_from(
        ["zeng {} indi", "/zeng/{}/x", "{}", "/cases/10000/{}", "15.03.2026 {}", "{} 2026-03-15"]
    ),
)
def test_no_digit_of_a_phone_survives(phone: str, where: str) -> None:
    text = where.format(phone)
    out = scrub_path(text) if text.startswith("/") else scrub_text(text)
    out = out.replace("15.03.2026", "").replace("2026-03-15", "")  # dates stay
    assert not any(c.isdigit() for c in out), (text, out)


@settings(max_examples=200, deadline=None)
@given(address=st.ip_addresses().filter(lambda a: a != ipaddress.IPv6Address("::")))
def test_no_ip_address_survives(address) -> None:
    for text in (
        f"seen {address} today",
        f"/ip/{address}/log",
        f"/cases/10234/{address}",
        f"call 050 123 45 67 from {address}",
    ):
        out = scrub_path(text) if text.startswith("/") else scrub_text(text)
        assert str(address) not in out and "[ip]" in out, (text, out)


@settings(max_examples=200, deadline=None)
@given(
    day=st.dates(date(1990, 1, 1), date(2099, 12, 31)),
    ms=st.integers(1_000_000_000_000, 1_999_999_999_999),
    article=st.integers(1, 99_999_999),
)
def test_dates_timestamps_and_article_ids_survive(day, ms: int, article: int) -> None:
    for slug in (
        f"/az/xeberler/{day:%Y-%m-%d}-yeni-qanun",
        f"/az/{day:%d.%m.%Y}-qerar",
        f"/fresh/mayak-1-{ms}",
        f"/blog/{day.year}/article-{article}",
    ):
        assert scrub_path(slug) == slug
