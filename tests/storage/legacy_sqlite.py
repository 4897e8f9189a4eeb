"""SQLite files as lorameter wrote them before the compact schema (for migration tests, and the
anchor of ``bench/sqlite_size.py``): the old DDL and the old rows, tag JSON on every field row."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path

from decoders.core import MEDIA, VOCABULARY, Kind
from storage.schema import DeadLetter, Point, UplinkRecord, to_ns

__all__ = ["LEGACY_DDL", "write_legacy_file"]

# The DDL of storage/sqlite.py up to the compact schema, verbatim (the counters table came
# later than the others: ``counters=False`` builds a file from before it).
_COUNTERS = """
CREATE TABLE counters (
    device TEXT NOT NULL,
    field TEXT NOT NULL,
    time_ns INTEGER NOT NULL,
    value REAL NOT NULL,
    PRIMARY KEY (device, field, time_ns)
) WITHOUT ROWID;
"""
LEGACY_DDL = """
CREATE TABLE points (
    device TEXT NOT NULL,
    measurement TEXT NOT NULL,
    time_ns INTEGER NOT NULL,
    field TEXT NOT NULL,
    value,
    tags TEXT NOT NULL,
    PRIMARY KEY (device, measurement, time_ns, field)
) WITHOUT ROWID;
CREATE TABLE raw_uplinks (
    dedup_key TEXT PRIMARY KEY,
    device TEXT NOT NULL,
    dev_eui TEXT NOT NULL,
    network TEXT NOT NULL,
    received_ns INTEGER NOT NULL,
    f_port INTEGER NOT NULL,
    f_cnt INTEGER NOT NULL,
    payload BLOB NOT NULL,
    decoder TEXT NOT NULL,
    medium TEXT NOT NULL,
    meter TEXT NOT NULL,
    simulated INTEGER NOT NULL
);
CREATE INDEX raw_uplinks_device_time ON raw_uplinks (device, received_ns);
CREATE INDEX raw_uplinks_network_time ON raw_uplinks (network, received_ns);
CREATE TABLE devices (
    device TEXT PRIMARY KEY,
    dev_eui TEXT NOT NULL,
    decoder TEXT NOT NULL,
    medium TEXT NOT NULL,
    meter TEXT NOT NULL,
    first_ns INTEGER NOT NULL,
    last_ns INTEGER NOT NULL,
    uplinks INTEGER NOT NULL,
    last_f_cnt INTEGER NOT NULL
);
CREATE TABLE dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received_ns INTEGER NOT NULL,
    topic TEXT NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL,
    raw BLOB NOT NULL,
    device TEXT NOT NULL
);
CREATE TABLE unregistered_meters (
    meter TEXT NOT NULL,
    bridge TEXT NOT NULL,
    manufacturer TEXT NOT NULL,
    version INTEGER NOT NULL,
    device_type INTEGER NOT NULL,
    medium TEXT NOT NULL,
    first_ns INTEGER NOT NULL,
    last_ns INTEGER NOT NULL,
    count INTEGER NOT NULL,
    last_error TEXT NOT NULL,
    PRIMARY KEY (meter, bridge)
) WITHOUT ROWID;
"""
_REGISTERS = frozenset(n for n, spec in VOCABULARY.items() if spec.kind is Kind.COUNTER)


def write_legacy_file(
    path: Path,
    records: Sequence[UplinkRecord],
    letters: Sequence[DeadLetter] = (),
    points: Sequence[Point] = (),
    *,
    counters: bool = True,
    batch: int = 0,
) -> None:
    """Write ``records`` (and dead letters, and loose ``points`` such as consumption) into a new
    file laid out as the old store laid it out; one transaction per ``batch`` records (0: all
    in one), as the old store's ``write_uplinks`` would."""
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.executescript(LEGACY_DDL + (_COUNTERS if counters else ""))
    size = batch or max(len(records), 1)
    for first in range(0, len(records), size):
        with db:
            _uplinks(db, records[first : first + size], counters=counters)
    with db:
        _points(db, points, counters=counters)
        db.executemany(
            "INSERT INTO dead_letters (received_ns, topic, reason, detail, raw, device)"
            " VALUES (?,?,?,?,?,?)",
            [(to_ns(d.received_at), d.topic, d.reason, d.detail, d.raw, d.device) for d in letters],
        )
    db.close()


def _uplinks(db: sqlite3.Connection, records: Sequence[UplinkRecord], *, counters: bool) -> None:
    for record in records:
        raw = record.raw
        ns = to_ns(raw.received_at)
        cursor = db.execute(
            "INSERT OR IGNORE INTO raw_uplinks VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (raw.dedup_key, raw.device, raw.dev_eui, raw.network, ns, raw.f_port, raw.f_cnt,
             raw.payload, raw.decoder, raw.medium, raw.meter, int(raw.simulated)),
        )  # fmt: skip
        if cursor.rowcount == 0 or raw.simulated:
            continue
        _points(db, record.points, counters=counters)
        db.execute(
            """INSERT INTO devices VALUES (?,?,?,?,?,?,?,1,?)
            ON CONFLICT (device) DO UPDATE SET first_ns=min(first_ns, excluded.first_ns),
                last_f_cnt=CASE WHEN excluded.last_ns >= last_ns
                    THEN excluded.last_f_cnt ELSE last_f_cnt END,
                last_ns=max(last_ns, excluded.last_ns), uplinks=uplinks + 1""",
            (raw.device, raw.dev_eui, raw.decoder, raw.medium, raw.meter, ns, ns, raw.f_cnt),
        )


def _points(db: sqlite3.Connection, points: Sequence[Point], *, counters: bool) -> None:
    rows = []
    for p in points:
        interval = p.tags.get("interval")
        name = f"{p.measurement}.{interval}" if interval else p.measurement
        tags = json.dumps(dict(p.tags), sort_keys=True)
        rows += [(p.device, name, to_ns(p.time), k, v, tags) for k, v in p.fields.items()]
    db.executemany("INSERT OR REPLACE INTO points VALUES (?,?,?,?,?,?)", rows)
    if counters:
        db.executemany(
            "INSERT OR REPLACE INTO counters VALUES (?,?,?,?)",
            [
                (p.device, k, to_ns(p.time), v)
                for p in points
                if p.measurement in MEDIA
                for k, v in p.fields.items()
                if k in _REGISTERS and not isinstance(v, bool | str)
            ],
        )
