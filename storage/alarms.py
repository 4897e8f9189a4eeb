"""Alarms, their lifecycle and the notification outbox, in SQLite (both backends).

With the SQLite store the tables live in the store's own file. With InfluxDB they live in a
SQLite sidecar next to the spool (``<spool>-alarms.db``): an alarm is mutable state (acked,
cleared, counted) and the outbox must be written in the same transaction as the alarm change,
which an append-only time-series measurement cannot give; the sidecar is as durable as the spool.

Tables: ``alarms`` (one row per alarm; at most one active per device and kind),
``alarm_devices`` (what the engine remembers of each device between uplinks) and
``alarm_outbox`` (notifications not yet delivered, per channel, in order).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import orjson

from storage.base import StoreError
from storage.schema import from_ns, to_ns

__all__ = [
    "Alarm",
    "AlarmStore",
    "DeviceMemory",
    "OutboxItem",
    "SQLiteAlarms",
    "alarm_db_path",
]

STATES = ("active", "cleared")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alarms (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    device TEXT NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    medium TEXT NOT NULL,
    site TEXT NOT NULL,
    raised_ns INTEGER NOT NULL,
    last_seen_ns INTEGER NOT NULL,
    cleared_ns INTEGER,
    count INTEGER NOT NULL,
    reason TEXT NOT NULL,
    value REAL,
    clear_reason TEXT NOT NULL DEFAULT '',
    acked_ns INTEGER,
    acked_by TEXT NOT NULL DEFAULT '',
    ack_note TEXT NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX IF NOT EXISTS alarms_one_active ON alarms (device, kind) WHERE state = 'active';
CREATE INDEX IF NOT EXISTS alarms_device ON alarms (device, raised_ns);
CREATE TABLE IF NOT EXISTS alarm_devices (
    device TEXT PRIMARY KEY,
    memory TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS alarm_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    channel TEXT NOT NULL,
    topic TEXT NOT NULL,
    body TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    due REAL NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT ''
);
"""


@dataclass(frozen=True)
class Alarm:
    """One alarm: a device's condition of one kind, from raised to cleared; acked apart."""

    id: int
    device: str
    kind: str
    state: str  # active | cleared
    medium: str
    site: str
    raised_at: datetime
    last_seen_at: datetime
    cleared_at: datetime | None
    count: int
    reason: str
    value: float | None
    clear_reason: str
    acked_at: datetime | None
    acked_by: str
    ack_note: str

    @property
    def acknowledged(self) -> bool:
        return self.acked_at is not None

    def to_json(self) -> dict[str, Any]:
        """The alarm as JSON (RFC 3339 times), as the API and the notifications show it."""
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, datetime):
                out[key] = value.isoformat().replace("+00:00", "Z")
        out["acknowledged"] = self.acknowledged
        return out


@dataclass(slots=True)
class DeviceMemory:
    """What the alarm engine keeps of a device between uplinks (and across restarts)."""

    medium: str = ""
    site: str = ""
    last_ns: int = 0  # newest accepted uplink (receive time)
    last_f_cnt: int | None = None
    flags_ns: int = 0  # newest reading whose flags were evaluated
    dead_streak: int = 0
    dead_ns: int = 0  # newest dead letter counted
    recent_ns: list[int] = field(default_factory=list)  # receive times of the last uplinks


@dataclass(frozen=True)
class OutboxItem:
    """A notification waiting for delivery on one channel (mqtt | webhook)."""

    id: int
    channel: str
    topic: str
    body: bytes
    attempts: int


class AlarmStore(Protocol):
    """What the API reads and acknowledges (the engine writes through SQLiteAlarms)."""

    def alarms(
        self,
        *,
        state: str = "active",
        device: str | None = None,
        kind: str | None = None,
        site: str | None = None,
        since: datetime | None = None,
        limit: int = 1000,
    ) -> list[Alarm]:
        """Alarms newest first; ``state`` active | cleared | all; ``since``: changed since."""
        ...

    def alarm(self, alarm_id: int) -> Alarm | None:
        """One alarm by id."""
        ...

    def ack(self, alarm_id: int, by: str, note: str, at: datetime) -> Alarm | None:
        """Acknowledge an alarm (again: the newest ack wins); None if there is no such alarm."""
        ...

    def active_counts(self) -> dict[str, int]:
        """Active alarms per kind."""
        ...


