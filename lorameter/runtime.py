"""Process-wide garbage-collector settings of the long-running commands.

Every one (``api``, ``ingest``, ``run``) freezes what start-up loaded: CPython's older
collections otherwise walk the modules, decoder tables and registry again and again, which
bench/e2e.py measured at ~70 µs of CPU per uplink in ``lorameter ingest`` (~400 → ~330 µs).

Only ``lorameter api`` also collects less often. Not ingest: bench/memory.py measured its peak RSS
under back-pressure at ~129 MiB with CPython's young threshold and ~155 MiB with the one below
(the 150 MiB target of issue 13), since some of what ingest allocates does sit in reference
cycles.
"""

from __future__ import annotations

import gc

__all__ = ["YOUNG_GC_THRESHOLD", "freeze_start_up", "tune_gc"]

# CPython's cyclic garbage collector starts a young collection every 700 net container
# allocations (``gc.get_threshold()`` is (700, 10, 10) by default), and every tenth of those
# reaches further. A year of one meter's readings builds ~100,000 small dicts and lists for the
# API: bench/queries.py measured collections taking over a third of the year's read. What the API
# builds (rows, dicts, JSON) makes no reference cycles and is freed by reference counting anyway.
YOUNG_GC_THRESHOLD = 10_000


def freeze_start_up() -> None:
    """Never walk again what start-up loaded: ``gc.freeze`` moves every object alive now (after
    a collection of start-up's garbage) out of all later collections. Thresholds unchanged."""
    gc.collect()
    gc.freeze()


def tune_gc() -> None:
    """``freeze_start_up``, and collect less often (the API process only)."""
    freeze_start_up()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_GC_THRESHOLD, older, oldest)
