"""The durable write-ahead spool of the InfluxDB backend: an SQLite file of line-protocol batches.

Every accepted batch is appended here before ``write_uplinks`` returns, and a sender thread
drains it in order into InfluxDB, so nothing accepted is lost while InfluxDB is down or slow, or
when the process stops: the next process with the same file sends what is left. The file also
remembers the dedup keys of recent uplinks, so a redelivered uplink is reported as a duplicate
without asking InfluxDB (and rewriting it would produce the very same points anyway).
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import logging
import os
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, NoReturn

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
CREATE TABLE IF NOT EXISTS seen (id INTEGER PRIMARY KEY, key TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rejected (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created REAL NOT NULL,
    error TEXT NOT NULL,
    lines INTEGER NOT NULL,
    body TEXT NOT NULL
);
"""

# The WAL is cut back to this size after each checkpoint (it grows with the largest write).
_WAL_LIMIT_BYTES = 2**20
# Bytes spooled after which the checkpoint thread copies the WAL into the file (SQLite's own
# automatic checkpoint, at 1000 pages, would do it in the writing thread, fsync included); and
# the WAL pages after which the writer checkpoints itself all the same (the thread lags).
_CHECKPOINT_BYTES = 2 * 2**20
_WAL_AUTOCHECKPOINT_PAGES = 8192
# Sent rows are deleted by the next enqueue (not by the sender, which goes on sending), at the
# latest once this many batches are sent, or the spool is empty: after a crash at most these are
# sent again (the same points: idempotent).
_MAX_UNDELETED_BATCHES = 4
# Free pages are given back to the file system once the spool has drained and this many bytes
# are free (below it, the next batches reuse them).
_SHRINK_FREE_BYTES = 2**20


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
    rows: int = 1  # spool rows it was read from


