"""Process-wide settings of lorameter's long-running commands (run, ingest, api, demo)."""

from __future__ import annotations

import gc

__all__ = ["YOUNG_GC_THRESHOLD", "tune_gc"]

# CPython's cyclic garbage collector starts a young collection every 700 net container
# allocations (``gc.get_threshold()`` is (700, 10, 10) by default), and every tenth of those
# reaches further. A year of one meter's readings builds ~100,000 small dicts and lists for the
# API, an ingest batch some thousands: bench/queries.py measured collections taking over half of
# the year's read. lorameter's data makes no reference cycles, so they are collected by reference
# counting anyway; the collector only needs to run now and then for the rare cycle.
YOUNG_GC_THRESHOLD = 10_000


def tune_gc() -> None:
    """Collect less often, and never walk again what start-up loaded (modules, decoder tables,
    the registry): ``gc.freeze`` moves those objects out of every later collection."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_GC_THRESHOLD, older, oldest)
