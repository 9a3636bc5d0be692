"""The privacy scans' one-pass search finds what the slow per-secret search found."""

from __future__ import annotations

import random

import pytest

from tests.leaks import found_in

pytestmark = pytest.mark.unit


def test_finds_exactly_the_secrets_a_per_secret_search_finds() -> None:
    rng = random.Random(7)
    secrets = [f"85.132.{rng.randrange(256)}.{rng.randrange(1, 255)}" for _ in range(500)]
    secrets += ["scan.person1@mail.az", "(050) 123-45-67", "CUST-1", "CUST-12", "é-ünïcode"]
    filler = "".join(rng.choice("abc.-@ 0123456789\ufffd") for _ in range(200_000))
    planted = rng.sample(secrets, 40) + ["CUST-12", "é-ünïcode"]
    pieces = [filler[i : i + 4000] + s for i, s in zip(range(0, 200_000, 4000), planted)]
    text = "".join(pieces)
    assert found_in(text, secrets) == sorted({s for s in secrets if s in text})
    assert {"CUST-1", "CUST-12", "é-ünïcode"} <= set(found_in(text, secrets))  # overlapping


def test_nothing_to_find() -> None:
    assert found_in("plain text", ["85.132.1.1"]) == []
    assert found_in("plain text", []) == []
    assert found_in("", ["x"]) == []
