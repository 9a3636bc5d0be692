"""The warehouse commands in child processes, going direct to chDB (no worker running)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

pytestmark = pytest.mark.clickhouse


def mayak(
    tmp_path, *args: str, ok: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "MAYAK_DATA_DIR": str(tmp_path / "data"),
        "MAYAK_DASHBOARDS_PORT": "9",  # nothing listens there: the CLI must go direct
        **(env or {}),
    }
    done = subprocess.run(
        [sys.executable, "-m", "mayak", *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert (done.returncode == 0) == ok, done.stderr
    return done


def test_campaign_erase_export_retention_token(tmp_path) -> None:
    sent = mayak(
        tmp_path,
        "campaign",
        "send",
        "spring",
        "--sent",
        "250",
        "--site",
        "elegal",
        "--on",
        "2026-03-01",
    )
    assert json.loads(sent.stdout) == {
        "site": "elegal",
        "campaign_id": "spring",
        "sent": 250,
        "sent_on": "2026-03-01",
    }
    assert (
        "positive count" in mayak(tmp_path, "campaign", "send", "x", "--sent", "0", ok=False).stderr
    )
    erased = mayak(tmp_path, "erase", "--customer", "cust-1", "--opt-out")
    assert json.loads(erased.stdout)["opted_out"] is True and "key did not exist" in erased.stderr
    assert mayak(tmp_path, "export", "--customer", "cust-1").stdout == ""
    assert "matches the schedule" in mayak(tmp_path, "retention", "check").stderr
    rows = mayak(tmp_path, "sql", "SELECT sum(sent) AS s FROM campaign_sends").stdout
    assert json.loads(rows) == {"s": 250}
    log = json.loads(mayak(tmp_path, "sql", "SELECT via, opted_out, actor FROM erasure_log").stdout)
    assert log["via"] == "cli" and log["opted_out"] == 1 and log["actor"].startswith("cli:")
    token = mayak(tmp_path, "token", "add", "--name", "ana", "--role", "product").stdout.strip()
    assert (
        token.startswith("mk_") and token not in (tmp_path / "data" / "api_tokens.toml").read_text()
    )
    assert (
        "unknown role"
        in mayak(tmp_path, "token", "add", "--name", "b", "--role", "boss", ok=False).stderr
    )


def test_campaign_send_defaults_to_today_where_reports_are_read(tmp_path) -> None:
    # UTC+14 and UTC-11 are never on the same date: the machine's own date fits one at most
    days = {}
    for tz in ("Pacific/Kiritimati", "Pacific/Pago_Pago"):
        before = datetime.now(ZoneInfo(tz)).date()
        sent = mayak(
            tmp_path,
            "campaign",
            "send",
            tz.split("/")[1],
            "--sent",
            "10",
            env={"MAYAK_REPORT_TIMEZONE": tz},
        )
        after = datetime.now(ZoneInfo(tz)).date()
        days[tz] = json.loads(sent.stdout)["sent_on"]
        assert days[tz] in {str(before), str(after)}
    assert days["Pacific/Kiritimati"] > days["Pacific/Pago_Pago"]
