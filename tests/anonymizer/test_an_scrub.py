"""Scrubbing of free-form values and pseudonyms."""

from __future__ import annotations

import pytest

from anonymizer import pseudonym
from anonymizer.scrub import (
    RouteTemplates,
    referrer_domain,
    scrub_path,
    scrub_text,
    scrub_url,
    scrub_value,
    utm_params,
)


@pytest.mark.parametrize(
    "text",
    [
        "ali.veliyev@mail.az",
        "ALI@Example.COM",
        "ali%40mail.az",
    ],
)
def test_emails_are_redacted(text: str) -> None:
    assert scrub_text(f"write to {text} today") == "write to [email] today"


@pytest.mark.parametrize(
    "text",
    [
        "+994 50 123 45 67",
        "+994501234567",
        "+994-50-123-45-67",
        "(+994 12) 555 55 55",
        "00994 55 123 45 67",
        "050 123 45 67",
        "050-123-45-67",
        "0501234567",
        "(012) 555-55-55",
        "555-55-55",
    ],
)
def test_phones_are_redacted(text: str) -> None:
    assert "[phone]" in scrub_text(f"call {text} now")
    assert not any(ch.isdigit() for ch in scrub_text(f"call {text} now"))


def test_long_digit_runs_are_redacted_short_numbers_kept() -> None:
    # ids of up to 8 digits are kept (article ids in slugs); tax, card, account numbers are not
    assert scrub_text("case 1234567 of 2024, page 12") == "case 1234567 of 2024, page 12"
    assert scrub_text("VÖEN 1400057421, card 4169 7388 1234 5678") == "VÖEN [num], card [num]"
    assert scrub_text("date 2024-01-15") == "date 2024-01-15"


def test_scrub_value_walks_nested_values() -> None:
    assert scrub_value({"who": "a@b.az", "n": 5, "list": ["+994501234567"]}) == {
        "who": "[email]",
        "n": 5,
        "list": ["[phone]"],
    }


def test_paths_get_ids_templated_and_personal_data_removed() -> None:
    assert scrub_path("/cases/12345") == "/cases/:id"
    assert scrub_path("/docs/3fa85f64-5717-4562-b3fc-2c963f66afa6/view") == "/docs/:id/view"
    assert scrub_path("/users/ali%40mail.az/") == "/users/[email]/"
    assert scrub_path("/page/2") == "/page/2"
    assert scrub_path("") == "/"


def test_route_templates_win() -> None:
    routes = RouteTemplates.parse(["/lawyers/:slug", "/cases/:id/files/:file"])
    assert scrub_path("/lawyers/aliyev-rashad", routes) == "/lawyers/:slug"
    assert scrub_path("/cases/9/files/passport.pdf", routes) == "/cases/:id/files/:file"
    assert scrub_path("/lawyers", routes) == "/lawyers"


def test_only_utm_parameters_survive() -> None:
    url = "https://e-legal.az/x?utm_source=fb&email=a@b.az&UTM_MEDIUM=cpc&q=my+name"
    assert utm_params(url) == {"utm_source": "fb", "utm_medium": "cpc"}
    assert scrub_url(url) == "https://e-legal.az/x?utm_source=fb&utm_medium=cpc"


def test_referrer_is_reduced_to_an_external_domain() -> None:
    assert (
        referrer_domain("https://www.google.com/search?q=ali", "https://e-legal.az/")
        == "google.com"
    )
    assert referrer_domain("https://e-legal.az/a", "https://e-legal.az/b") == ""
    assert referrer_domain("not a url", None) == ""
    assert referrer_domain(None, None) == ""


def test_pseudonyms_are_keyed_and_separated() -> None:
    k1, k2 = b"1" * 32, b"2" * 32
    assert pseudonym.customer_pid(k1, "u") != pseudonym.customer_pid(k2, "u")
    assert pseudonym.keyed_hash(k1, "ab", "c") != pseudonym.keyed_hash(k1, "a", "bc")
    vid = pseudonym.cookieless_visitor_id(k1, "s", "1.2.3.4", "UA")
    assert len(vid) == 32 and vid != pseudonym.cookieless_visitor_id(k2, "s", "1.2.3.4", "UA")
    assert (
        pseudonym.session_id("v", 1) == pseudonym.session_id("v", 1) != pseudonym.session_id("v", 2)
    )


def test_control_and_bidi_characters_decoded_from_a_url_stay_percent_encoded() -> None:
    """The collector refuses raw control characters, but a URL may carry them %-encoded, and
    the path is decoded here: %1F (once the research cell separator), %00, %1B and U+202E
    must not come out as the characters themselves (red team, 2026-12-02)."""
    assert scrub_path("/x%1Fgoogle") == "/x%1Fgoogle"
    assert scrub_path("/a%00b/%1B[31m") == "/a%00b/%1B[31m"
    assert scrub_path("/files/%E2%80%AEfdp.exe") == "/files/%E2%80%AEfdp.exe"
    assert scrub_path("/az%C9%99rbaycan/xidm%C9%99t") == "/azərbaycan/xidmət"  # text decodes
    assert utm_params("https://e-legal.az/?utm_source=news%0D%0Aletter") == {
        "utm_source": "news%0D%0Aletter"
    }