def alarm_db_path(store_url: str, spool_path: str | Path) -> Path:
    """Where the alarm tables live: the SQLite store's file, or a sidecar next to the spool."""
    if store_url.startswith("sqlite:///"):
        return Path(store_url.removeprefix("sqlite:///"))
    spool = Path(spool_path)
    return spool.with_name(f"{spool.stem}-alarms.db")


_COLUMNS = (
    "id, device, kind, state, medium, site, raised_ns, last_seen_ns, cleared_ns, count, reason,"
    " value, clear_reason, acked_ns, acked_by, ack_note"
)


class SQLiteAlarms:
    """The alarm tables in one SQLite file; safe across threads and processes (WAL)."""

    def __init__(self, path: str | Path, *, channels: Sequence[str] = ()) -> None:
        self.path = Path(path)
        self.channels = tuple(channels)  # where each raise/clear/ack is sent (outbox)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            with self._db:
                self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the alarm tables in {self.path}: {exc}") from exc

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                with self._db:
                    yield self._db
            except sqlite3.Error as exc:
                raise StoreError(f"alarm store {self.path}: {exc}") from exc

    def _rows(self, sql: str, args: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"alarm store {self.path}: {exc}") from exc

    # -- the lifecycle (the engine) ----------------------------------------------------------

    def active(self, device: str, kind: str) -> Alarm | None:
        rows = self._rows(
            f"SELECT {_COLUMNS} FROM alarms WHERE device = ? AND kind = ? AND state = 'active'",
            (device, kind),
        )
        return _alarm(rows[0]) if rows else None

    def change(
        self,
        step: str,
        *,
        device: str,
        kind: str,
        at_ns: int,
        reason: str,
        value: float | None = None,
        medium: str = "",
        site: str = "",
    ) -> Alarm | None:
        """Apply one lifecycle step (raise | repeat | clear); the alarm after it."""
        with self._transaction() as db:
            row = db.execute(
                f"SELECT {_COLUMNS} FROM alarms WHERE device = ? AND kind = ? AND state = 'active'",
                (device, kind),
            ).fetchone()
            current = _alarm(row) if row else None
            if step == "raise" and current is None:
                cursor = db.execute(
                    "INSERT INTO alarms (device, kind, state, medium, site, raised_ns,"
                    " last_seen_ns, count, reason, value) VALUES (?,?,'active',?,?,?,?,1,?,?)",
                    (device, kind, medium, site, at_ns, at_ns, reason, value),
                )
                alarm_id = int(cursor.lastrowid or 0)
                event = "raised"
            elif step == "repeat" and current is not None and at_ns > int(row[7]):
                # Only newer data repeats: a sweep that looks again at the same data does not.
                db.execute(
                    "UPDATE alarms SET count = count + 1, last_seen_ns = max(last_seen_ns, ?),"
                    " reason = ?, value = ? WHERE id = ?",
                    (at_ns, reason, value, current.id),
                )
                alarm_id, event = current.id, ""
            elif step == "clear" and current is not None:
                db.execute(
                    "UPDATE alarms SET state = 'cleared', cleared_ns = max(last_seen_ns, ?),"
                    " clear_reason = ? WHERE id = ?",
                    (at_ns, reason, current.id),
                )
                alarm_id, event = current.id, "cleared"
            else:
                return current
            after = _alarm(
                db.execute(f"SELECT {_COLUMNS} FROM alarms WHERE id = ?", (alarm_id,)).fetchone()
            )
            if event:
                self._notify(db, event, after)
            return after

    def _notify(self, db: sqlite3.Connection, event: str, alarm: Alarm) -> None:
        body = json.dumps({"event": event, "alarm": alarm.to_json()}, sort_keys=True)
        db.executemany(
            "INSERT INTO alarm_outbox (channel, topic, body) VALUES (?,?,?)",
            [(channel, f"{alarm.device}/{alarm.kind}", body) for channel in self.channels],
        )

    def memory(self, device: str) -> DeviceMemory:
        rows = self._rows("SELECT memory FROM alarm_devices WHERE device = ?", (device,))
        return DeviceMemory(**json.loads(rows[0][0])) if rows else DeviceMemory()

    def memories(self) -> dict[str, DeviceMemory]:
        rows = self._rows("SELECT device, memory FROM alarm_devices ORDER BY device")
        return {str(d): DeviceMemory(**json.loads(m)) for d, m in rows}

    def remember(self, memories: Mapping[str, DeviceMemory]) -> None:
        """Keep what the engine knows of these devices (one transaction)."""
        with self._transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO alarm_devices VALUES (?, ?)",
                # orjson encodes the dataclass itself (asdict's deep copy cost ~9 µs a device)
                [(device, orjson.dumps(m).decode()) for device, m in memories.items()],
            )

    # -- reads and acks (the API) ------------------------------------------------------------

    def alarms(
        self,
        *,
        state: str = "active",
        device: str | None = None,
        kind: str | None = None,
        site: str | None = None,
        since: datetime | None = None,
        limit: int = 1000,
    ) -> list[Alarm]:
        where: list[str] = ["1=1"]
        args: list[object] = []
        if state != "all":
            where.append("state = ?")
            args.append(state)
        for column, wanted in (("device", device), ("kind", kind), ("site", site)):
            if wanted is not None:
                where.append(f"{column} = ?")
                args.append(wanted)
        if since is not None:
            where.append("max(raised_ns, last_seen_ns, coalesce(cleared_ns, 0)) >= ?")
            args.append(to_ns(since))
        sql = f"SELECT {_COLUMNS} FROM alarms WHERE {' AND '.join(where)}"
        rows = self._rows(sql + " ORDER BY raised_ns DESC, id DESC LIMIT ?", [*args, limit])
        return [_alarm(row) for row in rows]

    def alarm(self, alarm_id: int) -> Alarm | None:
        rows = self._rows(f"SELECT {_COLUMNS} FROM alarms WHERE id = ?", (alarm_id,))
        return _alarm(rows[0]) if rows else None

    def ack(self, alarm_id: int, by: str, note: str, at: datetime) -> Alarm | None:
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE alarms SET acked_ns = ?, acked_by = ?, ack_note = ? WHERE id = ?",
                (to_ns(at), by, note, alarm_id),
            )
            if not cursor.rowcount:
                return None
            after = _alarm(
                db.execute(f"SELECT {_COLUMNS} FROM alarms WHERE id = ?", (alarm_id,)).fetchone()
            )
            self._notify(db, "acknowledged", after)
            return after

    def active_counts(self) -> dict[str, int]:
        rows = self._rows(
            "SELECT kind, count(*) FROM alarms WHERE state = 'active' GROUP BY kind ORDER BY kind"
        )
        return {str(kind): int(n) for kind, n in rows}

    # -- the outbox (the notifier) -----------------------------------------------------------

    def outbox(self, channel: str, due_before: float, limit: int = 100) -> list[OutboxItem]:
        """Undelivered notifications of a channel, oldest first, up to the first not yet due."""
        rows = self._rows(
            "SELECT id, channel, topic, body, attempts, due FROM alarm_outbox WHERE channel = ?"
            " ORDER BY id LIMIT ?",
            (channel, limit),
        )
        items = []
        for row_id, chan, topic, body, attempts, due in rows:
            if float(due) > due_before:
                break  # keep the order: nothing overtakes a notification waiting for a retry
            items.append(OutboxItem(int(row_id), str(chan), str(topic), str(body).encode(),
                                    int(attempts)))  # fmt: skip
        return items

    def delivered(self, item: OutboxItem) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM alarm_outbox WHERE id = ?", (item.id,))

    def retry(self, item: OutboxItem, due: float, error: str) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE alarm_outbox SET attempts = attempts + 1, due = ?, last_error = ?"
                " WHERE id = ?",
                (due, error, item.id),
            )

    def outbox_depth(self) -> dict[str, int]:
        rows = self._rows("SELECT channel, count(*) FROM alarm_outbox GROUP BY channel")
        return {str(c): int(n) for c, n in rows}

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _alarm(row: Sequence[Any]) -> Alarm:
    (alarm_id, device, kind, state, medium, site, raised, seen, cleared, count, reason, value,
     clear_reason, acked, acked_by, note) = row  # fmt: skip
    return Alarm(
        id=int(alarm_id),
        device=str(device),
        kind=str(kind),
        state=str(state),
        medium=str(medium),
        site=str(site),
        raised_at=from_ns(int(raised)),
        last_seen_at=from_ns(int(seen)),
        cleared_at=None if cleared is None else from_ns(int(cleared)),
        count=int(count),
        reason=str(reason),
        value=None if value is None else float(value),
        clear_reason=str(clear_reason),
        acked_at=None if acked is None else from_ns(int(acked)),
        acked_by=str(acked_by),
        ack_note=str(note),
    )
