"""The InfluxDB store: line protocol over the 1.x-compatible HTTP API, spooled, batched, idempotent.

Writes never touch the network in the caller's thread: ``write_uplinks`` encodes the points,
appends them to the durable spool (``storage/spool.py``) and returns; a sender thread
(``storage/influx_sender.py``) posts the spool in order, in batches (by line count, or after
``flush_interval_s``), and keeps everything while InfluxDB is down. Reads are InfluxQL; before
a read, pending lines are flushed (briefly) so a caller reads its own writes. The layout:
``storage/SCHEMA.md`` and ``influx_schema.py``.
"""

from __future__ import annotations

import itertools
import logging
import shutil
import threading
import time
from collections import Counter, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from decoders.core import MEDIA
from storage.base import (
    NEIGHBOUR_LOOKBACK_NS,
    DeviceSummary,
    ReadingRow,
    ReadingTable,
    RecordError,
    Series,
    StoredDeadLetter,
    StoreError,
    StoreHealth,
    UnregisteredMeter,
    WriteResult,
)
from storage.influx_http import InfluxError, parse_url
from storage.influx_readings import reading_statement, reading_table, result_columns
from storage.influx_schema import (
    DEAD_LETTER,
    UPLINK,
    FieldTypes,
    dead_letter_line,
    dead_letter_reason,
    dead_letter_rows,
    device_statements,
    device_summaries,
    field_types,
    raw_uplink_rows,
    series_points,
    series_statements,
    stored_dead_letter_rows,
    unregistered_meter_rows,
    unregistered_meter_statements,
    uplink_lines,
)
from storage.influx_sender import Sender
from storage.line_protocol import encode_line, quote_ident, quote_literal
from storage.schema import DeadLetter, Point, RawUplink, UplinkRecord, from_ns, to_ns
from storage.spool import Spool

__all__ = ["DEAD_LETTER", "UPLINK", "InfluxStore", "uplink_lines"]

log = logging.getLogger("lorameter.storage.influx")

SERIES_TIMEOUT_S = 120.0
# Own writes remembered for a recount at most (older ones merge: memory stays bounded while
# InfluxDB is down; a recount during the drain may then count a few of them twice until the next).
_MAX_SPOOLED = 10_000


@dataclass
class _Summaries:
    """Device summaries as InfluxDB gave them, and when (monotonic) / after which own write."""

    at: float
    generation: int
    by_device: dict[str, DeviceSummary]


@dataclass
class _Counts:
    """The uplinks and dead letters InfluxDB holds, kept: counted at ``at`` (monotonic), plus
    what this process has spooled since."""

    at: float
    uplinks: int
    dead: Counter[str] = field(default_factory=Counter)


