"""A process SIGKILLed in the middle of migrations 0019-0020, while one of their statements
runs (the column materialized; p_path defined again after it was dropped; p_path or p_sample
materialized): the next ``migrate`` finishes the job, every row has its session hash, the
projections answer what the table answers, and each migration is recorded once."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.faults, pytest.mark.clickhouse]

ROOT = Path(__file__).resolve().parents[2]
ROWS = 400_000
CHILD = """
import json, sys
from warehouse.client import make_client
from warehouse.migrate import migrate

phase, path, rows = sys.argv[1], sys.argv[2], int(sys.argv[3])
ch = make_client(f"chdb://{path}", "mayak")
if phase == "fill":  # the database as release 0018 left it, with data in it
    migrate(ch, upto=18)
    ch.command(
        "INSERT INTO events (event_id, event_type, site_id, ts, visitor_id, session_id, path) "
        "SELECT generateUUIDv4(), 'pageview', 'a', now64(3) - number, "
        "concat('v', toString(number % 9000)), concat('s', toString(number % 40000)), "
        f"concat('/p', toString(number % 300)) FROM numbers({rows})"
    )
elif phase == "migrate":  # each statement announced as it is sent: the test kills during one
    command = ch.command
    def announced(sql, *args, **kw):
        print("statement", " ".join(sql.splitlines()[-1].split()[:6]), flush=True)
        return command(sql, *args, **kw)
    ch.command = announced
    migrate(ch, log=lambda m: print(m, flush=True))
else:
    migrate(ch)
    wrong = "SELECT count() FROM events WHERE session_hash != cityHash64(session_id)"
    by_path = "SELECT count() FROM events WHERE site_id = 'a' AND path = '/p7'"
    print(json.dumps({
        "versions": ch.query(
            "SELECT version, count() FROM schema_migrations GROUP BY version ORDER BY version"
        ).result_rows,
        "rows": ch.query("SELECT count() FROM events").result_rows[0][0],
        "wrong": [
            ch.query(wrong, settings=s).result_rows[0][0]
            for s in ({"optimize_use_projections": 0}, {})
        ],
        "by_path": [
            ch.query(by_path, settings=s).result_rows[0][0]
            for s in ({"optimize_use_projections": 0}, {"force_optimize_projection": 1})
        ],
        "projections": sorted(r[0] for r in ch.query(
            "SELECT name FROM system.projections WHERE database = currentDatabase() "
            "AND table IN ('events', 'sessions')"
        ).result_rows),
    }))
"""


def _child(phase: str, path: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, phase, str(path), str(ROWS)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


#: the migrate run's commands: 1 the ledger, 2-7 migration 0019 (2-3 the column added to the
#: local and the shared table, 4 materialized, 5 p_path dropped, 6 defined, 7 materialized),
#: 8-9 migration 0020 (p_sample defined, materialized)
@pytest.mark.parametrize("during", [4, 6, 7, 9])
def test_a_migration_killed_midway_is_finished_by_the_next_run(tmp_path: Path, during: int) -> None:
    path = tmp_path / "ch"
    fill = _child("fill", path)
    assert fill.wait(300) == 0, fill.stderr.read()[-3000:] if fill.stderr else ""
    running = _child("migrate", path)
    assert running.stdout is not None
    sent = []
    while len(sent) < during:
        line = running.stdout.readline()
        assert line, f"the migration ended after {sent}"
        if line.startswith("statement"):
            sent.append(line.split(" ", 1)[1].strip())
    time.sleep(0.02)  # the statement on its way into the engine
    running.send_signal(signal.SIGKILL)
    rest, _ = running.communicate(timeout=30)
    print(f"killed during {sent[-1]!r}; then: {rest.split()}")
    assert "applied 0020_sessions_by_sample.sql" not in rest  # killed before the end
    check = _child("check", path)
    stdout, stderr = check.communicate(timeout=600)
    assert check.returncode == 0, stderr[-3000:]
    seen = json.loads(stdout.strip().splitlines()[-1])
    versions = [v for v, _ in seen["versions"]]
    assert {19, 20} <= set(versions) and all(n == 1 for _, n in seen["versions"]), seen
    assert seen["rows"] == ROWS
    assert seen["wrong"] == [0, 0]  # every row's hash, read from the table and as stored
    assert seen["by_path"][0] == seen["by_path"][1] == ROWS // 300 + (ROWS % 300 > 7)
    assert {"p_path", "p_sample"} <= set(seen["projections"]), seen
