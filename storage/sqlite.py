"""The embedded SQLite store: one file, WAL mode, the default when nothing else is set up."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import numpy as np

from decoders.core import MEDIA, VOCABULARY, Kind, Value
from storage.base import (
    NEIGHBOUR_LOOKBACK_NS,
    DeviceSummary,
    ReadingRow,
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

__all__ = ["SQLiteStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS points (
    device TEXT NOT NULL,
    measurement TEXT NOT NULL,
    time_ns INTEGER NOT NULL,
    field TEXT NOT NULL,
    value,
    tags TEXT NOT NULL,
    PRIMARY KEY (device, measurement, time_ns, field)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS counters (
    device TEXT NOT NULL,
    field TEXT NOT NULL,
    time_ns INTEGER NOT NULL,
    value REAL NOT NULL,
    PRIMARY KEY (device, field, time_ns)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS raw_uplinks (
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
CREATE INDEX IF NOT EXISTS raw_uplinks_device_time ON raw_uplinks (device, received_ns);
CREATE INDEX IF NOT EXISTS raw_uplinks_network_time ON raw_uplinks (network, received_ns);
CREATE TABLE IF NOT EXISTS devices (
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
"""


# Cumulative registers are also kept in their own narrow table, one row per reading, so that
# metering reads a year of a meter (or a day of ten thousand) as one index range each.
COUNTERS = tuple(name for name, spec in VOCABULARY.items() if spec.kind is Kind.COUNTER)


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
        with self._write_lock:
            db = self._db()
            had_counters = db.execute(
                "SELECT 1 FROM sqlite_master WHERE name = 'counters'"
            ).fetchone()
            db.executescript(_SCHEMA)
            if not had_counters:  # a file from before the counters table: fill it once
                with db:
                    db.execute(
                        f"""INSERT OR IGNORE INTO counters SELECT device, field, time_ns, value
                        FROM points WHERE measurement IN ({",".join("?" * len(MEDIA))})
                        AND field IN ({",".join("?" * len(COUNTERS))})""",
                        (*MEDIA, *COUNTERS),
                    )

    # -- connections -------------------------------------------------------------------------

    def _db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            try:
                db = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
                db.execute("PRAGMA journal_mode=WAL")
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
                    yield db
            except (sqlite3.IntegrityError, sqlite3.DataError, sqlite3.InterfaceError) as exc:
                raise RecordError(f"SQLite refused a record in {self.path}: {exc}") from exc
            except sqlite3.Error as exc:  # disk full, locked, I/O: the same write may work later
                raise StoreError(
                    f"SQLite write to {self.path} failed: {exc}; free disk space or check"
                    " the file's permissions"
                ) from exc
            except (OverflowError, UnicodeEncodeError, ValueError, TypeError) as exc:
                # a value SQLite cannot bind: an integer beyond 64 bits, a lone surrogate, ...
                raise RecordError(f"SQLite cannot store a value: {exc}") from exc

    # -- writes ------------------------------------------------------------------------------

    def write_uplinks(self, records: Sequence[UplinkRecord]) -> WriteResult:
        written = duplicates = 0
        with self._transaction() as db:
            for record in records:
                raw = record.raw
                received_ns = to_ns(raw.received_at)
                cursor = db.execute(
                    "INSERT OR IGNORE INTO raw_uplinks VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        raw.dedup_key,
                        raw.device,
                        raw.dev_eui,
                        raw.network,
                        received_ns,
                        raw.f_port,
                        raw.f_cnt,
                        raw.payload,
                        raw.decoder,
                        raw.medium,
                        raw.meter,
                        int(raw.simulated),
                    ),
                )
                if cursor.rowcount == 0:
                    duplicates += 1
                    continue
                written += 1
                if raw.simulated:
                    continue
                db.executemany(
                    "INSERT OR REPLACE INTO points VALUES (?,?,?,?,?,?)", _point_rows(record.points)
                )
                db.executemany(
                    "INSERT OR REPLACE INTO counters VALUES (?,?,?,?)", _counter_rows(record.points)
                )
                _write_sightings(db, record.sightings)
                db.execute(
                    """INSERT INTO devices VALUES (?,?,?,?,?,?,?,1,?)
                    ON CONFLICT (device) DO UPDATE SET
                        dev_eui=excluded.dev_eui, decoder=excluded.decoder,
                        medium=excluded.medium, meter=excluded.meter,
                        first_ns=min(first_ns, excluded.first_ns),
                        last_f_cnt=CASE WHEN excluded.last_ns >= last_ns
                            THEN excluded.last_f_cnt ELSE last_f_cnt END,
                        last_ns=max(last_ns, excluded.last_ns),
                        uplinks=uplinks + 1""",
                    (
                        raw.device,
                        raw.dev_eui,
                        raw.decoder,
                        raw.medium,
                        raw.meter,
                        received_ns,
                        received_ns,
                        raw.f_cnt,
                    ),
                )
        return WriteResult(written=written, duplicates=duplicates)

    def write_dead_letters(self, letters: Sequence[DeadLetter]) -> None:
        with self._transaction() as db:
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
        rows = self._query("SELECT * FROM devices ORDER BY device")
        return [self._summary(row) for row in rows]

    def device(self, device: str) -> DeviceSummary | None:
        rows = self._query("SELECT * FROM devices WHERE device = ?", (device,))
        return self._summary(rows[0]) if rows else None

    def _summary(self, row: tuple[object, ...]) -> DeviceSummary:
        device, dev_eui, decoder, medium, meter, first_ns, last_ns, uplinks, last_f_cnt = row
        device, medium = str(device), str(medium)
        last = self._latest(device, medium)
        last_at = from_ns(last[0]) if last else None
        last_values = last[1] if last else {}
        radio = self._latest(device, RADIO)
        radio_values = radio[1] if radio else {}
        battery = self._last_value(device, medium, "battery_pct")
        battery_v = self._last_value(device, medium, "battery_v")
        return DeviceSummary(
            device=device,
            dev_eui=str(dev_eui),
            decoder=str(decoder),
            medium=medium,
            meter=str(meter),
            first_seen=from_ns(int(str(first_ns))),
            last_seen=from_ns(int(str(last_ns))),
            uplinks=int(str(uplinks)),
            last_f_cnt=int(str(last_f_cnt)),
            last_reading=last_values,
            last_reading_at=last_at,
            battery_pct=battery,
            battery_v=battery_v,
            rssi_dbm=_float(radio_values.get("rssi_dbm")),
            snr_db=_float(radio_values.get("snr_db")),
            tags={k: v for k, v in (last[2] if last else {}).items() if k not in BASE_TAGS},
        )

    def _latest(
        self, device: str, measurement: str
    ) -> tuple[int, dict[str, Value], dict[str, str]] | None:
        """The newest instant of a measurement: its time, values and tags."""
        rows = self._query(
            """SELECT time_ns, field, value, tags FROM points WHERE device = ? AND measurement = ?
            AND time_ns = (SELECT max(time_ns) FROM points WHERE device = ? AND measurement = ?)""",
            (device, measurement, device, measurement),
        )
        if not rows:
            return None
        tags = json.loads(str(rows[0][3]))
        values = {str(f): _typed(str(f), v) for _, f, v, _ in rows}
        return int(str(rows[0][0])), values, {str(k): str(v) for k, v in tags.items()}

    def _last_value(self, device: str, measurement: str, field: str) -> float | None:
        rows = self._query(
            """SELECT value FROM points WHERE device = ? AND measurement = ? AND field = ?
            ORDER BY time_ns DESC LIMIT 1""",
            (device, measurement, field),
        )
        return _float(rows[0][0]) if rows else None

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

    def readings(
        self,
        device: str,
        start: datetime,
        end: datetime,
        fields: Sequence[str] = (),
        limit: int = 10_000,
    ) -> list[ReadingRow]:
        field_filter = ""
        args: list[object] = [device, *MEDIA, to_ns(start), to_ns(end)]
        if fields:
            field_filter = f" AND field IN ({','.join('?' * len(fields))})"
            args.extend(fields)
        media = ",".join("?" * len(MEDIA))
        rows = self._query(
            f"""SELECT time_ns, measurement, field, value FROM points
            WHERE device = ? AND measurement IN ({media}) AND time_ns >= ? AND time_ns < ?
            {field_filter} ORDER BY time_ns, measurement, field""",
            args,
        )
        out: list[ReadingRow] = []
        key: tuple[object, object] | None = None
        for time_ns, measurement, name, value in rows:
            if (time_ns, measurement) != key:
                if len(out) == limit:
                    break
                key = (time_ns, measurement)
                out.append(ReadingRow(from_ns(int(str(time_ns))), str(measurement), {}))
            out[-1].values[str(name)] = _typed(str(name), value)  # type: ignore[index]
        return out

    def raw_uplinks(
        self, device: str | None = None, start: datetime | None = None, limit: int = 10_000
    ) -> list[RawUplink]:
        sql = "SELECT * FROM raw_uplinks WHERE 1=1"
        args: list[object] = []
        if device is not None:
            sql += " AND device = ?"
            args.append(device)
        if start is not None:
            sql += " AND received_ns >= ?"
            args.append(to_ns(start))
        sql += " ORDER BY received_ns LIMIT ?"
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
            of_medium = [str(d) for (d,) in self._query(
                "SELECT device FROM devices WHERE medium = ?", (medium,)
            )]  # fmt: skip
            devices = of_medium if devices is None else sorted(set(devices) & set(of_medium))
        elif devices is None:
            devices = [str(d) for (d,) in self._query("SELECT device FROM devices")]
        if field in _COUNTER_SET:
            table, where = "counters", "device = ? AND field = ?"
        else:
            media = ",".join(repr(m) for m in MEDIA)
            table, where = "points", f"device = ? AND measurement IN ({media}) AND field = ?"
        start_ns, end_ns = to_ns(start), to_ns(end)
        # The window plus its two neighbours, each found by one index seek.
        sql = f"""SELECT time_ns, value FROM {table} WHERE {where} AND time_ns BETWEEN
            coalesce((SELECT max(time_ns) FROM {table} WHERE {where}
                      AND time_ns < ? AND time_ns >= ?), ?)
            AND coalesce((SELECT min(time_ns) FROM {table} WHERE {where}
                      AND time_ns > ? AND time_ns <= ?), ?)
            ORDER BY time_ns"""
        out: dict[str, Series] = {}
        try:
            db = self._db()
            for device in devices:
                rows = db.execute(
                    sql,
                    (
                        device,
                        field,
                        device,
                        field,
                        start_ns,
                        start_ns - NEIGHBOUR_LOOKBACK_NS,
                        start_ns,
                        device,
                        field,
                        end_ns,
                        end_ns + NEIGHBOUR_LOOKBACK_NS,
                        end_ns,
                    ),
                ).fetchall()
                if table == "points":  # the counters table holds numbers only
                    rows = [r for r in rows if isinstance(r[1], int | float)]
                if rows:
                    out[device] = Series(
                        np.fromiter((r[0] for r in rows), np.int64, len(rows)),
                        np.fromiter((r[1] for r in rows), np.float64, len(rows)),
                    )
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite query on {self.path} failed: {exc}") from exc
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
        with self._transaction() as db:
            db.executemany("DELETE FROM dead_letters WHERE id = ?", [(int(k),) for k in keys])

    def delete_readings(self, device: str) -> None:
        with self._transaction() as db:
            media = ",".join("?" * len(MEDIA))
            db.execute(
                f"DELETE FROM points WHERE device = ? AND measurement IN ({media})",
                (device, *MEDIA),
            )
            db.execute("DELETE FROM counters WHERE device = ?", (device,))

    def write_points(self, points: Sequence[Point]) -> None:
        with self._transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO points VALUES (?,?,?,?,?,?)", _point_rows(points)
            )
            db.executemany(
                "INSERT OR REPLACE INTO counters VALUES (?,?,?,?)", _counter_rows(points)
            )

    def last_uplink_at(self, network: str) -> datetime | None:
        rows = self._query("SELECT max(received_ns) FROM raw_uplinks WHERE network = ?", (network,))
        newest = rows[0][0] if rows else None
        return from_ns(int(newest)) if isinstance(newest, int) else None

    def health(self) -> StoreHealth:
        try:
            uplinks = self._query("SELECT count(*) FROM raw_uplinks")[0][0]
            reasons = self._query("SELECT reason, count(*) FROM dead_letters GROUP BY reason")
        except StoreError as exc:
            return StoreHealth(False, self.backend, str(exc), 0, {})
        return StoreHealth(
            ok=True,
            backend=self.backend,
            detail=f"SQLite file {self.path}",
            uplinks=int(str(uplinks)),
            dead_letters={str(r): int(str(n)) for r, n in reasons},
        )

    def close(self) -> None:
        with self._write_lock:
            for db in self._connections:
                db.close()
            self._connections.clear()
            self._local = threading.local()


