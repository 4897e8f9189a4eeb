"""Redecode: dead letters re-processed, or a device's raw uplinks decoded again, after a fix."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from ingest.pipeline import Accepted, Pipeline
from storage.base import Store
from storage.schema import Point

__all__ = ["DeadLetterReport", "RawReport", "redecode_dead_letters", "redecode_raw"]

PAGE = 500


@dataclass
class DeadLetterReport:
    """What re-processing dead letters did."""

    examined: int = 0
    stored: int = 0  # became readings (or were stored already): removed from the dead letters
    still: Counter[str] = field(default_factory=Counter)  # still rejected, by today's reason


@dataclass
class RawReport:
    """What decoding a device's raw uplinks again did."""

    uplinks: int = 0
    points: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    replaced: bool = False


def redecode_dead_letters(
    store: Store, pipeline: Pipeline, *, reason: str | None = None, device: str | None = None
) -> DeadLetterReport:
    """Run dead letters through today's pipeline; those that become readings leave the list.

    A letter is removed only after its uplink is stored (durably: SQLite's transaction, or
    InfluxDB's spool), so a crash in between re-processes it next time, and as a duplicate
    it is then only removed: no reading is counted twice, no letter lost. Running it again
    finds only the letters that still fail.
    """
    report = DeadLetterReport()
    after: str | None = None
    while page := store.find_dead_letters(reason, device, after, PAGE):
        after = page[-1].key
        records, keys = [], []
        for stored in page:
            report.examined += 1
            letter = stored.letter
            out = pipeline.process(letter.topic, letter.raw, letter.received_at)
            if isinstance(out, Accepted):
                records.append(out.record)
                keys.append(stored.key)
            else:
                report.still[out.letter.reason] += 1
        if records:
            store.write_uplinks(records)
            store.delete_dead_letters(keys)
            report.stored += len(keys)
    return report


def redecode_raw(store: Store, pipeline: Pipeline, device: str) -> RawReport:
    """Replace a device's readings by its raw uplinks decoded with today's decoder.

    All or nothing: if any uplink no longer decodes, the stored readings stay as they are
    and the report says why. Idempotent: the same raw uplinks give the same points.
    """
    report = RawReport()
    points: list[Point] = []
    seen: set[str] = set()
    start = None
    while True:
        page = [r for r in store.raw_uplinks(device, start, PAGE) if r.dedup_key not in seen]
        if not page:
            break
        for raw in page:
            seen.add(raw.dedup_key)
            if raw.simulated:
                continue
            report.uplinks += 1
            out = pipeline.redecode(raw)
            if isinstance(out, Accepted):
                points.extend(out.record.points)
            else:
                report.failed[out.letter.reason] += 1
                if len(report.examples) < 3:
                    report.examples.append(f"{raw.received_at.isoformat()}: {out.letter.detail}")
        start = page[-1].received_at  # inclusive: `seen` skips what this page had
    if report.failed or not report.uplinks:
        return report
    store.delete_readings(device)
    for i in range(0, len(points), 5000):
        store.write_points(points[i : i + 5000])
    report.points = len(points)
    report.replaced = True
    return report
