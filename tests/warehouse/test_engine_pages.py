"""The worker's start-up pages (warehouse/engine_pages.py): which mappings are paged out, and
that paging them out gives the process's own clean pages back while the engine still answers."""

from __future__ import annotations

import ctypes
import errno
import json
import shutil
import subprocess
import sys
from pathlib import Path

import chdb
import pytest

from warehouse import engine_pages
from warehouse.engine_pages import readonly_file_mappings, release_startup_pages

ROOT = Path(__file__).resolve().parents[2]

MAPS = """\
55d0a0000000-55d0a0001000 r--p 00000000 08:01 1 /usr/bin/python3.11
55d0a0001000-55d0a0003000 r-xp 00001000 08:01 1 /usr/bin/python3.11
55d0a0003000-55d0a0004000 rw-p 00003000 08:01 1 /usr/bin/python3.11
55d0a1000000-55d0a2000000 rw-p 00000000 00:00 0                          [heap]
7f0000000000-7f0000100000 rw-p 00000000 00:00 0
7f1000000000-7f1010000000 r-xp 00100000 08:01 2 /venv/site-packages/chdb/_chdb.abi3.so
7f1010000000-7f1011000000 rw-p 10100000 08:01 2 /venv/site-packages/chdb/_chdb.abi3.so
7f2000000000-7f2000001000 r--s 00000000 08:01 3 /tmp/shared file (deleted)
7ffd00000000-7ffd00002000 r-xp 00000000 00:00 0                          [vdso]
"""


def test_only_readonly_file_mappings_are_paged_out() -> None:
    assert readonly_file_mappings(MAPS) == [
        (0x55D0A0000000, 0x1000),  # the program's read-only data
        (0x55D0A0001000, 0x2000),  # its code
        (0x7F1000000000, 0x10000000),  # chDB's code; not its written data below
        (0x7F2000000000, 0x1000),  # a read-only shared file; not heap, anonymous or [vdso]
    ]


class OldKernelLibc:
    """libc of a kernel before 5.4: ``madvise(MADV_PAGEOUT)`` fails with EINVAL."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int, int]] = []

    def madvise(self, start: ctypes.c_void_p, length: ctypes.c_size_t, advice: int) -> int:
        self.calls.append((start.value or 0, length.value, advice))
        return -1


class FixedMaps:
    """``Path("/proc/self/maps")`` of a process mapping ``MAPS``."""

    def __init__(self, path: str) -> None:
        assert path == "/proc/self/maps"

    def read_text(self) -> str:
        return MAPS


@pytest.mark.unit
def test_a_kernel_without_pageout_changes_nothing_and_raises_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    libc = OldKernelLibc()
    monkeypatch.setattr(engine_pages, "Path", FixedMaps)
    monkeypatch.setattr(engine_pages.ctypes, "CDLL", lambda *args, **kwargs: libc)
    monkeypatch.setattr(engine_pages.ctypes, "get_errno", lambda: errno.EINVAL)
    given_back = release_startup_pages()
    assert isinstance(given_back, int) and given_back >= 0
    # each read-only file mapping was asked for once, in order, and the failures stopped nothing
    assert [(start, length) for start, length, _ in libc.calls] == readonly_file_mappings(MAPS)
    assert {advice for *_, advice in libc.calls} == {engine_pages.MADV_PAGEOUT}


@pytest.mark.unit
def test_without_proc_maps_nothing_is_given_back(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_proc(self: Path) -> str:
        raise FileNotFoundError(self)

    monkeypatch.setattr(engine_pages.Path, "read_text", no_proc)
    monkeypatch.setattr(
        engine_pages.ctypes, "CDLL", lambda *a, **k: pytest.fail("no maps: libc not needed")
    )
    assert release_startup_pages() == 0


CHILD = """
import json, re, sys
sys.path.insert(0, "@SITE@")  # a copy of chDB no other process maps (see the test)
from pathlib import Path
from warehouse.client import make_client
from warehouse.engine_pages import release_startup_pages

def smaps_kb(field, counted):  # ``field`` summed over the mappings ``counted`` accepts
    total, counting = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = re.match(r"^[0-9a-f]+-[0-9a-f]+ (\\S{4}) \\S+ \\S+ \\S+\\s+(.*)$", line)
        if head:
            counting = counted(head.group(1), head.group(2))
        elif counting and line.startswith(field + ":"):
            total += int(line.split()[1])
    return total

def own_clean_kb():  # clean pages of read-only file mappings that only this process maps
    return smaps_kb("Private_Clean", lambda perms, name: name.startswith("/") and "w" not in perms)

def lib_rss_kb():
    return smaps_kb("Rss", lambda perms, name: "_chdb" in name)

import chdb
assert chdb.__file__.startswith("@SITE@"), chdb.__file__
client = make_client("chdb://@PATH@", "pages")
client.command("CREATE TABLE n (x UInt64) ENGINE = MergeTree ORDER BY x")
client.command("INSERT INTO n SELECT number FROM numbers(100000)")
before = {"own": own_clean_kb(), "lib": lib_rss_kb()}
released = release_startup_pages()
after = {"own": own_clean_kb(), "lib": lib_rss_kb()}
answer = client.query("SELECT sum(x), uniqExact(x % 997) FROM n").result_rows[0]
client.command("INSERT INTO n SELECT number FROM numbers(10)")
count = client.query("SELECT count() FROM n").result_rows[0][0]
print(json.dumps(dict(before=before, after=after, released=released, answer=list(answer),
                      count=count)))
"""


@pytest.mark.clickhouse
def test_paging_out_gives_back_the_startup_pages_and_the_engine_still_answers(
    tmp_path: Path,
) -> None:
    """chDB's start-up touches far more of its library than it keeps using; after the call,
    the read-only pages only this process maps are gone, and queries and inserts answer as
    before. The kernel leaves a page that another process maps too, and other processes of
    this test run (the other pytest-xdist lane, workers they started) map the same chDB
    library: the child loads a copy of it, so that every page of that library is its own."""
    site = tmp_path / "site"
    for package in ("chdb", "chdb_core.libs"):  # the library and the libraries it links
        shutil.copytree(Path(chdb.__file__).parents[1] / package, site / package)
    child = CHILD.replace("@PATH@", str(tmp_path / "ch")).replace("@SITE@", str(site))
    try:
        out = subprocess.run(
            [sys.executable, "-c", child],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=120,
        )
    finally:  # half a GB: not left in the kept temporary directories of the last runs
        shutil.rmtree(site)
    assert out.returncode == 0, out.stderr[-3000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["before"]["lib"] > 100 * 1024, seen  # start-up touched >100 MB of the library
    assert seen["after"]["own"] <= seen["before"]["own"] // 10 + 1024, seen
    assert seen["after"]["lib"] < seen["before"]["lib"] // 2, seen
    assert seen["released"] >= 0
    assert seen["answer"] == [sum(range(100000)), 997]
    assert seen["count"] == 100010
