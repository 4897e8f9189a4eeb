"""Bytes on disk per uplink of a heat meter (Elvaco CMi4110) in the SQLite store.

Writes N standard CMi4110 uplinks (energy, volume, power, flow, both temperatures, meter id,
error word; with their radio point and raw uplink, as ingest makes them) of a fleet of meters
through ``SQLiteStore.write_uplinks`` plus a dead letter per 1000 uplinks, runs ``VACUUM`` and
divides the file's size by N. The anchor is the layout before the compact schema (the tag JSON
on every field row), written from the same records in the same run. Target: <= 300 bytes.
Also prints the write time per uplink in transactions of ``--batch`` uplinks (10: what the
writer commits under live traffic), the old layout's rows written the old way as the anchor.

    .venv/bin/python bench/sqlite_size.py [--uplinks 100000] [--meters 100] [--batch 10]
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common
from decoders.core import Reading, Uplink
from decoders.registry import by_id
from storage.schema import (
    DeadLetter,
    RadioInfo,
    RawUplink,
    UplinkRecord,
    radio_point,
    reading_points,
)
from storage.sqlite import SQLiteStore
from tests.storage.legacy_sqlite import write_legacy_file

# The standard message of the decoder's own example, as TTS delivers it (fPort 2).
PAYLOAD = bytes.fromhex(
    "000C06526761020C14978999000B2D0000000B3B0000000A5A33060A5E41050C782911036602FD170000"
)
SESSION = "AZNx3fK2RWqB0c8ePj1tYg=="
RADIO = RadioInfo(-97.0, 7.25, 9, 1, 868_300_000.0, 0.205824)


def cmi4110_records(
    n: int,
    *,
    start: datetime = datetime(2025, 1, 1, tzinfo=UTC),
    step: timedelta = timedelta(minutes=15),
    meters: int = 0,
    device: str = "",
    first_device: int = 0,
    f_cnt0: int = 0,
) -> list[UplinkRecord]:
    """``n`` uplinks, ``step`` apart: of ``device`` (one meter), or of ``meters`` meters in turn
    (``cmi-00000``…; ``meters`` 0: each uplink its own meter, numbered from ``first_device``)."""
    decoder = by_id("elvaco_cmi4110")
    assert decoder is not None
    (reading,) = decoder.decode(Uplink(2, PAYLOAD))
    assert isinstance(reading, Reading)
    energy, volume = reading.values["energy_heat_kwh"], reading.values["volume_m3"]
    assert isinstance(energy, float)
    assert isinstance(volume, float)
    out = []
    for i in range(n):
        number = first_device + (i % meters if meters else i)
        name = device or f"cmi-{number:05d}"
        f_cnt = f_cnt0 + (i // meters if meters else i) + 1
        received = start + step * i
        values = dict(reading.values)
        values["energy_heat_kwh"] = energy + i
        values["volume_m3"] = round(volume + i * 0.01, 2)
        tags = {"device": name, "meter": f"{66031129 + number}", "decoder": decoder.id}
        tags["site"] = "bernau"
        points = reading_points([Reading(values)], medium="heat", received_at=received, tags=tags)
        points.append(radio_point(name, received, f_cnt, RADIO))
        raw = RawUplink(
            device=name,
            dev_eui=f"70b3d5e75e{number:06x}",
            network="tts",
            dedup_key=f"tts:{name}:{SESSION}:{f_cnt}",
            received_at=received,
            f_port=2,
            f_cnt=f_cnt,
            payload=PAYLOAD,
            decoder=decoder.id,
            medium="heat",
            meter=tags["meter"],
        )
        out.append(UplinkRecord(raw, points))
    return out


def letters(n: int) -> list[DeadLetter]:
    at = datetime(2025, 1, 1, tzinfo=UTC)
    return [
        DeadLetter(at + timedelta(seconds=i), "v3/app/devices/x/up", "not_json",
                   "Expecting value: line 1 column 1", b"\xff\x00garbage")
        for i in range(n)
    ]  # fmt: skip


def size(path: Path) -> int:
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.execute("VACUUM")
    db.close()
    return path.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uplinks", type=int, default=100_000)
    parser.add_argument("--meters", type=int, default=100)
    parser.add_argument("--batch", type=int, default=10)
    args = parser.parse_args()
    print(f"machine: {common.machine()}")
    print(f"{args.uplinks} CMi4110 uplinks of {args.meters} meters, 1 dead letter per 1000")
    records = cmi4110_records(args.uplinks, meters=args.meters)
    dead = letters(args.uplinks // 1000)
    with tempfile.TemporaryDirectory() as tmp:
        old, new = Path(tmp, "old.db"), Path(tmp, "new.db")
        started = time.perf_counter()
        write_legacy_file(old, records, dead, batch=args.batch)
        old_s = time.perf_counter() - started
        store = SQLiteStore(new)
        started = time.perf_counter()
        for i in range(0, len(records), args.batch):
            store.write_uplinks(records[i : i + args.batch])
        store.write_dead_letters(dead)
        new_s = time.perf_counter() - started
        store.close()
        old_b, new_b = size(old), size(new)
    n = args.uplinks
    print(f"old layout (anchor): {old_b / n:7.0f} bytes/uplink  ({old_b / 1e6:.1f} MB)")
    print(f"compact schema:      {new_b / n:7.0f} bytes/uplink  ({new_b / 1e6:.1f} MB)"
          f"  = {new_b / old_b:.2f}x the anchor (target <= 300 bytes)")  # fmt: skip
    print(f"write, {args.batch} uplinks a transaction: old layout {old_s / n * 1e6:.0f} µs/uplink,"
          f" store {new_s / n * 1e6:.0f} µs/uplink = {new_s / old_s:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
