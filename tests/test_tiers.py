"""The test tiers hold: a unit test that reaches for Kafka or chDB fails, saying which marker.

Planted tests run in a child pytest with the project's tier plugin (``tests/tiers.py``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PLANTED = """
import asyncio

import chdb
import clickhouse_connect
import kafka.net.inet
import pytest
from aiokafka import AIOKafkaProducer

ORIGINAL_CONNECT = chdb.connect


def test_plain():
    assert 1 + 1 == 2


def test_opens_chdb():
    chdb.connect(":memory:")


def test_opens_chdb_and_swallows_the_error(tmp_path):
    try:
        clickhouse_connect.get_client(dsn=f"chdb://{tmp_path}/ch")
    except Exception:
        pass


def test_opens_kafka_python():
    asyncio.run(kafka.net.inet.create_connection(None, "127.0.0.1", 9))


def test_opens_aiokafka_and_swallows_the_error():
    async def go():
        producer = AIOKafkaProducer(bootstrap_servers="127.0.0.1:9", request_timeout_ms=500)
        try:
            await producer.start()
        except Exception:
            pass
        finally:
            await producer.stop()
    asyncio.run(go())


def test_uses_the_ch_fixture(ch):
    pass


@pytest.mark.clickhouse
def test_marked_clickhouse_is_not_guarded():
    assert chdb.connect is ORIGINAL_CONNECT
"""

CONFTEST = """
import pytest

from tests.tiers import pytest_collection_modifyitems, pytest_runtest_setup, unit_tier_guard


@pytest.fixture
def ch():
    raise AssertionError("the guard must stop the test before this fixture starts chDB")
"""

INI = """
[pytest]
markers =
    unit: u
    kafka: k
    clickhouse: c
    browser: b
    faults: f
    long_outage: l
"""


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_planted.py").write_text(textwrap.dedent(PLANTED))
    (tmp_path / "conftest.py").write_text(textwrap.dedent(CONFTEST))
    (tmp_path / "pytest.ini").write_text(textwrap.dedent(INI))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "--strict-markers",
            "-W",
            "ignore::DeprecationWarning",
            *args,
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_unit_test_that_opens_kafka_or_chdb_fails_naming_the_marker(tmp_path: Path) -> None:
    _run(tmp_path, "-q", "--junitxml", str(tmp_path / "out.xml"))
    outcomes: dict[str, list[str]] = {}
    for case in ET.parse(tmp_path / "out.xml").iter("testcase"):
        problems = [el.get("message", "") for el in case if el.tag in ("failure", "error")]
        outcomes[case.get("name", "")] = problems
    assert outcomes["test_plain"] == []
    assert outcomes["test_marked_clickhouse_is_not_guarded"] == []
    for name, marker in [
        ("test_opens_chdb", "clickhouse"),
        ("test_opens_chdb_and_swallows_the_error", "clickhouse"),
        ("test_opens_kafka_python", "kafka"),
        ("test_opens_aiokafka_and_swallows_the_error", "kafka"),
        ("test_uses_the_ch_fixture", "clickhouse"),
    ]:
        assert outcomes[name], f"{name} passed although it is a unit test that opens {marker}"
        assert any(f"mark it @pytest.mark.{marker}" in text for text in outcomes[name]), outcomes
    assert "uses the fixture `ch`" in " ".join(outcomes["test_uses_the_ch_fixture"])


def test_the_unit_marker_selects_exactly_the_unmarked_tests(tmp_path: Path) -> None:
    listed = _run(tmp_path, "--co", "-q", "-m", "unit").stdout
    assert "test_plain" in listed and "test_opens_chdb" in listed
    assert "test_marked_clickhouse_is_not_guarded" not in listed
