"""``mayak.heap.settle_heap``: start-up objects leave the cyclic GC's passes; new garbage does not.

Run in a child process: freezing the pytest process would change every later test's GC."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit

CHILD = """
import gc, weakref
from mayak.heap import YOUNG_THRESHOLD, settle_heap

class Node:
    pass

def cycle():
    a, b = Node(), Node()
    a.other, b.other = b, a
    return a

kept = [cycle() for _ in range(5000)]  # start-up state: 10,000 objects in cycles, alive
frozen = settle_heap()
assert frozen >= 10_000, frozen
assert gc.get_threshold()[0] == YOUNG_THRESHOLD
# a full pass no longer walks them: they are in no generation
assert not any(o is kept[0] for o in gc.get_objects(generation=2))
# garbage made afterwards is still collected
late = cycle()
probe = weakref.ref(late)
del late
gc.collect()
assert probe() is None, "a cycle made after settle_heap was not collected"
print("ok", frozen)
"""


def test_settle_heap_freezes_start_up_objects_and_still_collects_later_cycles() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok ")