_COUNTER_SET = frozenset(COUNTERS)


def _series_name(point: Point) -> str:
    """The measurement column of a derived point: ``consumption.day``, so that an hour and a day
    starting at the same instant are two points here as in InfluxDB (whose tags tell them apart).
    """
    interval = point.tags.get("interval")
    return f"{point.measurement}.{interval}" if interval else point.measurement


def _point_rows(points: Sequence[Point]) -> list[tuple[object, ...]]:
    """Rows of the ``points`` table: one per field of each point."""
    return [
        (
            point.device,
            _series_name(point),
            to_ns(point.time),
            name,
            value,
            json.dumps(dict(point.tags), sort_keys=True),
        )
        for point in points
        for name, value in point.fields.items()
    ]


def _counter_rows(points: Sequence[Point]) -> list[tuple[object, ...]]:
    """Rows of the ``counters`` table: the register fields of the medium points."""
    return [
        (point.device, name, to_ns(point.time), value)
        for point in points
        if point.measurement in MEDIA
        for name, value in point.fields.items()
        if name in _COUNTER_SET and not isinstance(value, bool | str)
    ]


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


def _typed(name: str, value: object) -> Value:
    """SQLite keeps bools as integers; give states declared bool their type back."""
    spec = VOCABULARY.get(name)
    if spec is not None and spec.type is bool:
        return bool(value)
    if isinstance(value, bytes | bytearray):
        return value.decode()
    assert isinstance(value, int | float | str)
    return value


def _float(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
