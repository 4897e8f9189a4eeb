"""The ingest counters of one service: for /health, /metrics (Prometheus) and the console."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime
from typing import Any, ClassVar

from prometheus_client import CollectorRegistry
from prometheus_client import Counter as PromCounter
from prometheus_client import Histogram as PromHistogram

from ingest.pipeline import REASONS

__all__ = ["IngestStats"]

# Batch sizes and latencies span ~1 ms (one SQLite row) to many seconds (a stuck store).
_SECONDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class IngestStats:
    """Counters of this process's ingest, shown in /health, /metrics and on the console."""

    # attribute -> Prometheus counter name and help
    _METRICS: ClassVar[dict[str, tuple[str, str]]] = {
        "received": ("lorameter_messages_received", "MQTT messages taken into the writer queue"),
        "accepted": ("lorameter_uplinks_stored", "uplinks stored as readings"),
        "duplicates": ("lorameter_uplinks_duplicate", "uplinks already stored (redeliveries)"),
        "simulated": ("lorameter_uplinks_simulated", "simulated uplinks kept raw only"),
        "store_errors": ("lorameter_store_write_failures", "failed store writes (retried)"),
        "unacked": (
            "lorameter_messages_left_unacked",
            "messages left unacknowledged for the broker to redeliver (shutdown, back-pressure)",
        ),
    }

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.started_at = datetime.now(UTC)
        self.received = 0
        self.accepted = 0
        self.duplicates = 0
        self.simulated = 0
        self.unacked = 0
        self.rejected: Counter[str] = Counter()
        self.store_errors = 0
        self.last_store_error = ""
        self.last_uplink_at: datetime | None = None
        self.crashes: Counter[str] = Counter()
        self.last_crash = ""
        # A registry per service (never the global one): tests and demos run many at once.
        self.registry = CollectorRegistry(auto_describe=True)
        self._counters = {
            attr: PromCounter(name, text, registry=self.registry)
            for attr, (name, text) in self._METRICS.items()
        }
        self._dead = PromCounter(
            "lorameter_dead_letters", "messages kept as dead letters", ["reason"],
            registry=self.registry,
        )  # fmt: skip
        for reason in REASONS:
            self._dead.labels(reason)
        self._crashed = PromCounter(
            "lorameter_worker_crashes", "crashes of supervised threads (each restarted)",
            ["worker"], registry=self.registry,
        )  # fmt: skip
        self.decode_seconds = PromHistogram(
            "lorameter_decode_seconds", "time to parse and decode one message",
            buckets=_SECONDS, registry=self.registry,
        )  # fmt: skip
        self.write_seconds = PromHistogram(
            "lorameter_write_seconds", "time to write one batch to the store (with retries)",
            buckets=_SECONDS, registry=self.registry,
        )  # fmt: skip
        self.write_batch = PromHistogram(
            "lorameter_write_batch_messages", "messages per store write",
            buckets=(1, 10, 100, 1000, 10_000), registry=self.registry,
        )  # fmt: skip

    def count(self, **changes: int) -> None:
        with self._lock:
            for name, n in changes.items():
                setattr(self, name, getattr(self, name) + n)
                if n:
                    self._counters[name].inc(n)

    def reject(self, reason: str) -> None:
        with self._lock:
            self.rejected[reason] += 1
        self._dead.labels(reason).inc()

    def crash(self, worker: str, exc: BaseException) -> None:
        with self._lock:
            self.crashes[worker] += 1
            self.last_crash = f"{worker}: {type(exc).__name__}: {exc}"[:300]
        self._crashed.labels(worker).inc()

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "since": self.started_at.isoformat(),
                "received": self.received,
                "accepted": self.accepted,
                "duplicates": self.duplicates,
                "simulated": self.simulated,
                "rejected": {r: self.rejected.get(r, 0) for r in REASONS},
                "rejected_total": sum(self.rejected.values()),
                "store_errors": self.store_errors,
                "last_store_error": self.last_store_error,
                "left_unacked": self.unacked,
                "worker_crashes": dict(self.crashes),
                "last_crash": self.last_crash,
                "last_uplink_at": self.last_uplink_at.isoformat() if self.last_uplink_at else None,
            }