class Spool:
    """An ordered, durable queue of line-protocol lines, plus the recent dedup keys.

    The dedup keys live in the table ``seen`` (in the order they came, no index) and, for the
    process that writes the spool, in memory: a key is looked up there, and only new keys are
    appended to the file, in the transaction that spools their lines. The sender reads the
    head through a connection of its own (WAL: reading never waits for a write); rows it sent
    are deleted a little later (see ``remove``), and a thread of the spool checkpoints the WAL,
    so that neither the sender nor the writer waits for that.
    """

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
        self._read_lock = threading.Lock()
        # The newest ``dedup_keys`` keys in the order they were spooled (ids in ``seen``), and
        # the same as a set; loaded at the first enqueue (a reading process never needs them).
        self._keys: deque[str] | None = None
        self._key_set: set[str] = set()
        self._next_key_id = 0
        self._since_prune = 0
        # Batches sent but not yet deleted (a full disk can refuse even a DELETE): skipped by
        # head(), deleted again at the next chance, sent once more only after a restart.
        self._sent_through = 0
        self._undeleted = 0  # batches sent but not deleted yet
        self._purge_failed = False
        self._counts_lock = threading.Lock()  # rows and lines (taken inside ``_lock``)
        self.last_id = 0  # of the newest row this process spooled
        self._lock_file = _lock(path) if exclusive else None
        self._reader: sqlite3.Connection | None = None
        self._checkpointer: _Checkpointer | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, timeout=30, check_same_thread=False)
            if exclusive:
                self._prepare_file()
            self._db.execute("PRAGMA journal_mode=WAL")
            # Survives a process crash (not a power cut) without an fsync per batch.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(f"PRAGMA journal_size_limit = {_WAL_LIMIT_BYTES}")
            self._db.executescript(_SCHEMA)
            if max_bytes is not None:
                page = int(self._db.execute("PRAGMA page_size").fetchone()[0])
                self._db.execute(f"PRAGMA max_page_count = {max(8, max_bytes // page)}")
            rows, lines = self._db.execute("SELECT count(*), total(lines) FROM spool").fetchone()
            if exclusive:
                self._reader = sqlite3.connect(path, timeout=30, check_same_thread=False)
                self._db.execute(f"PRAGMA wal_autocheckpoint = {_WAL_AUTOCHECKPOINT_PAGES}")
                self._checkpointer = _Checkpointer(path)
        except (OSError, sqlite3.Error) as exc:
            self._db_close()
            if self._lock_file is not None:
                self._lock_file.close()
            raise StoreError(f"cannot open the InfluxDB spool {path}: {exc}") from exc
        self.page_size = int(self._db.execute("PRAGMA page_size").fetchone()[0])
        self.rows, self.lines = int(rows), int(lines)

    def _prepare_file(self) -> None:
        """A new file frees pages incrementally (so it can shrink after a backlog); an older
        empty one is converted (VACUUM), and its ``seen`` table loses the unique index (the
        keys are looked up in memory; appending to the index cost more than the lines)."""
        db = self._db
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        if not tables:
            db.execute("PRAGMA auto_vacuum = INCREMENTAL")  # before the first table
            return
        row = db.execute("SELECT sql FROM sqlite_master WHERE name = 'seen'").fetchone()
        if row is not None and "UNIQUE" in str(row[0]).upper():
            with db:
                db.execute("ALTER TABLE seen RENAME TO seen_unique")
                db.execute("CREATE TABLE seen (id INTEGER PRIMARY KEY, key TEXT NOT NULL)")
                db.execute("INSERT INTO seen (id, key) SELECT id, key FROM seen_unique")
                db.execute("DROP TABLE seen_unique")
        auto_vacuum = int(db.execute("PRAGMA auto_vacuum").fetchone()[0])
        empty = "spool" not in tables or not db.execute("SELECT 1 FROM spool LIMIT 1").fetchone()
        if auto_vacuum != 2 and empty:
            db.execute("PRAGMA auto_vacuum = INCREMENTAL")
            db.execute("VACUUM")

    def _load_keys(self) -> tuple[deque[str], set[str]]:
        if self._keys is None:
            newest = self._db.execute("SELECT max(id) FROM seen").fetchone()[0]
            self._next_key_id = int(newest or 0) + 1
            cursor = self._db.execute(
                "SELECT key FROM seen WHERE id >= ? ORDER BY id",
                (self._next_key_id - self.dedup_keys,),
            )
            self._keys = deque(key for (key,) in cursor)
            self._key_set = set(self._keys)
        return self._keys, self._key_set

    def enqueue(self, records: Sequence[tuple[str | None, Sequence[str]]]) -> list[bool]:
        """Append each record's lines unless its dedup key was seen; which records were new."""
        new: list[bool] = []
        pending: list[str] = []
        fresh: dict[str, None] = {}  # new keys of this call, in order
        with self._lock:
            try:
                keys, known = self._load_keys()
            except sqlite3.Error as exc:
                self._failed(exc)
            if self._undeleted:
                self._delete_sent(())
            for key, lines in records:
                if key is not None:
                    if key in known or key in fresh:
                        new.append(False)
                        continue
                    fresh[key] = None
                new.append(True)
                pending.extend(lines)
            chunks = [
                pending[i : i + self.chunk_lines] for i in range(0, len(pending), self.chunk_lines)
            ]
            bodies = ["\n".join(chunk) for chunk in chunks]
            first_id = self._next_key_id
            try:
                with self._db:
                    if fresh:
                        self._db.executemany(
                            "INSERT INTO seen (id, key) VALUES (?, ?)",
                            zip(itertools.count(first_id), fresh, strict=False),
                        )
                    now = time.time()
                    for chunk, body in zip(chunks, bodies, strict=True):
                        cursor = self._db.execute(
                            "INSERT INTO spool (created, lines, body) VALUES (?,?,?)",
                            (now, len(chunk), body),
                        )
                        self.last_id = int(cursor.lastrowid or 0)
                    if self._since_prune + len(fresh) >= 1_000:
                        self._db.execute(
                            "DELETE FROM seen WHERE id < ?",
                            (first_id + len(fresh) - self.dedup_keys,),
                        )
            except sqlite3.Error as exc:
                self._failed(exc)
            except (UnicodeEncodeError, OverflowError) as exc:
                raise RecordError(f"the InfluxDB spool cannot keep a line: {exc}") from exc
            # committed: remember the new keys, forget the oldest beyond ``dedup_keys``
            self._since_prune = (self._since_prune + len(fresh)) % 1_000
            self._next_key_id = first_id + len(fresh)
            keys.extend(fresh)
            known.update(fresh)
            while len(keys) > self.dedup_keys:
                known.discard(keys.popleft())
            self.full = False
            with self._counts_lock:
                self.rows += len(chunks)
                self.lines += len(pending)
        if self._checkpointer is not None:
            self._checkpointer.written(sum(map(len, bodies)))
        return new

    def _failed(self, exc: sqlite3.Error) -> NoReturn:
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
        with self._read_lock:
            db = self._reader or self._db
            cursor = db.execute(
                "SELECT id, lines, body FROM spool WHERE id > ? ORDER BY id", (self._sent_through,)
            )
            for row_id, count, body in cursor:
                if bodies and lines + int(count) > max_lines:
                    break
                bodies.append(str(body))
                lines += int(count)
                last_id = int(row_id)
            cursor.close()
        return Batch(last_id, lines, "\n".join(bodies), len(bodies)) if bodies else None

    def remove(self, batch: Batch, *, rejected: Sequence[tuple[str, str]] = ()) -> None:
        """Drop a sent batch from the spool; lines InfluxDB refused are kept aside, each with
        its error. The rows are deleted by the next ``enqueue`` (the sender goes on sending
        meanwhile; ``head`` skips them), here once ``_MAX_UNDELETED_BATCHES`` wait or the spool is
        empty. Never raises for a full disk: the batch counts as sent and its rows are deleted
        at the next chance. Once the spool is empty, a file a backlog made large gives its free
        pages back."""
        with self._counts_lock:
            rows = max(0, self.rows - batch.rows)
            if rows and not rejected and self._undeleted + 1 < _MAX_UNDELETED_BATCHES:
                self._sent_through = max(self._sent_through, batch.last_id)
                self._undeleted += 1
                self.rows = rows
                self.lines = max(0, self.lines - batch.lines)
                return
        with self._lock:
            with self._counts_lock:
                self._sent_through = max(self._sent_through, batch.last_id)
                self._undeleted += 1
            try:
                self._delete_sent(rejected)
                with self._counts_lock:
                    empty = self.rows <= batch.rows
                if empty:
                    self._shrink()
            finally:  # the counts change last: a flush returns once the file has shrunk
                with self._counts_lock:
                    rows = max(0, self.rows - batch.rows)
                    self.rows = rows
                    self.lines = max(0, self.lines - batch.lines) if rows else 0

    def _delete_sent(self, rejected: Sequence[tuple[str, str]]) -> None:
        with self._counts_lock:
            through, undeleted = self._sent_through, self._undeleted
        try:
            with self._db:
                if rejected:
                    now = time.time()
                    self._db.executemany(
                        "INSERT INTO rejected (created, error, lines, body) VALUES (?,?,?,?)",
                        [(now, error, 1, line) for line, error in rejected],
                    )
                self._db.execute("DELETE FROM spool WHERE id <= ?", (through,))
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
        with self._counts_lock:
            self._undeleted -= undeleted

    @property
    def sent_through(self) -> int:
        """The id of the newest row InfluxDB took (every row up to it is sent)."""
        return self._sent_through

    def _shrink(self) -> None:
        """Give free pages back to the file system, and cut the WAL (the spool is empty)."""
        try:
            free = int(self._db.execute("PRAGMA freelist_count").fetchone()[0])
            if free * self.page_size < _SHRINK_FREE_BYTES:
                return
            # executescript steps the pragma to its end (execute() frees a single page)
            self._db.executescript("PRAGMA incremental_vacuum;")
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        except sqlite3.Error as exc:  # a file that cannot shrink now still works
            log.info("the InfluxDB spool %s could not shrink now: %s", self.path, exc)

    def size(self) -> int:
        """Bytes the spool takes on disk: the file and its WAL."""
        total = 0
        for part in (self.path, self.path.with_name(self.path.name + "-wal")):
            with contextlib.suppress(OSError):  # no WAL: nothing to add
                total += part.stat().st_size
        return total

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
        if self._checkpointer is not None:
            self._checkpointer.stop()
        with self._lock, self._read_lock:
            self._db_close()
            if self._lock_file is not None:
                self._lock_file.close()  # releases the flock

    def _db_close(self) -> None:
        for db in (getattr(self, "_db", None), self._reader):
            if db is not None:
                db.close()


class _Checkpointer:
    """A thread that copies the WAL into the spool file once enough was written (a passive
    checkpoint: it never blocks the writer or the reader; the fsyncs happen here)."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, timeout=30, check_same_thread=False)
        self._cond = threading.Condition()
        self._pending = 0  # bytes spooled since the last checkpoint
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="spool-checkpoint", daemon=True)
        self._thread.start()

    def written(self, size: int) -> None:
        with self._cond:
            self._pending += size
            if self._pending >= _CHECKPOINT_BYTES:
                self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._pending < _CHECKPOINT_BYTES and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                self._pending = 0
            try:
                self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.Error as exc:  # the writer's own checkpoint still bounds the WAL
                log.info("cannot checkpoint the InfluxDB spool now: %s", exc)

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self._thread.join(5.0)
        if not self._thread.is_alive():
            self._db.close()


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
