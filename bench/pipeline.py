"""Decoded uplinks per second through the pipeline, without MQTT: parse → decode → points,
then the same plus batched writes into a SQLite file.

    .venv/bin/python bench/pipeline.py [--uplinks 20000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine
from ingest.devices import parse_registry
from ingest.pipeline import Accepted, Pipeline
from lorameter.demo import simulator
from storage.sqlite import SQLiteStore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--uplinks", type=int, default=20_000)
    args = parser.parse_args()
    meters = simulator.fleet(32)
    pipeline = Pipeline(parse_registry(simulator.registry_document(meters)))
    end = datetime(2025, 11, 20, tzinfo=UTC)
    days = args.uplinks / (32 * 96)
    messages = list(simulator.history(meters, end, days))[: args.uplinks]
    now = datetime.now(UTC)
    kinds = Counter(m.kind for m in meters)
    print(f"machine: {machine()}")
    print(f"fleet: {dict(kinds)}; {len(messages)} TTS v3 uplinks")

    started = time.perf_counter()
    outcomes = [pipeline.process(topic, body, now) for topic, body in messages]
    elapsed = time.perf_counter() - started
    assert all(isinstance(o, Accepted) for o in outcomes)
    points = sum(len(o.record.points) for o in outcomes if isinstance(o, Accepted))
    print(f"pipeline only:          {len(messages) / elapsed:8.0f} uplinks/s"
          f"  ({points} points, {elapsed:.2f} s)")  # fmt: skip

    with tempfile.TemporaryDirectory() as folder:
        store = SQLiteStore(Path(folder) / "bench.db")
        started = time.perf_counter()
        batch = []
        for topic, body in messages:
            outcome = pipeline.process(topic, body, now)
            assert isinstance(outcome, Accepted)
            batch.append(outcome.record)
            if len(batch) == 1000:
                store.write_uplinks(batch)
                batch.clear()
        store.write_uplinks(batch)
        elapsed = time.perf_counter() - started
        store.close()
    print(f"pipeline + SQLite:      {len(messages) / elapsed:8.0f} uplinks/s  ({elapsed:.2f} s)")


if __name__ == "__main__":
    main()
