"""The batching sink between the MQTT callbacks and the store, and the ingest counters.

MQTT callbacks only parse and decode, then hand the outcome here (paho's network thread must
never wait for a database). One writer thread drains the queue in batches, writes them, and
only then acknowledges the messages to the broker (QoS 1), so a crash loses nothing the broker
has not kept. A store error is retried with backoff; the queue is bounded, so a stuck store
pushes back on the broker instead of filling memory.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ingest.pipeline import REASONS, Accepted, Rejected
from storage.base import Store, StoreError

__all__ = ["IngestStats", "Writer"]

log = logging.getLogger("lorameter.ingest")


class IngestStats:
    """Counters of this process's ingest, shown in /health and on the console."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.started_at = datetime.now(UTC)
        self.received = 0
        self.accepted = 0
        self.duplicates = 0
        self.simulated = 0
        self.rejected: Counter[str] = Counter()
        self.store_errors = 0
        self.last_store_error = ""
        self.last_uplink_at: datetime | None = None

    def count(self, **changes: int) -> None:
        with self._lock:
            for name, n in changes.items():
                setattr(self, name, getattr(self, name) + n)

    def reject(self, reason: str) -> None:
        with self._lock:
            self.rejected[reason] += 1

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
                "last_uplink_at": self.last_uplink_at.isoformat() if self.last_uplink_at else None,
            }


@dataclass(frozen=True)
class _Item:
    outcome: Accepted | Rejected
    done: Callable[[], None] | None


class Writer:
    """Writes pipeline outcomes to the store in batches from one background thread."""

    def __init__(
        self,
        store: Store,
        stats: IngestStats | None = None,
        *,
        max_batch: int = 1000,
        max_queue: int = 20_000,
        retry_max_s: float = 30.0,
    ) -> None:
        self.store = store
        self.stats = stats or IngestStats()
        self.max_batch = max_batch
        self.retry_max_s = retry_max_s
        self._queue: queue.Queue[_Item | None] = queue.Queue(max_queue)
        self._thread = threading.Thread(target=self._run, name="lorameter-writer", daemon=True)
        self._pending = 0
        self._idle = threading.Condition()
        self._stopping = False
        # Called with each stored batch's outcomes, before the broker acks (the alarm engine).
        self.on_stored: Callable[[Sequence[Accepted | Rejected]], None] | None = None

    def start(self) -> None:
        self._thread.start()

    def submit(self, outcome: Accepted | Rejected, done: Callable[[], None] | None = None) -> None:
        """Queue an outcome; ``done`` runs after it is durably stored (the broker ack)."""
        self.stats.count(received=1)
        with self._idle:
            self._pending += 1
        self._queue.put(_Item(outcome, done))

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    def flush(self, timeout: float = 60.0) -> bool:
        """Wait until everything submitted so far is stored; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def stop(self, timeout: float = 60.0) -> None:
        """Store what is queued, then end the thread."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            stop = False
            while len(batch) < self.max_batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch.append(more)
            self._write(batch)
            if stop:
                return

    def _write(self, batch: list[_Item]) -> None:
        records = [i.outcome.record for i in batch if isinstance(i.outcome, Accepted)]
        letters = [i.outcome.letter for i in batch if isinstance(i.outcome, Rejected)]
        delay = 0.5
        while True:
            try:
                result = self.store.write_uplinks(records) if records else None
                if letters:
                    self.store.write_dead_letters(letters)
                break
            except StoreError as exc:
                # Nothing is acknowledged until it is stored: keep the batch, retry, report.
                self.stats.count(store_errors=1)
                self.stats.last_store_error = str(exc)
                log.error("store write failed, retrying in %.1f s: %s", delay, exc)
                time.sleep(delay)
                delay = min(delay * 2, self.retry_max_s)
        if self.on_stored is not None:
            self.on_stored([i.outcome for i in batch])
        simulated = sum(1 for r in records if r.raw.simulated)
        if result is not None:
            self.stats.count(
                accepted=result.written - simulated,
                duplicates=result.duplicates,
                simulated=simulated,
            )
        if records:
            self.stats.last_uplink_at = max(r.raw.received_at for r in records)
        for letter in letters:
            self.stats.reject(letter.reason)
            where = f" from {letter.device}" if letter.device else ""
            log.warning("rejected message on %s%s: %s: %s", letter.topic, where, letter.reason,
                        letter.detail)  # fmt: skip
        for item in batch:
            if item.done is not None:
                try:
                    item.done()
                except Exception as exc:  # an ack on a closed connection: broker redelivers
                    log.debug("ack failed: %s", exc)
        with self._idle:
            self._pending -= len(batch)
            if not self._pending:
                self._idle.notify_all()
