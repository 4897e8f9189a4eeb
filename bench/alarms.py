"""The alarm engine's cost: batched SQLite writes of the demo fleet's uplinks without and with
evaluation at ingest (the anchor and the engine, same uplinks, same run), and one sweep of the
fleet (silence for all, consumption patterns over 4 days of hourly consumption per water meter).
Also the evaluation alone, in µs per uplink, against the SQLite write of an uplink (the anchor),
with the registry's expected intervals and with every interval learnt from the uplinks;
rounds are interleaved (anchor, engine, anchor, ...) and the medians printed.

    .venv/bin/python bench/alarms.py [--meters 64] [--days 4] [--rounds 1]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine
from ingest.alarms import AlarmEngine
from ingest.devices import parse_registry
from ingest.pipeline import Accepted, Pipeline
from lorameter.demo import simulator
from storage.alarms import SQLiteAlarms
from storage.sqlite import SQLiteStore

logging.getLogger("lorameter.alarms").setLevel(logging.ERROR)  # no alarm lines in the figures

BATCH = 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--meters", type=int, default=64)
    parser.add_argument("--days", type=float, default=4)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    meters = simulator.fleet(args.meters)
    registry = parse_registry(simulator.registry_document(meters))
    pipeline = Pipeline(registry)
    end = datetime(2026, 11, 20, tzinfo=UTC)
    outcomes = [pipeline.process(t, b, end) for t, b in simulator.history(meters, end, args.days)]
    batches = [outcomes[i : i + BATCH] for i in range(0, len(outcomes), BATCH)]
    water = sum(1 for m in meters if m.kind in ("water", "pulse"))
    print(f"machine: {machine()}")
    print(
        f"fleet: {args.meters} meters ({water} water), {len(outcomes)} uplinks over {args.days} d"
    )
    anchors: list[float] = []
    engined: list[float] = []
    evaluations: list[float] = []
    with tempfile.TemporaryDirectory() as folder:
        for round_ in range(args.rounds):
            store = SQLiteStore(Path(folder) / f"anchor{round_}.db")
            started = time.perf_counter()
            for batch in batches:
                store.write_uplinks([o.record for o in batch if isinstance(o, Accepted)])
            anchors.append((time.perf_counter() - started) / len(outcomes))
            store.close()

            store = SQLiteStore(Path(folder) / f"alarms{round_}.db")
            alarms = SQLiteAlarms(Path(folder) / f"alarms{round_}.db", channels=("mqtt", "webhook"))
            engine = AlarmEngine(alarms, registry, store)
            evaluating = 0.0
            started = time.perf_counter()
            for batch in batches:
                store.write_uplinks([o.record for o in batch if isinstance(o, Accepted)])
                before = time.perf_counter()
                engine.on_stored(batch)
                evaluating += time.perf_counter() - before
            engined.append((time.perf_counter() - started) / len(outcomes))
            evaluations.append(evaluating / len(outcomes))
            if round_ < args.rounds - 1:
                alarms.close()
                store.close()
        anchor, both = statistics.median(anchors), statistics.median(engined)
        evaluation = statistics.median(evaluations)
        print(f"SQLite writes alone (anchor):      {1 / anchor:9,.0f} uplinks/s"
              f" ({anchor * 1e6:.0f} µs per uplink)")  # fmt: skip
        print(f"SQLite writes + alarm evaluation:  {1 / both:9,.0f} uplinks/s"
              f" ({anchor / both:.2f}x the anchor)")  # fmt: skip
        print(f"alarm evaluation alone:            {evaluation * 1e6:9,.1f} µs per uplink"
              f" ({evaluation / anchor:.3f}x an uplink's SQLite write)")  # fmt: skip
        # Without the registry's expected_interval_s every uplink learns its device's interval.
        learning = parse_registry(
            {"devices": [{k: v for k, v in d.items() if k != "expected_interval_s"}
                         for d in simulator.registry_document(meters)["devices"]]}
        )  # fmt: skip
        learnt: list[float] = []
        for round_ in range(args.rounds):
            path = Path(folder) / f"learnt{round_}.db"
            learner = AlarmEngine(SQLiteAlarms(path, channels=("mqtt",)), learning, store)
            evaluating = 0.0
            for batch in batches:
                before = time.perf_counter()
                learner.on_stored(batch)
                evaluating += time.perf_counter() - before
            learnt.append(evaluating / len(outcomes))
            learner.alarms.close()
        evaluation = statistics.median(learnt)
        print(f"  ... with intervals learnt:       {evaluation * 1e6:9,.1f} µs per uplink"
              f" ({evaluation / anchor:.3f}x an uplink's SQLite write)")  # fmt: skip
        started = time.perf_counter()
        engine.sweep(end)
        took = time.perf_counter() - started
        active = alarms.active_counts()
        print(f"one sweep of {args.meters} meters:      {took * 1000:9,.0f} ms"
              f" ({took * 1000 / args.meters:.1f} ms per meter); active: {active}")  # fmt: skip
        alarms.close()
        store.close()


if __name__ == "__main__":
    main()
