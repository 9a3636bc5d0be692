"""The shipped beacon (producers/beacon/dist/t.js): size budget, freshness, and its JS tests."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

BEACON = Path(__file__).resolve().parents[2] / "producers" / "beacon"
BUDGET = 1500  # bytes, gzip -9


def test_beacon_fits_the_gzip_budget() -> None:
    size = len(gzip.compress((BEACON / "dist" / "t.js").read_bytes(), compresslevel=9))
    assert 0 < size <= BUDGET, f"t.js is {size} bytes gzipped, budget {BUDGET}"


def _npm_ready() -> bool:
    return (
        shutil.which("npm") is not None and (BEACON / "node_modules" / ".bin" / "terser").exists()
    )


@pytest.mark.skipif(not _npm_ready(), reason="npm ci in producers/beacon first")
def test_dist_is_built_from_the_current_source(tmp_path: Path) -> None:
    out = tmp_path / "t.js"
    build = json.loads((BEACON / "package.json").read_text())["scripts"]["build"]
    assert build.endswith(" -o dist/t.js")
    subprocess.run(
        build.removesuffix("dist/t.js") + str(out),
        shell=True,
        check=True,
        cwd=BEACON,
        capture_output=True,
        env={**os.environ, "PATH": f"{BEACON}/node_modules/.bin:{os.environ['PATH']}"},
    )
    assert out.read_bytes() == (BEACON / "dist" / "t.js").read_bytes(), "run npm run build"


@pytest.mark.skipif(not _npm_ready(), reason="npm ci in producers/beacon first")
def test_beacon_js_unit_tests_pass() -> None:
    proc = subprocess.run(
        ["node", "--test", "test/"], cwd=BEACON, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "# fail 0" in proc.stdout
