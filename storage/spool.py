"""The durable write-ahead spool of the InfluxDB backend: an SQLite file of line-protocol batches.

Every accepted batch is appended here before ``write_uplinks`` returns, and a sender thread
drains it in order into InfluxDB, so nothing accepted is lost while InfluxDB is down or slow, or
when the process stops: the next process with the same file sends what is left. The file also
remembers the dedup keys of recent uplinks, so a redelivered uplink is reported as a duplicate
without asking InfluxDB (and rewriting it would produce the very same points anyway).
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from storage.base import RecordError, StoreError

__all__ = ["Batch", "Spool", "SpoolFullError", "SpoolInUseError"]

log = logging.getLogger("lorameter.storage.spool")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spool (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created REAL NOT NULL,
    lines INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS seen (id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS rejected (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created REAL NOT NULL,
    error TEXT NOT NULL,
    lines INTEGER NOT NULL,
    body TEXT NOT NULL
);
"""


class SpoolFullError(StoreError):
    """The spool cannot grow: the disk (or the configured size limit) is full."""


class SpoolInUseError(StoreError):
    """Another process holds the spool: two senders on one file would send and count twice."""


@dataclass(frozen=True)
class Batch:
    """Lines read from the head of the spool; ``last_id`` marks them for removal."""

    last_id: int
    lines: int
    body: str


