"""Give the worker's start-up pages back to the machine.

chDB's library is one ~555 MB file. Loading it and opening the engine run ClickHouse's
registrations (thousands of functions, formats and table engines, each in its own translation
unit), which touch some 270 MB of its code and read-only data spread over the whole file. The
pages are clean file pages, most of them needed only that once. The kernel would drop them
under memory pressure, but until then they count as the worker's resident memory: half of the
whole stack's at rest (stack bench, 2026-12-02: worker 537 MB, of it 285 MB chDB's library).

The same holds, at a smaller scale (~50 MB), for the start-up code of the Python extension
modules (pyarrow, cryptography, pydantic...). ``release_startup_pages`` asks the kernel to page
out every read-only file mapping of the process now (``madvise(MADV_PAGEOUT)``, Linux 5.4+).
What queries, inserts and requests use comes back on first touch, from the page cache or the
disk, and then stays. Written data and every anonymous page (the engine's caches, the rows,
Python's objects) are left as they are; so are pages other processes map too (the kernel skips
them).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import re
from pathlib import Path

import psutil

#: <linux/mman.h>: reclaim the range now (clean file pages are dropped, not written anywhere)
MADV_PAGEOUT = 21
_MAPPING = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ \S+\s+(.*)$")


def readonly_file_mappings(maps: str) -> list[tuple[int, int]]:
    """(start, length) of each mapping in ``maps`` (the text of /proc/PID/maps) of a file
    that the process cannot write (code and read-only data; not the heap, stacks or [vdso])."""
    found = []
    for line in maps.splitlines():
        match = _MAPPING.match(line)
        if match and match.group(4).startswith("/") and "w" not in match.group(3):
            start, end = int(match.group(1), 16), int(match.group(2), 16)
            found.append((start, end - start))
    return found


def release_startup_pages() -> int:
    """Page out this process's read-only file mappings; return the resident kB it gave back
    (0 where the kernel or the platform cannot: nothing else changes then)."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:  # not Linux: nothing to give back this way
        return 0
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    before = psutil.Process().memory_info().rss
    for start, length in readonly_file_mappings(maps):
        # EINVAL on kernels before 5.4: the pages then stay, as they did before this call
        libc.madvise(ctypes.c_void_p(start), ctypes.c_size_t(length), MADV_PAGEOUT)
    return max(0, before - psutil.Process().memory_info().rss) // 1024
