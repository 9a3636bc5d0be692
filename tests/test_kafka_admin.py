"""The one Kafka admin helper (mayak.kafka_admin): how it builds, closes and fails.

With a fake client: the timeout policy and the bootstrap reach the client, the client is
closed however the block ends, and a client that finds no broker becomes one clear error.
With a real (dead) address: the error comes within the bootstrap bound, and `mayak topics`
prints it as one line instead of a traceback. And no production module builds an admin
client of its own.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, ClassVar

import pytest

from mayak.kafka_admin import (
    BOOTSTRAP_TIMEOUT_MS,
    REQUEST_TIMEOUT_MS,
    BrokerUnreachable,
    kafka_admin,
)
from mayak.kafka_local import free_port

ROOT = Path(__file__).resolve().parents[1]


class _Admin:
    """A fake kafka-python admin client: records how it was built and whether it was closed."""

    built: ClassVar[list[dict[str, Any]]] = []
    closed: ClassVar[int] = 0
    fail: ClassVar[Exception | None] = None

    def __init__(self, **configs: Any) -> None:
        if _Admin.fail is not None:
            raise _Admin.fail
        _Admin.built.append(configs)

    def close(self) -> None:
        _Admin.closed += 1


@pytest.fixture
def fake_admin(monkeypatch: pytest.MonkeyPatch) -> type[_Admin]:
    import kafka

    monkeypatch.setattr(kafka, "KafkaAdminClient", _Admin)
    _Admin.built, _Admin.closed, _Admin.fail = [], 0, None
    return _Admin


def test_the_client_gets_the_policy_and_is_closed_however_the_block_ends(
    fake_admin: type[_Admin],
) -> None:
    with kafka_admin("127.0.0.1:9") as admin:
        assert isinstance(admin, _Admin)
    assert fake_admin.built == [
        {
            "bootstrap_servers": "127.0.0.1:9",
            "request_timeout_ms": REQUEST_TIMEOUT_MS,
            "bootstrap_timeout_ms": BOOTSTRAP_TIMEOUT_MS,
        }
    ]
    assert fake_admin.closed == 1
    with pytest.raises(ValueError, match="inside"), kafka_admin("127.0.0.1:9"):
        raise ValueError("inside")  # an error of the block passes unchanged ...
    assert fake_admin.closed == 2  # ... and the client is closed all the same


def test_no_broker_is_one_error_that_says_what_to_do(fake_admin: type[_Admin]) -> None:
    from kafka.errors import KafkaConnectionError, KafkaTimeoutError

    for cause in (KafkaConnectionError("refused"), KafkaTimeoutError("bootstrap timed out")):
        fake_admin.fail = cause
        with pytest.raises(BrokerUnreachable) as refused, kafka_admin("10.9.8.7:9092", who="X"):
            pytest.fail("the block must not run without a client")
        message = str(refused.value)
        assert message.startswith("X cannot reach Kafka at 10.9.8.7:9092")
        assert "start the broker" in message and "MAYAK_KAFKA_BOOTSTRAP" in message
        assert refused.value.cause is cause and refused.value.bootstrap == "10.9.8.7:9092"
    assert fake_admin.closed == 0  # nothing was built, nothing to close


@pytest.mark.kafka  # a Kafka client connects (to a port nobody listens on)
def test_a_dead_address_fails_within_the_bootstrap_bound() -> None:
    started = time.monotonic()
    with pytest.raises(BrokerUnreachable), kafka_admin(f"127.0.0.1:{free_port()}"):
        pass
    # kafka-python alone waits 30 s; the policy gives up after 5 s (slack for a busy machine)
    assert time.monotonic() - started < BOOTSTRAP_TIMEOUT_MS / 1000 + 10


@pytest.mark.kafka  # the child's Kafka client connects (to a port nobody listens on)
def test_mayak_topics_without_a_broker_says_what_to_do(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "MAYAK_DATA_DIR": str(tmp_path),
        "MAYAK_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}",
    }
    done = subprocess.run(
        [sys.executable, "-m", "mayak", "topics"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "cannot reach Kafka" in done.stderr and "start the broker" in done.stderr
    assert "Traceback" not in done.stderr


def test_no_production_module_builds_its_own_admin_client() -> None:
    packages = ["mayak", "stream_jobs", "anonymizer", "producers", "warehouse", "dashboards"]
    builders = [
        f"{path.relative_to(ROOT)}:{number}"
        for package in packages
        for path in sorted((ROOT / package).rglob("*.py"))
        if path.name != "kafka_admin.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"\bKafkaAdminClient\b|\bAdminClient\(", line)
    ]
    assert builders == [], "open admin clients with mayak.kafka_admin.kafka_admin"
