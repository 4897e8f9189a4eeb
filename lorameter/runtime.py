"""Process-wide settings of ``lorameter api``, the process that only serves reads.

Not for ingest (``run``, ``ingest``): bench/memory.py measured its peak RSS under back-pressure
at ~129 MiB with CPython's defaults and ~155 MiB with the young threshold below (the 150 MiB
target of issue 13), since some of what ingest allocates does sit in reference cycles.
"""

from __future__ import annotations

import gc

__all__ = ["YOUNG_GC_THRESHOLD", "tune_gc"]

# CPython's cyclic garbage collector starts a young collection every 700 net container
# allocations (``gc.get_threshold()`` is (700, 10, 10) by default), and every tenth of those
# reaches further. A year of one meter's readings builds ~100,000 small dicts and lists for the
# API: bench/queries.py measured collections taking over a third of the year's read. What the API
# builds (rows, dicts, JSON) makes no reference cycles and is freed by reference counting anyway.
YOUNG_GC_THRESHOLD = 10_000


def tune_gc() -> None:
    """Collect less often, and never walk again what start-up loaded (modules, decoder tables,
    the registry): ``gc.freeze`` moves those objects out of every later collection."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_GC_THRESHOLD, older, oldest)
