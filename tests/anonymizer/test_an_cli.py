"""``mayak opt-out`` reaches the key store the processors use: the customer's events drop."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid


def _mayak(args: list[str], stdin: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mayak", *args],
        input=stdin.encode(),
        capture_output=True,
        env={**os.environ, **env},
        timeout=60,
    )


def test_opted_out_customer_is_dropped_with_reason_consent(tmp_path) -> None:
    env = {"MAYAK_DATA_DIR": str(tmp_path)}
    assert _mayak(["opt-out", "-"], "CUST-123456\n", env).returncode == 0
    event = {
        "id": str(uuid.uuid4()),
        "type": "service_request",
        "site": "elegal",
        "ts": int(time.time() * 1000),
        "uid": "CUST-123456",
    }
    done = _mayak(["enrich"], json.dumps(event) + "\n", env)
    assert done.stdout == b""
    rejections = [json.loads(line) for line in done.stderr.splitlines() if b'"reason"' in line]
    assert [(r["reason"], r["detail"]) for r in rejections] == [("consent", "opted_out")]
    assert b"CUST-123456" not in done.stderr
