"""Python's cyclic garbage collector, set for the stream worker (the collector only freezes
its start-up objects: ``mayak.cli.collector_app``).

Start-up leaves objects that live as long as the process (modules, pydantic schemas, Faust's
services, the chDB client): about 187,000 in the stream worker. The garbage collector's full
passes walk all of them again and again while events pour in: under the stack benchmark's load,
collections took 0.8 s of CPU in 10 s (a tenth of the process), most of it in the few full
passes. ``settle_heap`` moves what exists to the permanent generation (``gc.freeze``), which no
pass walks, and lets the young generation grow before it is collected: the same load then
spent 0.13 s in collections (2026-12-03, ``mayak bench --only stack --quick``). Frozen objects
are still freed by reference counting when they die; only cycles among them stay.
"""

from __future__ import annotations

import gc

#: allocations (net, of objects the collector tracks) between two young collections; Python's
#: default is 700, which a batch of 100 events in flight passes several times, promoting them
YOUNG_THRESHOLD = 10_000


def settle_heap(young_threshold: int = YOUNG_THRESHOLD) -> int:
    """Collect once, freeze every object that survives, raise the young generation's
    threshold; return how many objects are frozen (call once start-up is done)."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(young_threshold, middle, old)
    return gc.get_freeze_count()
