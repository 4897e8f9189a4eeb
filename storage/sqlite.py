"""The embedded SQLite store: one file, WAL mode, the default when nothing else is set up.

The layout is compact (see storage/SCHEMA.md): one row per reading (its values as a JSON array
in the order of a shared field set), the tag sets, field sets, series and uplink sources stored
once and referred to by id, and each device's summary kept up to date at write time, so that
the device list and ``/health`` read one row per device instead of recounting. Files written
by the earlier layout (the tag JSON on every field row) are migrated when opened.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from decoders.core import MEDIA, VOCABULARY, Kind, Value
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
from storage.schema import (
    BASE_TAGS,
    RADIO,
    DeadLetter,
    MeterSighting,
    Point,
    RawUplink,
    UplinkRecord,
    from_ns,
    to_ns,
)
from storage.value_rows import decode_rows

__all__ = ["SCHEMA_VERSION", "SQLiteStore"]

log = logging.getLogger("lorameter.storage.sqlite")

SCHEMA_VERSION = 2  # PRAGMA user_version; 0: the first layout (or a new, empty file)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY,
    device TEXT NOT NULL,
    measurement TEXT NOT NULL,
    UNIQUE (device, measurement)
);
CREATE TABLE IF NOT EXISTS tagsets (id INTEGER PRIMARY KEY, tags TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS fieldsets (id INTEGER PRIMARY KEY, fields TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS readings (
    series INTEGER NOT NULL,
    time_ns INTEGER NOT NULL,
    tagset INTEGER NOT NULL,
    fieldset INTEGER NOT NULL,
    vals TEXT NOT NULL,
    PRIMARY KEY (series, time_ns)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS counter_series (
    id INTEGER PRIMARY KEY,
    device TEXT NOT NULL,
    field TEXT NOT NULL,
    UNIQUE (device, field)
);
CREATE TABLE IF NOT EXISTS counters (
    series INTEGER NOT NULL,
    time_ns INTEGER NOT NULL,
    value REAL NOT NULL,
    PRIMARY KEY (series, time_ns)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sources (
    id INTEGER PRIMARY KEY,
    device TEXT NOT NULL,
    dev_eui TEXT NOT NULL,
    network TEXT NOT NULL,
    decoder TEXT NOT NULL,
    medium TEXT NOT NULL,
    meter TEXT NOT NULL,
    UNIQUE (device, dev_eui, network, decoder, medium, meter)
);
CREATE TABLE IF NOT EXISTS key_prefixes (id INTEGER PRIMARY KEY, prefix TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS uplinks (
    id INTEGER PRIMARY KEY,
    key_prefix INTEGER NOT NULL,
    key_rest TEXT NOT NULL,
    source INTEGER NOT NULL,
    received_ns INTEGER NOT NULL,
    f_port INTEGER NOT NULL,
    f_cnt INTEGER NOT NULL,
    payload BLOB NOT NULL,
    simulated INTEGER NOT NULL,
    UNIQUE (key_rest, key_prefix)
);
CREATE INDEX IF NOT EXISTS uplinks_source_time ON uplinks (source, received_ns);
CREATE TABLE IF NOT EXISTS devices (
    device TEXT PRIMARY KEY,
    dev_eui TEXT NOT NULL,
    decoder TEXT NOT NULL,
    medium TEXT NOT NULL,
    meter TEXT NOT NULL,
    first_ns INTEGER NOT NULL,
    last_ns INTEGER NOT NULL,
    uplinks INTEGER NOT NULL,
    last_f_cnt INTEGER NOT NULL,
    reading_ns INTEGER,
    reading TEXT,
    tags TEXT,
    battery_pct_ns INTEGER,
    battery_pct REAL,
    battery_v_ns INTEGER,
    battery_v REAL,
    radio_ns INTEGER,
    rssi_dbm REAL,
    snr_db REAL,
    seq INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS devices_seq ON devices (seq);
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received_ns INTEGER NOT NULL,
    topic TEXT NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL,
    raw BLOB NOT NULL,
    device TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS unregistered_meters (
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
CREATE TABLE IF NOT EXISTS counts (name TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
INSERT OR IGNORE INTO counts VALUES ('uplinks', 0);
INSERT OR IGNORE INTO counts VALUES ('devices_seq', 0);
CREATE TRIGGER IF NOT EXISTS dead_letter_added AFTER INSERT ON dead_letters BEGIN
    INSERT INTO counts VALUES ('dead_letters:' || new.reason, 1)
        ON CONFLICT (name) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER IF NOT EXISTS dead_letter_removed AFTER DELETE ON dead_letters BEGIN
    UPDATE counts SET n = n - 1 WHERE name = 'dead_letters:' || old.reason;
END;
"""
_VIEWS = """
CREATE VIEW IF NOT EXISTS points (device, measurement, time_ns, field, value, tags) AS
    SELECT s.device, s.measurement, r.time_ns, f.value, v.value, t.tags
    FROM readings r JOIN series s ON s.id = r.series JOIN tagsets t ON t.id = r.tagset
    JOIN fieldsets fs ON fs.id = r.fieldset, json_each(r.vals) v, json_each(fs.fields) f
    WHERE f.key = v.key;
CREATE VIEW IF NOT EXISTS raw_uplinks (dedup_key, device, dev_eui, network, received_ns, f_port,
        f_cnt, payload, decoder, medium, meter, simulated) AS
    SELECT k.prefix || u.key_rest, s.device, s.dev_eui, s.network, u.received_ns, u.f_port,
        u.f_cnt, u.payload, s.decoder, s.medium, s.meter, u.simulated
    FROM uplinks u JOIN sources s ON s.id = u.source JOIN key_prefixes k ON k.id = u.key_prefix;
"""
# ``points`` and ``raw_uplinks`` are views in the shape of the first layout's tables, for
# people (and scripts) who query the file with the sqlite3 shell.

