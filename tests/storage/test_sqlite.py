"""The SQLite store's own behaviour: a file of the first layout (tag JSON on every field row) opens,
migrated, and answers exactly as one written in the compact layout; merges; summaries."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from decoders.core import Reading
from storage.base import RecordError, StoreError
from storage.schema import Point, UplinkRecord
from storage.sqlite import SCHEMA_VERSION, SQLiteStore
from tests.storage.legacy_sqlite import write_legacy_file
from tests.storage.records import T0, at, dead_letter, record

pytestmark = pytest.mark.integration


def uplinks() -> list[UplinkRecord]:
    out = [record("em-1", m) for m in range(0, 60, 15)]
    out += [
        record(
            "wm-7",
            m,
            {"volume_m3": 12.5 + m, "battery_pct": 90 - m, "alarm_leak": m == 30},
            medium="water",
            site={"site": "bernau", "zone": "nord"},
            extra_readings=(Reading({"volume_m3": 11.0 + m}, at(m - 120)),),
        )
        for m in range(0, 60, 10)
    ]
    out.append(record("hm-3", 5, {"energy_heat_kwh": 2616752.0, "meter_serial": "66031129"},
                      medium="heat"))  # fmt: skip
    out.append(record("sim-1", 7, simulated=True))
    return out


def consumption() -> list[Point]:
    tags = {"device": "wm-7", "interval": "day", "medium": "water", "meter": "M-1"}
    return [Point("consumption", tags, {"volume_m3": 4.25}, T0)]


def letters() -> list:  # type: ignore[type-arg]
    return [dead_letter(1), dead_letter(2, "unknown_device", device="x"), dead_letter(3)]


@pytest.mark.parametrize("counters", [True, False], ids=["v1", "v1-before-counters"])
def test_a_first_layout_file_is_migrated_and_answers_as_a_new_one(
    tmp_path: Path, counters: bool
) -> None:
    old_path, new_path = tmp_path / "old.db", tmp_path / "new.db"
    write_legacy_file(old_path, uplinks(), letters(), consumption(), counters=counters)
    with sqlite3.connect(old_path) as db:
        legacy_points = sorted(db.execute("SELECT * FROM points").fetchall())
    fresh = SQLiteStore(new_path)
    fresh.write_uplinks(uplinks())
    fresh.write_dead_letters(letters())
    fresh.write_points(consumption())

    migrated = SQLiteStore(old_path)
    assert migrated.devices() == fresh.devices()
    assert [d.device for d in migrated.devices()] == ["em-1", "hm-3", "wm-7"]
    wm7 = migrated.device("wm-7")
    assert wm7 is not None and wm7.battery_pct == 40 and wm7.last_reading["alarm_leak"] is False
    assert dict(wm7.tags) == {"site": "bernau", "zone": "nord"}
    for device in ("em-1", "wm-7", "hm-3"):
        window = (at(-1000), at(1000))
        assert migrated.readings(device, *window) == fresh.readings(device, *window)
        for name in ("volume_m3", "energy_import_kwh", "power_w"):
            a, b = migrated.series(name, *window), fresh.series(name, *window)
            assert a.keys() == b.keys()
            for key in a:
                assert np.array_equal(a[key].times_ns, b[key].times_ns)
                assert np.array_equal(a[key].values, b[key].values)
    assert migrated.readings("wm-7", at(-1000), at(1000), ["volume_m3"])[0].values == {
        "volume_m3": 11.0
    }
    assert migrated.raw_uplinks() == fresh.raw_uplinks()
    assert len(migrated.raw_uplinks()) == 12
    assert migrated.dead_letters() == fresh.dead_letters()
    assert migrated.health().uplinks == 12
    assert migrated.health().dead_letters == {"not_json": 2, "unknown_device": 1}
    assert migrated.last_uplink_at("tts") == fresh.last_uplink_at("tts") == at(50)
    # the dedup keys came along: the same uplinks again are duplicates
    result = migrated.write_uplinks(uplinks())
    assert (result.written, result.duplicates) == (0, 12)
    migrated.close()
    fresh.close()

    with sqlite3.connect(old_path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        kinds = dict(db.execute("SELECT name, type FROM sqlite_master"))
        assert kinds["points"] == kinds["raw_uplinks"] == "view"
        assert not {"points_v1", "raw_uplinks_v1", "devices_v1", "counters_v1"} & set(kinds)
        # the view in the first layout's shape shows the very rows the old table held
        assert sorted(db.execute("SELECT * FROM points").fetchall()) == legacy_points
    reopened = SQLiteStore(old_path)  # opening again migrates nothing
    assert reopened.health().uplinks == 12
    reopened.close()


def test_same_instant_written_twice_merges_field_by_field(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    first = record("em-1", 0, {"energy_import_kwh": 1.0, "power_w": 5.0}, key="a")
    second = record("em-1", 0, {"power_w": 7.0, "battery_pct": 80.0}, key="b", f_cnt=1)
    store.write_uplinks([first, second])
    (row,) = store.readings("em-1", at(-1), at(1))
    assert row.values == {"energy_import_kwh": 1.0, "power_w": 7.0, "battery_pct": 80.0}
    summary = store.device("em-1")
    assert summary is not None and summary.last_reading == row.values
    assert summary.battery_pct == 80.0 and summary.uplinks == 2
    store.close()


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "n.db"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")

    with pytest.raises(StoreError, match="upgrade lorameter"):
        SQLiteStore(path)


def test_history_older_than_the_newest_reading_leaves_the_summary(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    store.write_uplinks([record("em-1", 30, {"energy_import_kwh": 9.0, "battery_pct": 50.0})])
    store.write_points([replace(p, time=at(0)) for p in record("em-1", 0, key="z").points])
    summary = store.device("em-1")
    assert summary is not None and summary.last_reading_at == at(30)
    assert summary.last_reading == {"energy_import_kwh": 9.0, "battery_pct": 50.0}
    store.delete_readings("em-1")
    summary = store.device("em-1")
    assert summary is not None and summary.last_reading_at is None and summary.battery_pct is None
    assert summary.rssi_dbm == -97.5  # radio points stay
    store.close()


def test_summaries_stay_exact_with_two_writers_on_one_file(tmp_path: Path) -> None:
    """A second process (``lorameter replay`` next to ``lorameter run``) writes the same file:
    the summaries one store keeps in memory are not reused after the other wrote."""
    one, two = SQLiteStore(tmp_path / "s.db"), SQLiteStore(tmp_path / "s.db")
    one.write_uplinks([record("em-1", 0)])
    two.write_uplinks([record("em-1", 15)])
    one.write_uplinks([record("em-1", 30)])
    for store in (one, two):
        summary = store.device("em-1")
        assert summary is not None and summary.uplinks == 3 and summary.last_f_cnt == 30
        assert summary.last_reading_at == at(30)
    one.close()
    two.close()


def test_a_failed_batch_leaves_no_trace_in_the_summaries(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    store.write_uplinks([record("em-1", 0)])
    bad = record("em-1", 15, {"energy_import_kwh": 2**70})  # beyond 64 bits: never storable
    with pytest.raises(RecordError):
        store.write_uplinks([record("em-1", 10, key="k10"), bad])
    store.write_uplinks([record("em-1", 20)])
    summary = store.device("em-1")
    assert summary is not None and summary.uplinks == 2 and summary.last_reading_at == at(20)
    assert store.health().uplinks == 2
    store.close()


def test_a_migration_that_fails_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    write_legacy_file(path, uplinks(), letters())
    with sqlite3.connect(path) as db:
        db.execute("UPDATE points SET tags = 'not json' WHERE device = 'wm-7' AND time_ns = ("
                   "SELECT max(time_ns) FROM points WHERE device = 'wm-7')")  # fmt: skip
        before = sorted(db.execute("SELECT * FROM points").fetchall())
    with pytest.raises(StoreError, match="left as it was"):
        SQLiteStore(path)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 0
        assert sorted(db.execute("SELECT * FROM points").fetchall()) == before
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
        assert "readings" not in tables and "points_v1" not in tables


def test_a_failed_batch_leaves_no_field_set_behind(tmp_path: Path) -> None:
    """Ids a rolled-back batch handed out are given again (here by another process writing the
    file): nothing may remember them."""
    store, other = SQLiteStore(tmp_path / "s.db"), SQLiteStore(tmp_path / "s.db")
    store.write_uplinks([record("em-1", 0)])
    with pytest.raises(RecordError):  # its field set is written before its values fail
        store.write_points([Point("electricity", {"device": "x-9"}, {"battery_pct": 2**70}, T0)])
    other.write_points([Point("electricity", {"device": "x-9"}, {"power_w": 3.0}, T0)])
    (row,) = store.readings("x-9", at(-1), at(1))
    assert row.values == {"power_w": 3.0}
    store.close()
    other.close()


def test_the_device_list_follows_writes_of_any_connection(tmp_path: Path) -> None:
    """The list is read whole once, then only the rows written since (their ``seq``)."""
    reader, writer = SQLiteStore(tmp_path / "s.db"), SQLiteStore(tmp_path / "s.db")
    writer.write_uplinks([record("em-1", 0)])
    assert [(d.device, d.uplinks) for d in reader.devices()] == [("em-1", 1)]
    writer.write_uplinks([record("em-0", 5), record("em-1", 15)])
    assert [(d.device, d.uplinks) for d in reader.devices()] == [("em-0", 1), ("em-1", 2)]
    writer.delete_readings("em-1")
    (_, em1) = reader.devices()
    assert em1.last_reading_at is None and em1.uplinks == 2
    reader.write_uplinks([record("em-2", 20)])
    assert [d.device for d in reader.devices()] == [d.device for d in writer.devices()]
    assert [d.device for d in reader.devices()] == ["em-0", "em-1", "em-2"]
    reader.close()
    writer.close()