class Spool:
    """An ordered, durable queue of line-protocol lines, plus the recent dedup keys."""

    def __init__(
        self,
        path: Path,
        *,
        max_bytes: int | None = None,
        chunk_lines: int = 5_000,
        dedup_keys: int = 200_000,
        exclusive: bool = True,
    ) -> None:
        self.path = path
        self.chunk_lines = chunk_lines
        self.dedup_keys = dedup_keys
        self.full = False
        self._lock = threading.Lock()
        self._since_prune = 0
        # Batches sent but not yet deleted (a full disk can refuse even a DELETE): skipped by
        # head(), deleted again at the next chance, sent once more only after a restart.
        self._sent_through = 0
        self._purge_failed = False
        self._lock_file = _lock(path) if exclusive else None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, timeout=30, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            # Survives a process crash (not a power cut) without an fsync per batch.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            if max_bytes is not None:
                page = int(self._db.execute("PRAGMA page_size").fetchone()[0])
                self._db.execute(f"PRAGMA max_page_count = {max(8, max_bytes // page)}")
            rows, lines = self._db.execute("SELECT count(*), total(lines) FROM spool").fetchone()
        except (OSError, sqlite3.Error) as exc:
            if self._lock_file is not None:
                self._lock_file.close()
            raise StoreError(f"cannot open the InfluxDB spool {path}: {exc}") from exc
        self.rows, self.lines = int(rows), int(lines)

    def enqueue(self, records: Sequence[tuple[str | None, Sequence[str]]]) -> list[bool]:
        """Append each record's lines unless its dedup key was seen; which records were new."""
        new: list[bool] = []
        pending: list[str] = []
        with self._lock:
            try:
                with self._db:
                    for key, lines in records:
                        if key is not None:
                            cursor = self._db.execute(
                                "INSERT OR IGNORE INTO seen (key) VALUES (?)", (key,)
                            )
                            if cursor.rowcount == 0:
                                new.append(False)
                                continue
                            self._since_prune += 1
                        new.append(True)
                        pending.extend(lines)
                    chunks = [
                        pending[i : i + self.chunk_lines]
                        for i in range(0, len(pending), self.chunk_lines)
                    ]
                    now = time.time()
                    self._db.executemany(
                        "INSERT INTO spool (created, lines, body) VALUES (?,?,?)",
                        [(now, len(chunk), "\n".join(chunk)) for chunk in chunks],
                    )
                    if self._since_prune >= 1_000:
                        self._prune_seen()
            except sqlite3.Error as exc:
                self._failed(exc)
            except (UnicodeEncodeError, OverflowError) as exc:
                raise RecordError(f"the InfluxDB spool cannot keep a line: {exc}") from exc
            self.full = False
            self.rows += len(chunks)
            self.lines += len(pending)
        return new

    def _prune_seen(self) -> None:
        self._db.execute(
            "DELETE FROM seen WHERE id <= (SELECT max(id) FROM seen) - ?", (self.dedup_keys,)
        )
        self._since_prune = 0

    def _failed(self, exc: sqlite3.Error) -> None:
        if isinstance(exc, sqlite3.OperationalError) and "full" in str(exc):
            self.full = True
            raise SpoolFullError(
                f"the InfluxDB spool {self.path} is full ({exc}): free disk space (or raise its"
                " size limit); it drains only while InfluxDB answers"
            ) from exc
        raise StoreError(f"cannot write the InfluxDB spool {self.path}: {exc}") from exc

    def head(self, max_lines: int) -> Batch | None:
        """The oldest spooled lines, whole batches up to ``max_lines`` (at least one batch)."""
        bodies: list[str] = []
        lines = last_id = 0
        with self._lock:
            cursor = self._db.execute(
                "SELECT id, lines, body FROM spool WHERE id > ? ORDER BY id", (self._sent_through,)
            )
            for row_id, count, body in cursor:
                if bodies and lines + int(count) > max_lines:
                    break
                bodies.append(str(body))
                lines += int(count)
                last_id = int(row_id)
            cursor.close()
        return Batch(last_id, lines, "\n".join(bodies)) if bodies else None

    def remove(self, batch: Batch, *, rejected: Sequence[tuple[str, str]] = ()) -> None:
        """Drop a sent batch from the spool; lines InfluxDB refused are kept aside, each with
        its error. Never raises for a full disk: the batch counts as sent and its rows are
        deleted at the next chance (sending goes on meanwhile)."""
        with self._lock:
            unsent = self._db.execute(
                "SELECT count(*) FROM spool WHERE id > ? AND id <= ?",
                (self._sent_through, batch.last_id),
            ).fetchone()[0]
            self._sent_through = max(self._sent_through, batch.last_id)
            self.rows = max(0, self.rows - int(unsent))
            self.lines = max(0, self.lines - batch.lines)
            if not self.rows:
                self.lines = 0
            try:
                with self._db:
                    if rejected:
                        now = time.time()
                        self._db.executemany(
                            "INSERT INTO rejected (created, error, lines, body) VALUES (?,?,?,?)",
                            [(now, error, 1, line) for line, error in rejected],
                        )
                    self._db.execute("DELETE FROM spool WHERE id <= ?", (self._sent_through,))
            except sqlite3.Error as exc:
                if not self._purge_failed:
                    log.error(
                        "cannot delete sent batches from the InfluxDB spool %s (%s): free disk"
                        " space; sending goes on, and they are deleted once there is room",
                        self.path,
                        exc,
                    )
                self._purge_failed = True
                self.full = self.full or "full" in str(exc)
                return
            if self._purge_failed:
                log.warning("sent batches deleted from the spool %s again", self.path)
            self._purge_failed = False

    def depth(self) -> tuple[int, int]:
        """(batches, lines) in the file now, whichever process spooled them."""
        with self._lock:
            rows, lines = self._db.execute(
                "SELECT count(*), total(lines) FROM spool WHERE id > ?", (self._sent_through,)
            ).fetchone()
        return int(rows), int(lines)

    def oldest_age_s(self) -> float:
        """Seconds since the oldest unsent batch was spooled; 0 when the spool is empty."""
        with self._lock:
            row = self._db.execute(
                "SELECT created FROM spool WHERE id > ? ORDER BY id LIMIT 1", (self._sent_through,)
            ).fetchone()
        return max(0.0, time.time() - float(row[0])) if row else 0.0

    def rejected(self) -> int:
        """Lines InfluxDB refused for good, kept in the ``rejected`` table for inspection."""
        with self._lock:
            row = self._db.execute("SELECT total(lines) FROM rejected").fetchone()
        return int(row[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
            if self._lock_file is not None:
                self._lock_file.close()  # releases the flock


def _lock(path: Path) -> IO[bytes]:
    """Hold ``<spool>.lock`` for the life of this process's spool (flock: freed on any exit)."""
    lock_path = path.with_name(path.name + ".lock")
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(lock_path, "a+b")  # noqa: SIM115 - held until close()
    except OSError as exc:
        raise StoreError(f"cannot open the InfluxDB spool lock {lock_path}: {exc}") from exc
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        owner = handle.read().decode(errors="replace").strip() or "?"
        handle.close()
        raise SpoolInUseError(
            f"the InfluxDB spool {path} is in use by another lorameter process (pid {owner}):"
            " give each process its own LORAMETER_SPOOL_PATH"
        ) from None
    handle.truncate(0)
    handle.write(str(os.getpid()).encode())
    handle.flush()
    return handle
