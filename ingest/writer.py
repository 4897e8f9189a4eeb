"""The batching sink between the MQTT callbacks and the store, and the ingest counters.

MQTT callbacks only parse and decode, then hand the outcome here (paho's network thread must
never wait for a database). One supervised writer thread drains the queue in batches, writes
them, and only then acknowledges the messages to the broker (QoS 1), so a crash loses nothing
the broker has not kept. Group commit: the writer takes everything queued (up to ``max_batch``)
and, when that is less than a full batch, lingers ``linger_s`` for more before writing, so live
traffic is written in batches of tens to hundreds of uplinks rather than a few (one transaction
or HTTP write each), at the cost of at most ``linger_s`` more latency.

A transient store error (disk full, database down) is retried with backoff; a batch with a record
the store can never keep (``RecordError``, or anything unexpected) is split in halves until that
record is alone, and it becomes an ``unstorable`` dead letter with the raw message. The queue is
bounded: a stuck store pushes back on the broker (``submit`` times out, the message stays
unacknowledged) instead of filling memory.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from ingest.pipeline import Accepted, Rejected
from ingest.stats import IngestStats
from ingest.supervise import Worker
from storage.base import RecordError, Store, StoreError, WriteResult
from storage.schema import DeadLetter, UplinkRecord

__all__ = ["Writer", "storable_letter"]

log = logging.getLogger("lorameter.ingest")

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class _Item:
    outcome: Accepted | Rejected
    done: Callable[[], None] | None
    queued_at: float = field(default_factory=time.monotonic)


class _BatchQueue(Generic[T]):
    """A bounded FIFO the writer empties a batch at a time (one lock round per batch, not per
    item, unlike ``queue.Queue``)."""

    def __init__(self, bound: int) -> None:
        self.bound = bound
        self.items: deque[T] = deque()
        self.lock = threading.Lock()
        self._not_empty = threading.Condition(self.lock)
        self._not_full = threading.Condition(self.lock)
        self.closed = False  # stop(): no more waiting for items

    def put(self, item: T, timeout: float | None) -> bool:
        with self.lock:
            if len(self.items) >= self.bound and not self._not_full.wait_for(
                lambda: len(self.items) < self.bound, timeout
            ):
                return False
            self.items.append(item)
            if len(self.items) == 1:
                self._not_empty.notify()
            return True

    def take(self, most: int, timeout: float | None = None) -> list[T]:
        """Up to ``most`` items, waiting up to ``timeout`` for the first ([] once closed)."""
        with self.lock:
            if not self.items and not self.closed:
                self._not_empty.wait_for(lambda: self.items or self.closed, timeout)
            items = self.items
            batch = [items.popleft() for _ in range(min(most, len(items)))]
            if batch:
                self._not_full.notify_all()
            return batch

    def close(self) -> None:
        with self.lock:
            self.closed = True
            self._not_empty.notify_all()

    def __len__(self) -> int:
        return len(self.items)


class _GiveUp(Exception):
    """Stopping while the store still fails: leave the batch unacknowledged."""


class Writer:
    """Writes pipeline outcomes to the store in batches from one supervised thread."""

    def __init__(
        self,
        store: Store,
        stats: IngestStats | None = None,
        *,
        max_batch: int = 1000,
        max_queue: int = 20_000,
        linger_s: float = 0.05,
        retry_max_s: float = 30.0,
    ) -> None:
        self.store = store
        self.stats = stats or IngestStats()
        self.max_batch = max_batch
        self.linger_s = linger_s
        self.retry_max_s = retry_max_s
        self._queue: _BatchQueue[_Item] = _BatchQueue(max_queue)
        self.worker = Worker("writer", self._run, on_crash=self.stats.crash)
        self._pending = 0
        self._idle = threading.Condition()
        self._inflight: list[_Item] = []
        self._give_up_at: float | None = None
        # What /health reads: when the last write ended well, and whether writes fail now.
        self.last_progress = time.monotonic()
        self.failing_since: float | None = None
        self._stopping = False
        # Called with each stored batch's outcomes, before the broker acks (the alarm engine).
        self.on_stored: Callable[[Sequence[Accepted | Rejected]], None] | None = None

    def start(self) -> None:
        self.worker.start()

    def submit(
        self,
        outcome: Accepted | Rejected,
        done: Callable[[], None] | None = None,
        *,
        timeout: float | None = None,
    ) -> bool:
        """Queue an outcome; ``done`` runs after it is durably stored (the broker ack).

        With a ``timeout``, False when the queue stayed full that long (nothing was queued).
        """
        with self._idle:  # before it can be written: the writer subtracts it
            self._pending += 1
        if not self._queue.put(_Item(outcome, done), timeout):
            with self._idle:
                self._pending -= 1
                if not self._pending:
                    self._idle.notify_all()
            return False
        self.stats.count(received=1)
        return True

    @property
    def depth(self) -> int:
        return len(self._queue)

    @property
    def full(self) -> bool:
        return len(self._queue) >= self._queue.bound

    def oldest_age_s(self) -> float:
        """Seconds the oldest message not yet written has waited (0 when there is none)."""
        oldest: float | None = None
        inflight = self._inflight
        if inflight:
            oldest = inflight[0].queued_at
        with self._queue.lock:
            head = self._queue.items[0] if self._queue.items else None
        if head is not None and (oldest is None or head.queued_at < oldest):
            oldest = head.queued_at
        return 0.0 if oldest is None else max(0.0, time.monotonic() - oldest)

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

    def stop(self, timeout: float = 60.0) -> bool:
        """Store what is queued within ``timeout``; what is left stays unacknowledged (the
        broker redelivers it). True when everything was stored."""
        if not self.worker.alive:
            return self._pending == 0
        deadline = time.monotonic() + timeout
        self._give_up_at = deadline  # before stopping: a retry that wakes up sees it
        self.worker.stop()
        self._queue.close()  # the writer stores what is queued, then ends
        self.worker.join(max(0.0, deadline - time.monotonic()) + 0.5)
        left = self._pending
        if left:
            self.stats.count(unacked=left)
            log.warning("%d messages not stored at shutdown; the broker keeps them", left)
        return left == 0

    # -- the writer thread -------------------------------------------------------------------

    def _run(self) -> None:
        if self._inflight:  # restarted after a crash: finish the batch it held
            self._write(self._inflight)
        while True:
            batch = self._queue.take(self.max_batch)
            if not batch:  # closed and empty
                return
            if len(batch) < self.max_batch and self.linger_s > 0 and not self._queue.closed:
                # Group commit: a short wait lets live traffic gather into one larger write.
                self.worker.stopping.wait(self.linger_s)
                batch += self._queue.take(self.max_batch - len(batch), timeout=0)
            self._write(batch)

    def _write(self, batch: list[_Item]) -> None:
        self._inflight = batch
        started = time.monotonic()
        try:
            self._store(batch)
        except _GiveUp:
            self._inflight = []
            return  # counted by stop()
        self._inflight = []
        self.stats.write_seconds.observe(time.monotonic() - started)
        self.stats.write_batch.observe(len(batch))
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

    def _store(self, batch: list[_Item]) -> None:
        accepted = [i.outcome for i in batch if isinstance(i.outcome, Accepted)]
        letters = [
            storable_letter(i.outcome.letter) for i in batch if isinstance(i.outcome, Rejected)
        ]
        result, unstorable = self._write_uplinks(accepted) if accepted else (WriteResult(0, 0), [])
        letters.extend(unstorable)
        if letters:
            self._write_letters(letters)
        if self.on_stored is not None:
            try:  # the alarm engine: a bug there must not hold up ingestion or its acks
                self.on_stored([i.outcome for i in batch])
            except Exception:
                log.exception("evaluating alarms for a stored batch failed")
        stored = [a.record for a in accepted]
        simulated = sum(1 for r in stored if r.raw.simulated)
        self.stats.count(
            accepted=max(0, result.written - simulated),
            duplicates=result.duplicates,
            simulated=simulated,
        )
        if stored:
            self.stats.last_uplink_at = max(r.raw.received_at for r in stored)
        for letter in letters:
            self.stats.reject(letter.reason)
            where = f" from {letter.device}" if letter.device else ""
            log.warning("rejected message on %s%s: %s: %s", letter.topic, where, letter.reason,
                        letter.detail)  # fmt: skip

    def _write_uplinks(self, accepted: list[Accepted]) -> tuple[WriteResult, list[DeadLetter]]:
        """Write the records; split around the ones the store refuses for good."""
        try:
            return self._retrying(self.store.write_uplinks, [a.record for a in accepted]), []
        except RecordError as exc:
            if len(accepted) == 1:
                return WriteResult(0, 0), [_unstorable(accepted[0], exc)]
        half = len(accepted) // 2
        first, lost_first = self._write_uplinks(accepted[:half])
        second, lost_second = self._write_uplinks(accepted[half:])
        total = WriteResult(first.written + second.written, first.duplicates + second.duplicates)
        return total, lost_first + lost_second

    def _write_letters(self, letters: list[DeadLetter]) -> None:
        try:
            self._retrying(self.store.write_dead_letters, letters)
            return
        except RecordError as exc:
            if len(letters) > 1:
                half = len(letters) // 2
                self._write_letters(letters[:half])
                self._write_letters(letters[half:])
                return
            error = exc
        # One letter the store refuses even escaped: keep its bytes at least in the log.
        letter = letters[0]
        log.error(
            "cannot store a dead letter (%s) from %s: %s; raw message (hex): %s",
            error, letter.topic, letter.detail, letter.raw.hex(),
        )  # fmt: skip

    def _retrying(self, write: Callable[[Sequence[T]], Any], items: Sequence[T]) -> Any:
        """``write(items)`` until it works; RecordError (or anything unexpected) propagates as
        RecordError; a transient StoreError is retried with backoff until stopping ends it."""
        delay = 0.5
        while True:
            try:
                result = write(items)
            except RecordError:
                self._progress()
                raise
            except StoreError as exc:
                # Nothing is acknowledged until it is stored: keep the batch, retry, report.
                if self.failing_since is None:
                    self.failing_since = time.monotonic()
                self.stats.count(store_errors=1)
                self.stats.last_store_error = str(exc)
                log.error("store write failed, retrying in %.1f s: %s", delay, exc)
                give_up_at = self._give_up_at
                if give_up_at is None:
                    self.worker.stopping.wait(delay)  # stop() wakes it up
                else:
                    left = give_up_at - time.monotonic()
                    if left <= 0:
                        raise _GiveUp from exc
                    time.sleep(min(delay, left, 0.5))
                delay = min(delay * 2, self.retry_max_s)
                continue
            except Exception as exc:  # a value the store trips over: find it, keep the rest
                self._progress()
                raise RecordError(f"{type(exc).__name__}: {exc}") from exc
            self._progress()
            return result

    def _progress(self) -> None:
        self.last_progress = time.monotonic()
        self.failing_since = None


_UNSAFE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def _safe(text: str) -> str:
    """Text every store can keep: control characters and lone surrogates escaped."""
    if not _UNSAFE.search(text):
        return text
    return _UNSAFE.sub(lambda m: ascii(m.group())[1:-1], text)


def storable_letter(letter: DeadLetter) -> DeadLetter:
    """The dead letter with its texts escaped where a store could not keep them."""
    return replace(
        letter, topic=_safe(letter.topic), detail=_safe(letter.detail), device=_safe(letter.device)
    )


def _unstorable(accepted: Accepted, exc: BaseException) -> DeadLetter:
    record: UplinkRecord = accepted.record
    raw = record.raw
    return storable_letter(
        DeadLetter(
            received_at=datetime.now(UTC),  # the record's own times may be what was refused
            topic=accepted.topic,
            reason="unstorable",
            detail=f"the store refused uplink {raw.dedup_key}: {exc}",
            raw=accepted.message or raw.payload,
            device=raw.device,
        )
    )