class InfluxStore:
    """Readings in InfluxDB (1.x, 2.x or 3.x), with a durable spool in front of it."""

    backend = "influxdb"

    def __init__(
        self,
        url: str,
        *,
        token: str = "",
        spool_path: Path = Path("./lorameter-spool.db"),
        spool_max_age_s: float = 3600.0,
        batch_lines: int = 5_000,
        flush_interval_s: float = 0.2,  # queryable within ~0.2 s + the write (issue 13: p99 < 1 s)
        timeout_s: float = 10.0,
        retry_max_s: float = 5.0,
        read_flush_timeout_s: float = 5.0,
        close_timeout_s: float = 2.0,
        spool_max_bytes: int | None = None,
        min_free_bytes: int = 64 * 2**20,
        dedup_keys: int = 200_000,
        create_database: bool = True,
        sender: bool = True,
        summary_ttl_s: float = 10.0,
        counts_ttl_s: float = 60.0,
    ) -> None:
        self.target = parse_url(url, token=token)
        self.spool_max_age_s = spool_max_age_s
        self.timeout_s = timeout_s
        self.read_flush_timeout_s = read_flush_timeout_s
        self.close_timeout_s = close_timeout_s
        self.min_free_bytes = min_free_bytes
        self.spool = Spool(
            Path(spool_path),
            max_bytes=spool_max_bytes,
            # rows of a fifth of a batch: the sender fills its batches (of whole rows) to
            # nearly ``batch_lines`` however many lines each write brings
            chunk_lines=max(1, batch_lines // 5),
            dedup_keys=dedup_keys,
            exclusive=sender,  # one sending process per spool; readers only look at it
        )
        self.sender = Sender(
            self.target, self.spool, batch_lines=batch_lines, flush_interval_s=flush_interval_s,
            timeout_s=timeout_s, retry_max_s=retry_max_s, create_database=create_database,
        )  # fmt: skip
        self.writes = sender
        self._closed = False
        self._dead_seq = itertools.count()
        self._local = threading.local()
        self._clients: list[httpx.Client] = []
        self._clients_lock = threading.Lock()
        # Kept answers (see devices(), health() and readings()), under one lock.
        self.summary_ttl_s = summary_ttl_s
        self.counts_ttl_s = counts_ttl_s
        self._kept = threading.Lock()
        self._generation = 0  # own writes that change device summaries
        self._summaries: _Summaries | None = None
        self._one_device: dict[str, _Summaries] = {}  # device(): one device asked for
        self._types: FieldTypes | None = None
        self._counts: _Counts | None = None
        # (spool row id, uplinks, dead letters by reason) of own writes InfluxDB may not have
        # yet: a recount adds those it had not taken when the count began.
        self._spooled: deque[tuple[int, int, Counter[str] | None]] = deque()
        self._recount_lock = threading.Lock()
        self._recounting = False
        self._deletions = 0  # a count begun before a deletion is not kept
        if sender:
            if create_database:
                self.sender.ensure_database()
            self.sender.start()

    # -- writes ------------------------------------------------------------------------------

    def write_uplinks(self, records: Sequence[UplinkRecord]) -> WriteResult:
        self._check_sender()
        entries: list[tuple[str | None, Sequence[str]]] = []
        for record in records:
            try:
                lines = uplink_lines(record)
            except ValueError as exc:
                # Not line protocol (a time past 2262, ...): the writer dead-letters the uplink.
                raise RecordError(
                    f"InfluxDB cannot store uplink {record.raw.dedup_key} of device"
                    f" {record.raw.device!r}: {exc}"
                ) from exc
            entries.append((record.raw.dedup_key, lines))
        with self._kept:
            new = self.spool.enqueue(entries)
            written = sum(new)
            if written:
                self._generation += 1
                self._spooled_write(written, None)
        self.sender.queued()
        return WriteResult(written=written, duplicates=len(new) - written)

    def write_points(self, points: Sequence[Point]) -> None:
        self._check_sender()
        lines = [encode_line(p.measurement, p.tags, p.fields, to_ns(p.time)) for p in points]
        if lines:
            with self._kept:
                self.spool.enqueue([(None, lines)])
                self._generation += 1
            self.sender.queued()

    def write_dead_letters(self, letters: Sequence[DeadLetter]) -> None:
        self._check_sender()
        lines = [self._dead_letter_line(d) for d in letters]
        with self._kept:
            self.spool.enqueue([(None, lines)])
            self._spooled_write(0, Counter(dead_letter_reason(d) for d in letters))
        self.sender.queued()

    def _spooled_write(self, uplinks: int, dead: Counter[str] | None) -> None:
        """Count what was just spooled (``self._kept`` held)."""
        if self._counts is not None:
            self._counts.uplinks += uplinks
            if dead:
                self._counts.dead.update(dead)
        self._spooled.append((self.spool.last_id, uplinks, dead))
        if len(self._spooled) > 1024:  # what InfluxDB took is in any later count
            sent = self.spool.sent_through
            while self._spooled and self._spooled[0][0] <= sent:
                self._spooled.popleft()
        if len(self._spooled) > _MAX_SPOOLED:  # a long outage: the oldest half as one entry
            merged = [self._spooled.popleft() for _ in range(_MAX_SPOOLED // 2)]
            total: Counter[str] = Counter()
            for _, _, letters in merged:
                total.update(letters or {})
            self._spooled.appendleft((merged[-1][0], sum(m[1] for m in merged), total))

    def _check_sender(self) -> None:
        if not self.writes:
            raise StoreError(f"this process only reads {self.target.display}; ingest writes it")

    def _dead_letter_line(self, letter: DeadLetter) -> str:
        return dead_letter_line(letter, next(self._dead_seq))

    def flush(self, timeout: float | None = None) -> bool:
        """Send everything spooled now; True when the spool is empty, False on failure/timeout."""
        return self.sender.flush(self.close_timeout_s if timeout is None else timeout)

    # -- reads -------------------------------------------------------------------------------

    def _client(self) -> httpx.Client:
        client: httpx.Client | None = getattr(self._local, "client", None)
        if client is None:
            client = self.target.client(timeout=self.timeout_s)
            self._local.client = client
            with self._clients_lock:
                self._clients.append(client)
        return client

    def _query(
        self, statements: list[str], *, sync: bool = True, timeout: float | None = None
    ) -> list[dict[str, Any]]:
        if sync:
            self._sync()
        return self.target.query(self._client(), statements, timeout=timeout)

    def _sync(self) -> None:
        """Before a read: send what this process spooled, so that it reads its own writes."""
        if self.writes and self.spool.rows:
            self.flush(self.read_flush_timeout_s)

    def devices(self) -> list[DeviceSummary]:
        return list(self._device_summaries().values())

    def device(self, device: str) -> DeviceSummary | None:
        kept = self._kept_summaries()
        if kept is not None:
            return kept.get(device)
        with self._kept:
            one = self._one_device.get(device)
            if one is not None and self._fresh(one):
                return one.by_device.get(device)
            generation = self._generation
        started = time.monotonic()
        found = device_summaries(self._query(device_statements(device)))
        with self._kept:
            if generation == self._generation and not (self.writes and self.spool.rows):
                if len(self._one_device) >= 10_000:
                    self._one_device.clear()
                self._one_device[device] = _Summaries(
                    started, generation, {s.device: s for s in found}
                )
        return found[0] if found else None

    def _fresh(self, kept: _Summaries) -> bool:
        """Whether kept summaries still hold (``self._kept`` held)."""
        return (
            kept.generation == self._generation and time.monotonic() - kept.at < self.summary_ttl_s
        )

    def _kept_summaries(self) -> dict[str, DeviceSummary] | None:
        """The summaries of every device, if asked for lately and unchanged by own writes since.

        Summing up 10,000 devices takes InfluxDB seconds (a series per device), so the answer
        is kept ``summary_ttl_s``; this process's own writes make it stale at once (a caller
        reads its own writes), another process's writes show once it expires.
        """
        with self._kept:
            kept = self._summaries
            return kept.by_device if kept is not None and self._fresh(kept) else None

    def _device_summaries(self) -> dict[str, DeviceSummary]:
        kept = self._kept_summaries()
        if kept is not None:
            return kept
        with self._kept:
            generation = self._generation
        started = time.monotonic()
        # a series per device: summing up a fleet takes InfluxDB seconds; give it its time
        results = self._query(device_statements(None), timeout=SERIES_TIMEOUT_S)
        by_device = {s.device: s for s in device_summaries(results)}
        with self._kept:
            # kept only if InfluxDB had every own write (nothing spooled, none since)
            if generation == self._generation and not (self.writes and self.spool.rows):
                self._summaries = _Summaries(started, generation, by_device)
        return by_device

    def unregistered_meters(self) -> list[UnregisteredMeter]:
        return unregistered_meter_rows(self._query(unregistered_meter_statements()))

    def readings(
        self,
        device: str,
        start: datetime,
        end: datetime,
        fields: Sequence[str] = (),
        limit: int = 10_000,
    ) -> list[ReadingRow]:
        return self.reading_table(device, start, end, fields, limit).rows()

    def reading_table(
        self,
        device: str,
        start: datetime,
        end: datetime,
        fields: Sequence[str] = (),
        limit: int = 10_000,
    ) -> ReadingTable:
        if limit <= 0:
            return ReadingTable.empty()
        self._sync()
        series, msgpack = self.target.query_series(
            self._client(), reading_statement(device, to_ns(start), to_ns(end), fields, limit)
        )
        return reading_table(series, msgpack, self._field_types(result_columns(series)), limit)

    def _field_types(self, columns: Mapping[str, set[str]]) -> FieldTypes:
        """``SHOW FIELD KEYS``, kept: asked again when a result has a field it does not know
        (the reads that use it select fields only, so every column but time is one)."""
        with self._kept:
            types = self._types
        if types is not None and all(
            c in types.get(m, {}) or c == "time" for m, names in columns.items() for c in names
        ):
            return types
        fresh = field_types(self._query(["SHOW FIELD KEYS"], sync=False)[0])
        with self._kept:
            self._types = fresh
        return fresh

    def raw_uplinks(
        self, device: str | None = None, start: datetime | None = None, limit: int = 10_000
    ) -> list[RawUplink]:
        if limit <= 0:
            return []
        where = []
        if device is not None:
            where.append(f"device = {quote_literal(device)}")
        if start is not None:
            where.append(f"time >= {to_ns(start)}")
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        q = f"SELECT * FROM {UPLINK}{clause} ORDER BY time ASC LIMIT {int(limit)}"
        return raw_uplink_rows(self._query([q]))

    def series(
        self,
        field: str,
        start: datetime,
        end: datetime,
        *,
        devices: Sequence[str] | None = None,
        medium: str | None = None,
    ) -> dict[str, Series]:
        statements = series_statements(
            field, to_ns(start), to_ns(end), NEIGHBOUR_LOOKBACK_NS, devices, medium
        )
        out: dict[str, Series] = {}
        # A fleet's registers over a long window are many points: give the read its time.
        results = self._query(statements, timeout=SERIES_TIMEOUT_S)
        for device, pairs in series_points(results, devices).items():
            pairs.sort()
            out[device] = Series(
                np.fromiter((t for t, _ in pairs), np.int64, len(pairs)),
                np.fromiter((v for _, v in pairs), np.float64, len(pairs)),
            )
        return out

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        if limit <= 0:
            return []
        q = f"SELECT * FROM {DEAD_LETTER} ORDER BY time DESC LIMIT {int(limit)}"
        return dead_letter_rows(self._query([q]))

    def find_dead_letters(
        self,
        reason: str | None = None,
        device: str | None = None,
        after: str | None = None,
        limit: int = 1000,
    ) -> list[StoredDeadLetter]:
        if limit <= 0:
            return []
        where = [f"time > {int(after)}"] if after is not None else []
        if reason is not None:
            where.append(f"reason = {quote_literal(reason)}")
        if device is not None:
            where.append(f"device = {quote_literal(device)}")
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        q = f"SELECT * FROM {DEAD_LETTER}{clause} ORDER BY time ASC LIMIT {int(limit)}"
        return stored_dead_letter_rows(self._query([q]))

    def delete_dead_letters(self, keys: Sequence[str]) -> None:
        # InfluxQL deletes by tags and time only; a letter's time is unique (its sequence).
        with self._kept:
            self._counts = None  # counted again at the next /health
            self._deletions += 1
        for start in range(0, len(keys), 500):
            self._query(
                [
                    f"DELETE FROM {DEAD_LETTER} WHERE time >= {int(k)} AND time <= {int(k)}"
                    for k in keys[start : start + 500]
                ]
            )

    def delete_readings(self, device: str) -> None:
        # sync: spooled points of the device reach InfluxDB first, so none arrive after this
        with self._kept:
            self._generation += 1
        self._query(
            [f"DELETE FROM {quote_ident(m)} WHERE device = {quote_literal(device)}" for m in MEDIA]
        )

    # -- health ------------------------------------------------------------------------------

    def last_uplink_at(self, network: str) -> datetime | None:
        q = (
            f"SELECT f_port FROM {UPLINK} WHERE network = {quote_literal(network)}"
            " ORDER BY time DESC LIMIT 1"
        )
        for series in self._query([q])[0].get("series", []):
            return from_ns(int(series["values"][0][0]))
        return None

    def _count(self) -> _Counts:
        """Count uplinks and dead letters in InfluxDB; own writes it had not taken are added."""
        with self._kept:
            sent, deletions = self.spool.sent_through, self._deletions
        results = self.target.query(
            self._client(),
            [
                f"SELECT count(f_port) FROM {UPLINK}",
                f"SELECT count(topic) FROM {DEAD_LETTER} GROUP BY reason",
            ],
            timeout=min(self.timeout_s, 3.0),  # /health answers even if InfluxDB hangs
        )
        counts = _Counts(time.monotonic(), 0)
        for series in results[0].get("series", []):
            counts.uplinks = int(series["values"][0][1])
        for series in results[1].get("series", []):
            counts.dead[str(series["tags"]["reason"])] = int(series["values"][0][1])
        with self._kept:
            while self._spooled and self._spooled[0][0] <= sent:
                self._spooled.popleft()
            for _, uplinks, dead in self._spooled:
                counts.uplinks += uplinks
                counts.dead.update(dead or {})
            if deletions == self._deletions:
                self._counts = counts
        return counts

    def _recount(self) -> None:
        """A background recount (kept counts are old): see what other processes wrote."""
        try:
            with self._recount_lock:
                self._count()
        except InfluxError as exc:
            log.info("could not recount InfluxDB: %s", exc)
        finally:
            self._recounting = False

    def _kept_counts(self) -> tuple[_Counts, bool]:
        """Counts kept from the last count, plus own writes: /health does not recount 10 million
        points each time; a count older than ``counts_ttl_s`` is redone in the background, and
        meanwhile a ``/ping`` tells whether InfluxDB answers. True: the counts were kept."""
        with self._kept:
            counts = self._counts
            stale = counts is not None and time.monotonic() - counts.at > self.counts_ttl_s
            if stale and not self._recounting:
                self._recounting = True
                threading.Thread(target=self._recount, name="influx-recount", daemon=True).start()
            if counts is not None:
                counts = _Counts(counts.at, counts.uplinks, Counter(counts.dead))
        if counts is None:
            with self._recount_lock:
                return self._count(), False
        return counts, True

    def health(self) -> StoreHealth:
        problems: list[str] = []
        uplinks, dead = 0, {}
        try:
            counts, kept = self._kept_counts()
            uplinks, dead = counts.uplinks, dict(counts.dead)
            if kept:
                self.target.ping(self._client(), timeout=min(self.timeout_s, 3.0))
            query_error: InfluxError | None = None
        except InfluxError as exc:
            query_error = exc
            problems.append(str(exc))
        write_error = self.sender.error
        if write_error is not None and str(write_error) not in problems:
            problems.append(f"writes fail: {write_error}")
        age = self.spool.oldest_age_s()
        batches, depth = self.spool.depth()
        if self.spool.full:
            problems.append(f"the spool {self.spool.path} is full: free disk space")
        free = _disk_free(self.spool.path)
        if free is not None and free < self.min_free_bytes:
            problems.append(
                f"only {free // 2**20} MiB free for the spool {self.spool.path}"
                f" (need {self.min_free_bytes // 2**20} MiB)"
            )
        if age > self.spool_max_age_s:
            problems.append(
                f"{depth} lines wait in the spool, the oldest {age:.0f} s"
                f" (limit {self.spool_max_age_s:.0f} s): InfluxDB has not taken them"
            )
        error = query_error or write_error
        detail = problems[0] if problems else f"InfluxDB {self.target.display}"
        if not problems and depth:
            detail += f"; {depth} lines spooled, oldest {age:.1f} s"
        return StoreHealth(
            ok=not problems,
            backend=self.backend,
            detail=detail,
            uplinks=uplinks,
            dead_letters=dead,
            extra={
                "influxdb": self.target.display,
                "error_kind": error.kind if error else None,
                "problems": problems,
                "spool_path": str(self.spool.path),
                "spool_depth": depth,
                "spool_batches": batches,
                "spool_oldest_age_s": round(age, 3),
                "spool_max_age_s": self.spool_max_age_s,
                "spool_full": self.spool.full,
                "disk_free_bytes": free,
                "rejected_lines": self.spool.rejected(),
                "last_rejection": self.sender.rejected_error or None,
                "sent_lines": self.sender.sent_lines,
                "sent_batches": self.sender.sent_batches,
                "sender_alive": self.sender.alive,
                "sender_crashes": self.sender.crashes,
            },
        )

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.writes and not self.flush(self.close_timeout_s) and self.spool.rows:
            log.warning(
                "%d lines stay in the spool %s; they are sent when lorameter starts again",
                self.spool.lines,
                self.spool.path,
            )
        self.sender.stop(join_timeout=1.0)  # bounded shutdown; the spool keeps what is unsent
        self.spool.close()
        with self._clients_lock:
            for client in self._clients:
                client.close()
            self._clients.clear()


def _disk_free(path: Path) -> int | None:
    try:
        return shutil.disk_usage(path.parent).free
    except OSError:
        return None
