"""lorameter.runtime: the GC settings the long-running commands apply."""

from __future__ import annotations

import subprocess
import sys

from lorameter.runtime import YOUNG_GC_THRESHOLD

PROBE = """
import gc
from lorameter.runtime import tune_gc
before = gc.get_threshold()
tune_gc()
after = gc.get_threshold()
print(before[0], after[0], after[1:] == before[1:], gc.get_freeze_count() > 0)
"""


def test_tune_gc_collects_less_often_and_freezes_what_start_up_loaded() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60
    )
    before, after, older_kept, frozen = done.stdout.split()
    assert int(before) < YOUNG_GC_THRESHOLD == int(after)
    assert older_kept == "True"
    assert frozen == "True"


FREEZE_PROBE = """
import gc
from lorameter.runtime import freeze_start_up
before = gc.get_threshold()
freeze_start_up()
print(gc.get_threshold() == before, gc.get_freeze_count() > 0)
"""


def test_ingest_freezes_start_up_but_keeps_the_thresholds() -> None:
    done = subprocess.run(
        [sys.executable, "-c", FREEZE_PROBE], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.split() == ["True", "True"]