# Cumulative registers are also kept in their own narrow table, one row per reading, so that
# metering reads a year of a meter (or a day of ten thousand) as one index range each.
COUNTERS = tuple(name for name, spec in VOCABULARY.items() if spec.kind is Kind.COUNTER)
_COUNTER_SET = frozenset(COUNTERS)
_MEDIA_SET = frozenset(MEDIA)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SUMMARISED = _MEDIA_SET | {RADIO}  # the measurements a device summary shows
# The lookup tables: rows written once, never changed, referred to by id.
_LOOKUPS = {
    "series": ("device", "measurement"),
    "counter_series": ("device", "field"),
    "tagsets": ("tags",),
    "fieldsets": ("fields",),
    "sources": ("device", "dev_eui", "network", "decoder", "medium", "meter"),
    "key_prefixes": ("prefix",),
}


class SQLiteStore:
    """Readings in one SQLite file; safe to share between the ingest and API threads."""

    backend = "sqlite"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        folder = self.path.parent
        # Only the file's own folder is created, and only inside one that exists: a typo (or
        # sqlite:///abs/path, which is relative) must not silently grow a tree somewhere.
        if not folder.is_dir():
            if not folder.parent.is_dir():
                raise StoreError(
                    f"folder {folder} does not exist, nor does {folder.parent}: create it, or fix"
                    " the path (sqlite:///rel/file.db is relative, sqlite:////abs/file.db absolute)"
                )
            try:
                folder.mkdir(exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create the folder {folder}: {exc.strerror}") from exc
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        # ids of rows that are never changed once committed (series, tag sets, field sets,
        # sources); ids handed out in the running transaction are forgotten if it fails
        self._ids: dict[tuple[str, object], int] = {}
        self._new_ids: list[tuple[str, object]] = []
        self._fieldsets: dict[int, tuple[str, ...]] = {}
        self._shapes: dict[int, tuple[tuple[str, ...], tuple[str, ...]]] = {}
        # device summaries as this store last wrote them; valid while no other connection
        # has written to the file since (PRAGMA data_version of the writing connection)
        self._summaries: dict[str, _Summary] = {}
        self._summaries_seen: tuple[sqlite3.Connection, int] | None = None
        # the device list as last read, and the devices_seq it was read at
        self._devices_lock = threading.Lock()
        self._devices: dict[str, DeviceSummary] = {}
        self._devices_order: list[str] = []
        self._devices_list: list[DeviceSummary] = []
        self._devices_seq = -1
        with self._write_lock:
            db = self._db()
            try:
                with db:
                    # the write lock first: several workers may open a new file at once, and a
                    # read transaction upgraded to a write fails at once instead of waiting
                    db.execute("BEGIN IMMEDIATE")
                    self._open_schema(db)
            except StoreError:
                raise
            except (sqlite3.Error, ValueError, TypeError) as exc:  # ValueError: JSON in a row
                raise StoreError(
                    f"cannot set up SQLite file {self.path}: {exc}; it was left as it was"
                ) from exc

    def _open_schema(self, db: sqlite3.Connection) -> None:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"SQLite file {self.path} has schema version {version}, newer than this"
                f" lorameter's {SCHEMA_VERSION}: upgrade lorameter"
            )
        old = db.execute(
            "SELECT 1 FROM sqlite_master WHERE name = 'points' AND type = 'table'"
        ).fetchone()
        if old:
            _migrate_v1(self, db)
        else:
            _run_script(db, _SCHEMA + _VIEWS + f"PRAGMA user_version = {SCHEMA_VERSION};")

    # -- connections -------------------------------------------------------------------------

    def _db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            try:
                db = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_S, check_same_thread=False)
                _set_wal(db)
                db.execute("PRAGMA synchronous=NORMAL")
            except sqlite3.Error as exc:
                raise StoreError(f"cannot open SQLite file {self.path}: {exc}") from exc
            self._local.db = db
            self._connections.append(db)
        return db

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._write_lock:
            db = self._db()
            try:
                with db:
                    # the write lock first: ids looked up here stay true until the commit,
                    # whoever else writes the file
                    db.execute("BEGIN IMMEDIATE")
                    yield db
                self._new_ids.clear()
            except BaseException:
                for key in self._new_ids:  # rolled back with the transaction
                    self._ids.pop(key, None)
                self._new_ids.clear()
                self._summaries.clear()
                self._fieldsets.clear()  # read again from the file, as committed
                self._shapes.clear()
                raise

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """A write transaction, its errors sorted into RecordError (never storable as it is)
        and StoreError (may work later)."""
        try:
            with self._transaction() as db:
                yield db
        except (sqlite3.IntegrityError, sqlite3.DataError, sqlite3.InterfaceError) as exc:
            raise RecordError(f"SQLite refused a record in {self.path}: {exc}") from exc
        except sqlite3.Error as exc:  # disk full, locked, I/O: the same write may work later
            raise StoreError(
                f"SQLite write to {self.path} failed: {exc}; free disk space or check"
                " the file's permissions"
            ) from exc
        except (OverflowError, UnicodeEncodeError, ValueError, TypeError) as exc:
            # a value SQLite (or JSON) cannot hold: an integer beyond 64 bits, a lone surrogate
            raise RecordError(f"SQLite cannot store a value: {exc}") from exc

    def _id(
        self, db: sqlite3.Connection, table: str, key: object, values: tuple[object, ...]
    ) -> int:
        """The id of the row ``values`` of a lookup table (``_LOOKUPS``), inserted if new;
        ``key`` is its key in memory."""
        cache_key = (table, key)
        found = self._ids.get(cache_key)
        if found is not None:
            return found
        columns = _LOOKUPS[table]
        where = " AND ".join(f"{c} = ?" for c in columns)
        row = db.execute(f"SELECT id FROM {table} WHERE {where}", values).fetchone()
        if row is None:
            marks = ",".join("?" * len(columns))
            row = db.execute(
                f"INSERT INTO {table} ({','.join(columns)}) VALUES ({marks}) RETURNING id", values
            ).fetchone()
            self._new_ids.append(cache_key)
        self._ids[cache_key] = int(row[0])
        return int(row[0])

    def _series_id(self, db: sqlite3.Connection, device: str, measurement: str) -> int:
        return self._id(db, "series", (device, measurement), (device, measurement))

    def _counter_id(self, db: sqlite3.Connection, device: str, name: str) -> int:
        return self._id(db, "counter_series", (device, name), (device, name))

    def _tagset_id(self, db: sqlite3.Connection, tags: Mapping[str, str]) -> int:
        key = tuple(tags.items())
        found = self._ids.get(("tagsets", key))
        if found is not None:  # spares the JSON of a tag set seen before
            return found
        return self._id(db, "tagsets", key, (json.dumps(dict(tags), sort_keys=True),))

    def _fieldset_id(self, db: sqlite3.Connection, names: tuple[str, ...]) -> int:
        found = self._ids.get(("fieldsets", names))
        if found is None:
            found = self._id(db, "fieldsets", names, (json.dumps(names, separators=(",", ":")),))
            self._fieldsets[found] = names
        return found

    def _fields_of(self, fieldset: int) -> tuple[str, ...]:
        names = self._fieldsets.get(fieldset)
        if names is None:
            row = self._db().execute("SELECT fields FROM fieldsets WHERE id = ?", (fieldset,))
            names = tuple(json.loads(row.fetchone()[0]))
            self._fieldsets[fieldset] = names
        return names

    def _source_id(self, db: sqlite3.Connection, raw: RawUplink) -> int:
        key = (raw.device, raw.dev_eui, raw.network, raw.decoder, raw.medium, raw.meter)
        return self._id(db, "sources", key, key)

    # -- writes ------------------------------------------------------------------------------

    def write_uplinks(self, records: Sequence[UplinkRecord]) -> WriteResult:
        written = duplicates = 0
        with self._writing() as db:
            fresh: list[UplinkRecord] = []
            for record in records:
                raw = record.raw
                if not self._insert_uplink(db, raw):
                    duplicates += 1
                    continue
                written += 1
                if not raw.simulated:
                    fresh.append(record)
            points = [p for record in fresh for p in record.points]
            self._update_summaries(db, fresh, points)
            self._write_points(db, points)
            _write_sightings(db, [s for record in fresh for s in record.sightings])
            if written:
                db.execute("UPDATE counts SET n = n + ? WHERE name = 'uplinks'", (written,))
        return WriteResult(written=written, duplicates=duplicates)

    def _insert_uplink(self, db: sqlite3.Connection, raw: RawUplink) -> bool:
        """Keep a raw uplink; False if its dedup key is stored already. The key is kept as the
        part up to its last ``:`` (shared by a device's session: ``tts:<device>:<session>:``)
        and the rest (the frame counter)."""
        head, colon, rest = raw.dedup_key.rpartition(":")
        prefix = self._id(db, "key_prefixes", head + colon, (head + colon,))
        cursor = db.execute(
            "INSERT OR IGNORE INTO uplinks (key_prefix, key_rest, source, received_ns, f_port,"
            " f_cnt, payload, simulated) VALUES (?,?,?,?,?,?,?,?)",
            (
                prefix,
                rest,
                self._source_id(db, raw),
                to_ns(raw.received_at),
                raw.f_port,
                raw.f_cnt,
                raw.payload,
                int(raw.simulated),
            ),
        )
        return cursor.rowcount == 1

    def _write_points(self, db: sqlite3.Connection, points: Sequence[Point]) -> None:
        """Readings rows (merged with a row already at the same series and instant, field by
        field, the new value winning) and counters rows."""
        rows: list[tuple[int, int, int, int, str]] = []
        counters: list[tuple[int, int, object]] = []
        for point in points:
            device = point.device
            time_ns = to_ns(point.time)
            names = tuple(point.fields)
            rows.append(
                (
                    self._series_id(db, device, _series_name(point)),
                    time_ns,
                    self._tagset_id(db, point.tags),
                    self._fieldset_id(db, names),
                    orjson.dumps(list(point.fields.values())).decode(),
                )
            )
            if point.measurement in _MEDIA_SET:
                counters.extend(
                    (self._counter_id(db, device, name), time_ns, value)
                    for name, value in point.fields.items()
                    if name in _COUNTER_SET and not isinstance(value, bool | str)
                )
        inserted = db.executemany(
            "INSERT OR IGNORE INTO readings VALUES (?,?,?,?,?)", rows
        ).rowcount
        if inserted != len(rows):  # an instant written before (or twice in this batch): merge
            self._merge_readings(db, rows)
        db.executemany("INSERT OR REPLACE INTO counters VALUES (?,?,?)", counters)

    def _merge_readings(
        self, db: sqlite3.Connection, rows: Sequence[tuple[int, int, int, int, str]]
    ) -> None:
        for series, time_ns, tagset, fieldset, vals in rows:
            old_tagset, old_fieldset, old_vals = db.execute(
                "SELECT tagset, fieldset, vals FROM readings WHERE series = ? AND time_ns = ?",
                (series, time_ns),
            ).fetchone()
            if (old_tagset, old_fieldset, old_vals) == (tagset, fieldset, vals):
                continue
            merged = dict(zip(self._fields_of(old_fieldset), orjson.loads(old_vals), strict=True))
            merged.update(zip(self._fields_of(fieldset), orjson.loads(vals), strict=True))
            db.execute(
                "UPDATE readings SET tagset = ?, fieldset = ?, vals = ?"
                " WHERE series = ? AND time_ns = ?",
                (
                    tagset,
                    self._fieldset_id(db, tuple(merged)),
                    orjson.dumps(list(merged.values())).decode(),
                    series,
                    time_ns,
                ),
            )

    def _update_summaries(
        self, db: sqlite3.Connection, records: Sequence[UplinkRecord], points: Sequence[Point]
    ) -> None:
        """Each device's row in ``devices``: counts and times of its uplinks, its newest
        reading, battery and link quality, updated from what this batch adds."""
        summaries: dict[str, _Summary] = {}
        self._check_summaries(db)
        for record in records:
            raw = record.raw
            summary = summaries.get(raw.device)
            if summary is None:
                summary = summaries[raw.device] = self._summary(db, raw.device) or _Summary(
                    raw.device
                )
                self._summaries[raw.device] = summary
            summary.add_uplink(raw)
        self._apply_points(summaries, points)
        _save_summaries(db, summaries.values())

    def _check_summaries(self, db: sqlite3.Connection) -> None:
        """Forget the summaries kept in memory when another connection (another worker) wrote
        the file since they were read: once per transaction, which holds the write lock."""
        version = int(db.execute("PRAGMA data_version").fetchone()[0])
        if self._summaries_seen != (db, version):
            self._summaries.clear()
            self._summaries_seen = (db, version)

    def _summary(self, db: sqlite3.Connection, device: str) -> _Summary | None:
        """A device's summary row, from memory when nothing else wrote the file since
        (``_check_summaries`` first)."""
        found = self._summaries.get(device)
        if found is None:
            found = _load_summary(db, device)
            if found is not None:
                self._summaries[device] = found
        return found

    def _apply_points(self, summaries: Mapping[str, _Summary], points: Iterable[Point]) -> None:
        for point in points:
            summary = summaries.get(point.device)
            if summary is not None:
                summary.add_point(point)

    def write_dead_letters(self, letters: Sequence[DeadLetter]) -> None:
        with self._writing() as db:
            db.executemany(
                "INSERT INTO dead_letters (received_ns, topic, reason, detail, raw, device)"
                " VALUES (?,?,?,?,?,?)",
                [
                    (to_ns(d.received_at), d.topic, d.reason, d.detail, d.raw, d.device)
                    for d in letters
                ],
            )

    # -- reads -------------------------------------------------------------------------------

    def _query(self, sql: str, args: Sequence[object] = ()) -> list[tuple[object, ...]]:
        try:
            return self._db().execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite query on {self.path} failed: {exc}") from exc

    def devices(self) -> list[DeviceSummary]:
        # Rows are read once; later calls read only those written since (their seq is newer).
        with self._devices_lock:
            try:
                db = self._db()
                with db:  # one snapshot for both reads
                    db.execute("BEGIN")
                    (seq,) = db.execute(
                        "SELECT n FROM counts WHERE name = 'devices_seq'"
                    ).fetchone()
                    if seq == self._devices_seq:
                        return list(self._devices_list)
                    rows = db.execute(
                        f"SELECT {_SUMMARY_COLUMNS} FROM devices WHERE seq > ?",
                        (self._devices_seq,),
                    ).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"SQLite query on {self.path} failed: {exc}") from exc
            known = len(self._devices)
            for row in rows:
                summary = _summary_out(row)
                self._devices[summary.device] = summary
            if len(self._devices) != known:
                self._devices_order = sorted(self._devices)
            self._devices_seq = int(seq)
            self._devices_list = [self._devices[d] for d in self._devices_order]
            return list(self._devices_list)

    def device(self, device: str) -> DeviceSummary | None:
        rows = self._query(f"SELECT {_SUMMARY_COLUMNS} FROM devices WHERE device = ?", (device,))
        return _summary_out(rows[0]) if rows else None

    def unregistered_meters(self) -> list[UnregisteredMeter]:
        rows = self._query(
            """SELECT meter, bridge, manufacturer, version, device_type, medium, first_ns,
            last_ns, count, last_error FROM unregistered_meters ORDER BY meter, bridge"""
        )
        return [
            UnregisteredMeter(
                meter=str(meter),
                bridge=str(bridge),
                manufacturer=str(maker),
                version=int(str(version)),
                device_type=int(str(kind)),
                medium=str(medium),
                first_seen=from_ns(int(str(first_ns))),
                last_seen=from_ns(int(str(last_ns))),
                count=int(str(n)),
                last_error=str(error),
            )
            for meter, bridge, maker, version, kind, medium, first_ns, last_ns, n, error in rows
        ]

    def _media_series(self, device: str) -> dict[int, str]:
        media = ",".join("?" * len(MEDIA))
        rows = self._query(
            f"SELECT id, measurement FROM series WHERE device = ? AND measurement IN ({media})",
            (device, *MEDIA),
        )
        return {int(str(i)): str(m) for i, m in rows}

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
        series = self._media_series(device)
        if not series or limit <= 0:
            return ReadingTable.empty()
        ids = ",".join(str(i) for i in series)
        by_name = sorted(series, key=series.__getitem__)  # instants in order of measurement
        ranks = " ".join(f"WHEN {i} THEN {rank}" for rank, i in enumerate(by_name))
        order = "time_ns" if len(series) == 1 else f"time_ns, CASE series {ranks} END"
        wanted = frozenset(fields)
        # The rows as four JSON arrays, one string each (a year is 35,000 rows: no Python
        # tuple per row); json_group_array takes the rows in the order the inner query gives.
        sql = f"""SELECT json_group_array(series), json_group_array(time_ns),
            json_group_array(fieldset), '[' || group_concat(vals) || ']' FROM (
                SELECT series, time_ns, fieldset, vals FROM readings
                WHERE series IN ({ids}) AND time_ns >= ? AND time_ns < ?
                ORDER BY {order}{"" if wanted else " LIMIT ?"})"""
        args: list[object] = [to_ns(start), to_ns(end)]
        if not wanted:
            args.append(limit)
        try:
            sids, times, fieldsets, vals = self._db().execute(sql, args).fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite query on {self.path} failed: {exc}") from exc
        if vals is None:  # no rows
            return ReadingTable.empty()
        series_of: list[int] = orjson.loads(sids)
        times_ns = np.array(orjson.loads(times), dtype=np.int64)
        fieldset_of: list[int] = orjson.loads(fieldsets)
        kinds = set(zip(series_of, fieldset_of, strict=True))
        if not wanted and len(kinds) == 1:  # the usual page: one medium, one field set
            ((sid, fieldset),) = kinds
            names, bools = self._shape(fieldset)
            rows = None if bools else decode_rows(names, vals)
            if rows is not None:
                return ReadingTable(times_ns, [series[sid]] * len(rows), rows)
        values = orjson.loads(vals)
        kept: list[int] = []
        measurements: list[str] = []
        out: list[dict[str, Value]] = []
        shape: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())
        last_fieldset = None
        for i, (sid, fieldset, v) in enumerate(zip(series_of, fieldset_of, values, strict=True)):
            if fieldset != last_fieldset:  # consecutive rows mostly share their field set
                shape, last_fieldset = self._shape(fieldset), fieldset
            names, bools = shape
            if wanted:
                row = {n: x for n, x in zip(names, v, strict=True) if n in wanted}
                if not row:
                    continue
                if len(out) == limit:
                    break
            else:
                row = dict(zip(names, v, strict=True))
            if bools:
                row.update((n, bool(row[n])) for n in bools if n in row)
            kept.append(i)
            measurements.append(series[sid])
            out.append(row)
        return ReadingTable(times_ns[kept], measurements, out)

    def _shape(self, fieldset: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The field names of a field set, and those of them that are bools."""
        shape = self._shapes.get(fieldset)
        if shape is None:
            names = self._fields_of(fieldset)
            shape = self._shapes[fieldset] = (names, tuple(n for n in names if n in _BOOLS))
        return shape

    def raw_uplinks(
        self, device: str | None = None, start: datetime | None = None, limit: int = 10_000
    ) -> list[RawUplink]:
        sql = """SELECT k.prefix || u.key_rest, s.device, s.dev_eui, s.network, u.received_ns,
            u.f_port, u.f_cnt, u.payload, s.decoder, s.medium, s.meter, u.simulated
            FROM uplinks u JOIN sources s ON s.id = u.source
            JOIN key_prefixes k ON k.id = u.key_prefix WHERE 1=1"""
        args: list[object] = []
        if device is not None:
            sql += " AND u.source IN (SELECT id FROM sources WHERE device = ?)"
            args.append(device)
        if start is not None:
            sql += " AND u.received_ns >= ?"
            args.append(to_ns(start))
        sql += " ORDER BY u.received_ns, u.id LIMIT ?"
        args.append(limit)
        rows = self._query(sql, args)
        return [
            RawUplink(
                dedup_key=str(key),
                device=str(dev),
                dev_eui=str(eui),
                network=str(net),
                received_at=from_ns(int(str(ns))),
                f_port=int(str(port)),
                f_cnt=int(str(cnt)),
                payload=bytes(payload),  # type: ignore[call-overload]
                decoder=str(decoder),
                medium=str(medium),
                meter=str(meter),
                simulated=bool(sim),
            )
            for key, dev, eui, net, ns, port, cnt, payload, decoder, medium, meter, sim in rows
        ]

    def series(
        self,
        field: str,
        start: datetime,
        end: datetime,
        *,
        devices: Sequence[str] | None = None,
        medium: str | None = None,
    ) -> dict[str, Series]:
        if medium is not None:
            query = "SELECT device FROM devices WHERE medium = ?"
            of_medium = [str(d) for (d,) in self._query(query, (medium,))]
            devices = of_medium if devices is None else sorted(set(devices) & set(of_medium))
        elif devices is None:
            devices = [str(d) for (d,) in self._query("SELECT device FROM devices")]
        if field not in _COUNTER_SET:
            return self._gauge_series(field, start, end, devices)
        ids = {
            str(device): int(str(sid))
            for device, sid in self._query(
                "SELECT device, id FROM counter_series WHERE field = ?", (field,)
            )
        }
        start_ns, end_ns = to_ns(start), to_ns(end)
        # The window plus its two neighbours, each found by one index seek.
        sql = """SELECT time_ns, value FROM counters WHERE series = ?1 AND time_ns BETWEEN
            coalesce((SELECT max(time_ns) FROM counters WHERE series = ?1
                      AND time_ns < ?2 AND time_ns >= ?3), ?2)
            AND coalesce((SELECT min(time_ns) FROM counters WHERE series = ?1
                      AND time_ns > ?4 AND time_ns <= ?5), ?4)
            ORDER BY time_ns"""
        bounds = (
            start_ns,
            start_ns - NEIGHBOUR_LOOKBACK_NS,
            end_ns,
            end_ns + NEIGHBOUR_LOOKBACK_NS,
        )
        out: dict[str, Series] = {}
        try:
            db = self._db()
            for device in devices:
                sid = ids.get(device)
                if sid is None:
                    continue
                rows = db.execute(sql, (sid, *bounds)).fetchall()
                if rows:
                    out[device] = Series(
                        np.fromiter((r[0] for r in rows), np.int64, len(rows)),
                        np.fromiter((r[1] for r in rows), np.float64, len(rows)),
                    )
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite query on {self.path} failed: {exc}") from exc
        return out

    def _gauge_series(
        self, field: str, start: datetime, end: datetime, devices: Sequence[str]
    ) -> dict[str, Series]:
        """A field outside the counters table: read from the readings rows that have it."""
        start_ns, end_ns = to_ns(start), to_ns(end)
        out: dict[str, Series] = {}
        ids = [int(str(i)) for (i,) in self._query("SELECT id FROM fieldsets")]
        sets = [i for i in ids if field in self._fields_of(i)]
        if not sets:
            return out
        having = f"fieldset IN ({','.join(str(i) for i in sets)})"
        for device in devices:
            series = self._media_series(device)
            if not series:
                continue
            where = f"series IN ({','.join(str(i) for i in series)}) AND {having}"
            before = self._query(
                f"""SELECT max(time_ns) FROM readings WHERE {where}
                AND time_ns < ? AND time_ns >= ?""",
                (start_ns, start_ns - NEIGHBOUR_LOOKBACK_NS),
            )[0][0]
            after = self._query(
                f"""SELECT min(time_ns) FROM readings WHERE {where}
                AND time_ns > ? AND time_ns <= ?""",
                (end_ns, end_ns + NEIGHBOUR_LOOKBACK_NS),
            )[0][0]
            rows = self._query(
                f"""SELECT time_ns, fieldset, vals FROM readings WHERE {where}
                AND time_ns BETWEEN ? AND ? ORDER BY time_ns""",
                (
                    before if before is not None else start_ns,
                    after if after is not None else end_ns,
                ),
            )
            points = []
            for time_ns, fieldset, vals in rows:
                names = self._fields_of(int(str(fieldset)))
                value = dict(zip(names, orjson.loads(str(vals)), strict=True))[field]
                if isinstance(value, int | float) and not isinstance(value, bool):
                    points.append((int(str(time_ns)), float(value)))
            if points:
                out[device] = Series(
                    np.fromiter((t for t, _ in points), np.int64, len(points)),
                    np.fromiter((v for _, v in points), np.float64, len(points)),
                )
        return out

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        rows = self._query(
            "SELECT received_ns, topic, reason, detail, raw, device FROM dead_letters"
            " ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        return [
            DeadLetter(
                received_at=from_ns(int(str(ns))),
                topic=str(topic),
                reason=str(reason),
                detail=str(detail),
                raw=bytes(raw),  # type: ignore[call-overload]
                device=str(device),
            )
            for ns, topic, reason, detail, raw, device in rows
        ]

    def find_dead_letters(
        self,
        reason: str | None = None,
        device: str | None = None,
        after: str | None = None,
        limit: int = 1000,
    ) -> list[StoredDeadLetter]:
        sql = "SELECT id, received_ns, topic, reason, detail, raw, device FROM dead_letters"
        sql += " WHERE id > ?"
        args: list[object] = [int(after) if after is not None else 0]
        if reason is not None:
            sql += " AND reason = ?"
            args.append(reason)
        if device is not None:
            sql += " AND device = ?"
            args.append(device)
        rows = self._query(sql + " ORDER BY id LIMIT ?", [*args, limit])
        return [
            StoredDeadLetter(
                str(key),
                DeadLetter(
                    received_at=from_ns(int(str(ns))),
                    topic=str(topic),
                    reason=str(why),
                    detail=str(detail),
                    raw=bytes(raw),  # type: ignore[call-overload]
                    device=str(dev),
                ),
            )
            for key, ns, topic, why, detail, raw, dev in rows
        ]

    def delete_dead_letters(self, keys: Sequence[str]) -> None:
        with self._writing() as db:
            db.executemany("DELETE FROM dead_letters WHERE id = ?", [(int(k),) for k in keys])

    def delete_readings(self, device: str) -> None:
        series = list(self._media_series(device))
        with self._writing() as db:
            db.executemany("DELETE FROM readings WHERE series = ?", [(s,) for s in series])
            db.execute(
                "DELETE FROM counters WHERE series IN"
                " (SELECT id FROM counter_series WHERE device = ?)",
                (device,),
            )
            self._check_summaries(db)
            summary = self._summary(db, device)
            if summary is not None:
                summary.forget_readings()
                _save_summaries(db, [summary])

    def write_points(self, points: Sequence[Point]) -> None:
        with self._writing() as db:
            self._write_points(db, points)
            summaries = {}
            self._check_summaries(db)
            for device in {p.device for p in points if p.measurement in _SUMMARISED}:
                found = self._summary(db, device)
                if found is not None:
                    summaries[device] = found
            self._apply_points(summaries, points)
            _save_summaries(db, summaries.values())

    def last_uplink_at(self, network: str) -> datetime | None:
        rows = self._query(
            "SELECT max((SELECT max(received_ns) FROM uplinks WHERE source = s.id))"
            " FROM sources s WHERE network = ?",
            (network,),
        )
        newest = rows[0][0] if rows else None
        return from_ns(int(newest)) if isinstance(newest, int) else None

    def health(self) -> StoreHealth:
        try:
            counts = self._query("SELECT name, n FROM counts")
        except StoreError as exc:
            return StoreHealth(False, self.backend, str(exc), 0, {})
        named = {str(name): int(str(n)) for name, n in counts}
        return StoreHealth(
            ok=True,
            backend=self.backend,
            detail=f"SQLite file {self.path}",
            uplinks=named.get("uplinks", 0),
            dead_letters={
                name.removeprefix("dead_letters:"): n
                for name, n in sorted(named.items())
                if name.startswith("dead_letters:") and n > 0
            },
        )

    def close(self) -> None:
        with self._write_lock:
            for db in self._connections:
                db.close()
            self._connections.clear()
            self._local = threading.local()


# -- device summaries ----------------------------------------------------------------------

_SUMMARY_COLUMNS = """device, dev_eui, decoder, medium, meter, first_ns, last_ns, uplinks,
    last_f_cnt, reading_ns, reading, tags, battery_pct_ns, battery_pct, battery_v_ns, battery_v,
    radio_ns, rssi_dbm, snr_db"""
# ``seq`` tells readers which rows changed since they last looked (``SQLiteStore.devices``)
_SAVE_SUMMARY = f"""INSERT OR REPLACE INTO devices ({_SUMMARY_COLUMNS}, seq)
    VALUES ({",".join("?" * 19)}, (SELECT n FROM counts WHERE name = 'devices_seq'))"""


def _save_summaries(db: sqlite3.Connection, summaries: Iterable[_Summary]) -> None:
    rows = [s.row() for s in summaries]
    if rows:
        db.execute("UPDATE counts SET n = n + 1 WHERE name = 'devices_seq'")
        db.executemany(_SAVE_SUMMARY, rows)


@dataclass
class _Summary:
    """A row of ``devices``: what the device list shows, kept up to date at write time.

    The newest reading is the device's medium's newest instant (all fields written at it), the
    battery the newest value of ``battery_pct``/``battery_v`` in that medium, RSSI and SNR those
    of the newest ``radio`` instant; a value written later at the same instant wins.
    """

    device: str
    dev_eui: str = ""
    decoder: str = ""
    medium: str = ""
    meter: str = ""
    first_ns: int = 0
    last_ns: int = -1
    uplinks: int = 0
    last_f_cnt: int = 0
    reading_ns: int | None = None
    reading: dict[str, Value] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    battery_pct_ns: int | None = None
    battery_pct: float | None = None
    battery_v_ns: int | None = None
    battery_v: float | None = None
    radio_ns: int | None = None
    rssi_dbm: float | None = None
    snr_db: float | None = None

    def add_uplink(self, raw: RawUplink) -> None:
        received_ns = to_ns(raw.received_at)
        if raw.medium != self.medium and self.uplinks:
            self.forget_readings()  # its medium changed: readings of the new one count
        self.dev_eui, self.decoder = raw.dev_eui, raw.decoder
        self.medium, self.meter = raw.medium, raw.meter
        self.first_ns = received_ns if not self.uplinks else min(self.first_ns, received_ns)
        if received_ns >= self.last_ns:
            self.last_f_cnt = raw.f_cnt
            self.last_ns = received_ns
        self.uplinks += 1

    def forget_readings(self) -> None:
        self.reading_ns, self.reading, self.tags = None, {}, {}
        self.battery_pct_ns = self.battery_pct = self.battery_v_ns = self.battery_v = None

    def add_point(self, point: Point) -> None:
        time_ns = to_ns(point.time)
        values = point.fields
        if point.measurement == RADIO:
            if self.radio_ns is None or time_ns > self.radio_ns:
                self.radio_ns, self.rssi_dbm, self.snr_db = time_ns, None, None
            if time_ns == self.radio_ns:
                self.rssi_dbm = _float(values.get("rssi_dbm", self.rssi_dbm))
                self.snr_db = _float(values.get("snr_db", self.snr_db))
            return
        if point.measurement != self.medium:
            return
        if self.reading_ns is None or time_ns > self.reading_ns:
            self.reading_ns, self.reading = time_ns, {}
        if time_ns == self.reading_ns:
            self.reading.update(values)
            self.tags = {k: v for k, v in point.tags.items() if k not in BASE_TAGS}
        if "battery_pct" in values and (self.battery_pct_ns or time_ns) <= time_ns:
            self.battery_pct_ns, self.battery_pct = time_ns, _float(values["battery_pct"])
        if "battery_v" in values and (self.battery_v_ns or time_ns) <= time_ns:
            self.battery_v_ns, self.battery_v = time_ns, _float(values["battery_v"])

    def row(self) -> tuple[object, ...]:
        return (
            self.device, self.dev_eui, self.decoder, self.medium, self.meter, self.first_ns,
            self.last_ns, self.uplinks, self.last_f_cnt, self.reading_ns,
            orjson.dumps(self.reading).decode(), orjson.dumps(self.tags).decode(),
            self.battery_pct_ns, self.battery_pct, self.battery_v_ns, self.battery_v,
            self.radio_ns, self.rssi_dbm, self.snr_db,
        )  # fmt: skip

    @classmethod
    def from_row(cls, row: Sequence[object]) -> _Summary:
        (device, eui, decoder, medium, meter, first, last, uplinks, f_cnt, reading_ns, reading,
         tags, pct_ns, pct, volt_ns, volt, radio_ns, rssi, snr) = row  # fmt: skip
        return cls(
            str(device), str(eui), str(decoder), str(medium), str(meter), int(str(first)),
            int(str(last)), int(str(uplinks)), int(str(f_cnt)), _int(reading_ns),
            orjson.loads(str(reading)) if reading else {}, orjson.loads(str(tags)) if tags else {},
            _int(pct_ns), _float(pct), _int(volt_ns), _float(volt), _int(radio_ns), _float(rssi),
            _float(snr),
        )  # fmt: skip


def _summary_out(row: Sequence[Any]) -> DeviceSummary:
    """A ``devices`` row as the store gives it out (the device list reads ten thousand)."""
    (device, eui, decoder, medium, meter, first, last, uplinks, f_cnt, reading_ns, reading,
     tags, _, battery_pct, _, battery_v, _, rssi, snr) = row  # fmt: skip
    values = orjson.loads(reading) if reading else {}
    for name in _BOOLS.intersection(values):
        values[name] = bool(values[name])
    return DeviceSummary(
        device=device,
        dev_eui=eui,
        decoder=decoder,
        medium=medium,
        meter=meter,
        first_seen=from_ns(first),
        last_seen=from_ns(last),
        uplinks=uplinks,
        last_f_cnt=f_cnt,
        last_reading=values,
        last_reading_at=from_ns(reading_ns) if reading_ns is not None else None,
        battery_pct=battery_pct,
        battery_v=battery_v,
        rssi_dbm=rssi,
        snr_db=snr,
        tags=orjson.loads(tags) if tags else {},
    )


def _load_summary(db: sqlite3.Connection, device: str) -> _Summary | None:
    row = db.execute(f"SELECT {_SUMMARY_COLUMNS} FROM devices WHERE device = ?", (device,))
    found = row.fetchone()
    return _Summary.from_row(found) if found else None


# -- the first layout ----------------------------------------------------------------------


def _migrate_v1(store: SQLiteStore, db: sqlite3.Connection) -> None:
    """Bring a file of the first layout (``points`` with the tag JSON on every field row) into
    the compact one, in one transaction: readings regrouped per instant, raw uplinks and their
    sources, counters, and device summaries recomputed from the migrated rows."""
    if not db.in_transaction:  # all of it or nothing: the caller commits
        db.execute("BEGIN IMMEDIATE")
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    started = time.monotonic()
    log.warning(
        "SQLite file %s has the first layout: migrating it to the compact one, once"
        " (a minute or more per million uplinks; the file stays as it was if this stops)",
        store.path,
    )
    for name in ("points", "raw_uplinks", "devices", "counters"):
        if name in tables:
            db.execute(f"ALTER TABLE {name} RENAME TO {name}_v1")
    db.execute("DROP INDEX IF EXISTS raw_uplinks_device_time")
    db.execute("DROP INDEX IF EXISTS raw_uplinks_network_time")
    _run_script(db, _SCHEMA)
    for row in db.execute("SELECT * FROM raw_uplinks_v1 ORDER BY received_ns").fetchall():
        dedup, device, eui, network, ns, port, f_cnt, payload, decoder, medium, meter, sim = row
        raw = RawUplink(
            device, eui, network, dedup, from_ns(ns), port, f_cnt, payload, decoder, medium, meter
        )
        store._insert_uplink(db, replace(raw, simulated=bool(sim)))
    db.execute("UPDATE counts SET n = (SELECT count(*) FROM raw_uplinks_v1) WHERE name = 'uplinks'")
    db.execute(
        """INSERT INTO counts SELECT 'dead_letters:' || reason, count(*) FROM dead_letters
        GROUP BY reason"""
    )
    # the points, an instant at a time (the old primary key's order)
    batch: list[Point] = []
    key: tuple[object, ...] | None = None
    cursor = db.execute(
        "SELECT device, measurement, time_ns, field, value, tags FROM points_v1"
        " ORDER BY device, measurement, time_ns, field"
    )
    for device, measurement, time_ns, name, value, tags in cursor:
        if (device, measurement, time_ns) != key:
            key = (device, measurement, time_ns)
            measurement, _, interval = str(measurement).partition(".")
            tagged = {**json.loads(tags), "device": device}
            batch.append(Point(measurement, tagged, {}, from_ns(int(time_ns))))
            if interval and "interval" not in batch[-1].tags:  # consumption.day
                batch[-1].tags["interval"] = interval  # type: ignore[index]
        batch[-1].fields[str(name)] = _typed(str(name), value)  # type: ignore[index]
        if len(batch) > 10_000:
            store._write_points(db, batch[:-1])
            batch = batch[-1:]
    store._write_points(db, batch)
    if "counters" in tables:  # counters kept there that the points no longer hold stay
        db.execute(
            "INSERT OR IGNORE INTO counter_series (device, field)"
            " SELECT DISTINCT device, field FROM counters_v1"
        )
        db.execute(
            """INSERT OR IGNORE INTO counters SELECT s.id, c.time_ns, c.value FROM counters_v1 c
            JOIN counter_series s ON s.device = c.device AND s.field = c.field"""
        )
    for row in db.execute("SELECT * FROM devices_v1").fetchall():
        device, eui, decoder, medium, meter, first, last, uplinks, f_cnt = row
        summary = _Summary(device, eui, decoder, medium, meter, first, last, uplinks, f_cnt)
        _recount_readings(store, db, summary)
        _save_summaries(db, [summary])
    for name in ("points", "raw_uplinks", "devices", "counters"):
        db.execute(f"DROP TABLE IF EXISTS {name}_v1")
    _run_script(db, _VIEWS + f"PRAGMA user_version = {SCHEMA_VERSION};")
    log.warning(
        "SQLite file %s migrated in %.0f s; `sqlite3 %s VACUUM` (with lorameter stopped) gives"
        " the space the old tables took back to the disk",
        store.path,
        time.monotonic() - started,
        store.path,
    )


def _recount_readings(store: SQLiteStore, db: sqlite3.Connection, summary: _Summary) -> None:
    """The newest reading, battery and radio values of a device, from its stored rows."""
    for measurement in (summary.medium, RADIO):
        sid = db.execute(
            "SELECT id FROM series WHERE device = ? AND measurement = ?",
            (summary.device, measurement),
        ).fetchone()
        if sid is None:
            continue
        newest = db.execute(
            "SELECT time_ns, tagset, fieldset, vals FROM readings WHERE series = ?"
            " ORDER BY time_ns DESC LIMIT 1",
            (sid[0],),
        ).fetchone()
        if newest is not None:
            summary.add_point(_point(store, db, measurement, newest))
        if measurement == RADIO:
            continue
        for name in ("battery_pct", "battery_v"):
            ids = db.execute("SELECT id FROM fieldsets").fetchall()
            sets = [i for (i,) in ids if name in store._fields_of(i)]
            last = db.execute(
                f"""SELECT time_ns, tagset, fieldset, vals FROM readings WHERE series = ?
                AND fieldset IN ({",".join(map(str, sets)) or "NULL"})
                ORDER BY time_ns DESC LIMIT 1""",
                (sid[0],),
            ).fetchone()
            if last is not None:
                point = _point(store, db, measurement, last)
                if point.fields.get(name) is not None:
                    summary.add_point(replace_fields(point, {name: point.fields[name]}))


def _point(
    store: SQLiteStore, db: sqlite3.Connection, measurement: str, row: Sequence[object]
) -> Point:
    time_ns, tagset, fieldset, vals = row
    tags = json.loads(db.execute("SELECT tags FROM tagsets WHERE id = ?", (tagset,)).fetchone()[0])
    names = store._fields_of(int(str(fieldset)))
    values = {n: _typed(n, v) for n, v in zip(names, orjson.loads(str(vals)), strict=True)}
    return Point(measurement, tags, values, from_ns(int(str(time_ns))))


def replace_fields(point: Point, fields: Mapping[str, Value]) -> Point:
    return Point(point.measurement, point.tags, fields, point.time)


# -- rows ----------------------------------------------------------------------------------


_BUSY_TIMEOUT_S = 30.0


def _set_wal(db: sqlite3.Connection) -> None:
    """WAL mode, waiting for the lock like any write: workers opening a new file at once race
    for its header, and SQLite answers the loser "locked" at once instead of waiting."""
    deadline = time.monotonic() + _BUSY_TIMEOUT_S
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _run_script(db: sqlite3.Connection, script: str) -> None:
    """Run SQL statements one by one, inside the caller's transaction (``executescript`` would
    commit it first)."""
    if not db.in_transaction:
        db.execute("BEGIN")
    statement = ""
    for part in script.split(";"):
        statement += part + ";"
        if sqlite3.complete_statement(statement):
            if statement.strip(" \n;"):
                db.execute(statement)
            statement = ""


def _series_name(point: Point) -> str:
    """The measurement column of a derived point: ``consumption.day``, so that an hour and a day
    starting at the same instant are two points here as in InfluxDB (whose tags tell them apart).
    """
    interval = point.tags.get("interval")
    return f"{point.measurement}.{interval}" if interval else point.measurement


def _write_sightings(db: sqlite3.Connection, sightings: Sequence[MeterSighting]) -> None:
    """Count a new uplink's unregistered meters; the newest sighting gives the last error (the
    address fields are the key's parts, the medium follows from the device type).

    Called only for an uplink not stored before (its dedup key), so a redelivery counts nothing.
    """
    db.executemany(
        """INSERT INTO unregistered_meters VALUES (?,?,?,?,?,?,?,?,1,?)
        ON CONFLICT (meter, bridge) DO UPDATE SET
            last_error=CASE WHEN excluded.last_ns >= last_ns
                THEN excluded.last_error ELSE last_error END,
            first_ns=min(first_ns, excluded.first_ns),
            last_ns=max(last_ns, excluded.last_ns),
            count=count + 1""",
        [
            (
                s.meter,
                s.bridge,
                s.manufacturer,
                s.version,
                s.device_type,
                s.medium,
                to_ns(s.seen_at),
                to_ns(s.seen_at),
                s.error,
            )
            for s in sightings
        ],
    )


# SQLite (and the first layout) kept bools as integers: states declared bool get their type back
_BOOLS = frozenset(name for name, spec in VOCABULARY.items() if spec.type is bool)


def _typed(name: str, value: object) -> Value:
    """A value as stored, with the vocabulary's bools as bools."""
    if name in _BOOLS:
        return bool(value)
    if isinstance(value, bytes | bytearray):
        return value.decode()
    assert isinstance(value, int | float | str)
    return value


def _float(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _int(value: object) -> int | None:
    return int(value) if isinstance(value, int) else None
