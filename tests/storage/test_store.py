"""The store contract, run against each backend (a fresh SQLite file, a fresh InfluxDB database)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from decoders.core import Reading, Value
from storage import Store, open_store
from storage.base import UnregisteredMeter
from storage.schema import MeterSighting, Point, UplinkRecord, to_ns
from tests.storage.records import at, dead_letter, record

pytestmark = pytest.mark.integration

# Device ids a ChirpStack device name or a TTS id could carry, and ones built to break quoting.
AWKWARD_IDS = [
    "meter 1",
    "a,b",
    "k=v",
    'q"uote',
    "it's",
    "zähler-ü-€-日本",
    "back\\slash",
    "x' OR device =~ /.*/ OR device='",
    '"; DROP DATABASE x; --',
]


@pytest.fixture
def store(store_url: str, spool_path: Path) -> Iterator[Store]:
    opened = open_store(store_url, spool_path=spool_path)
    yield opened
    opened.close()


def test_empty_store(store: Store) -> None:
    assert store.devices() == []
    assert store.device("em-1") is None
    assert store.readings("em-1", at(-60), at(60)) == []
    assert store.raw_uplinks() == []
    assert store.dead_letters() == []
    health = store.health()
    assert health.ok, health.detail
    assert (health.uplinks, dict(health.dead_letters)) == (0, {})


def test_device_summary(store: Store) -> None:
    result = store.write_uplinks(
        [
            record("em-1", 0, {"energy_import_kwh": 10.0, "battery_pct": 90.0}),
            record("em-1", 15, {"energy_import_kwh": 11.5, "power_w": 400.0}, rssi=-80.0, snr=9.5),
            record("wm-1", 5, {"volume_m3": 3.25}, medium="water", meter="W-7", decoder="w"),
        ]
    )
    assert (result.written, result.duplicates) == (3, 0)
    em, wm = store.devices()
    assert (em.device, wm.device) == ("em-1", "wm-1")
    assert (em.first_seen, em.last_seen, em.uplinks, em.last_f_cnt) == (at(0), at(15), 2, 15)
    assert (em.medium, em.meter, em.decoder, em.dev_eui) == (
        "electricity",
        "M-1",
        "acme_em300",
        "70b3d57ed0000001",
    )
    assert dict(em.last_reading) == {"energy_import_kwh": 11.5, "power_w": 400.0}
    assert em.last_reading_at == at(15)
    assert em.battery_pct == 90.0  # the last battery value, from an earlier reading
    assert em.battery_v is None
    assert (em.rssi_dbm, em.snr_db) == (-80.0, 9.5)
    assert (wm.medium, wm.meter, wm.decoder, wm.uplinks) == ("water", "W-7", "w", 1)
    assert dict(wm.last_reading) == {"volume_m3": 3.25}
    assert store.device("wm-1") == wm
    assert store.device("em-1") == em
    assert store.device("em-2") is None


def test_duplicates_are_detected_and_not_stored_twice(store: Store) -> None:
    batch = [record("em-1", m) for m in (0, 15, 30)]
    assert store.write_uplinks(batch).written == 3
    again = store.write_uplinks([*batch, record("em-1", 45)])
    assert (again.written, again.duplicates) == (1, 3)
    within = store.write_uplinks([record("em-1", 60), record("em-1", 60)])
    assert (within.written, within.duplicates) == (1, 1)
    summary = store.device("em-1")
    assert summary is not None and summary.uplinks == 5
    assert len(store.readings("em-1", at(0), at(61))) == 5
    assert len(store.raw_uplinks("em-1")) == 5
    assert store.health().uplinks == 5


def bridge_uplink(minute: float, *sightings: tuple[str, str], bridge: str = "br-1") -> UplinkRecord:
    """A bridge's uplink carrying unregistered meters: (address key, error) each."""
    seen = tuple(
        MeterSighting(
            meter=key,
            bridge=bridge,
            seen_at=at(minute),
            manufacturer=key[:3],
            version=int(key[-5:-3], 16),
            device_type=int(key[-2:], 16),
            medium="water",
            error=error,
        )
        for key, error in sightings
    )
    return replace(record(bridge, minute, medium="water", decoder="wmbus_bridge"), sightings=seen)


KAM, SEN = "KAM-12345678-1B-16", "SEN-33225544-68-07"


def test_unregistered_meters_are_counted_once_per_uplink_with_their_last_error(
    store: Store,
) -> None:
    assert store.unregistered_meters() == []
    no_key = "the device registry gives no aes_key"
    first = [bridge_uplink(0, (KAM, no_key), (SEN, "")), bridge_uplink(15, (KAM, no_key))]
    store.write_uplinks(first)
    store.write_uplinks([*first, bridge_uplink(30, (KAM, ""))])  # redelivered: counted once
    store.write_uplinks([bridge_uplink(10, (KAM, "wrong key"))])  # late: not the last error
    store.write_uplinks([bridge_uplink(20, (KAM, no_key), bridge="br-2")])
    assert store.unregistered_meters() == [
        UnregisteredMeter(KAM, "br-1", "KAM", 0x1B, 0x16, "water", at(0), at(30), 4, ""),
        UnregisteredMeter(KAM, "br-2", "KAM", 0x1B, 0x16, "water", at(20), at(20), 1, no_key),
        UnregisteredMeter(SEN, "br-1", "SEN", 0x68, 0x07, "water", at(0), at(0), 1, ""),
    ]


def test_simulated_uplinks_record_no_unregistered_meters(store: Store) -> None:
    simulated = bridge_uplink(0, (KAM, ""))
    store.write_uplinks([replace(simulated, raw=replace(simulated.raw, simulated=True))])
    assert store.unregistered_meters() == []


def test_duplicates_are_detected_after_reopening(store_url: str, spool_path: Path) -> None:
    first = open_store(store_url, spool_path=spool_path)
    first.write_uplinks([record("em-1", 0), record("em-1", 15)])
    first.close()
    second = open_store(store_url, spool_path=spool_path)
    try:
        result = second.write_uplinks([record("em-1", 0), record("em-1", 30)])
        assert (result.written, result.duplicates) == (1, 1)
        assert len(second.raw_uplinks()) == 3
    finally:
        second.close()


def test_simulated_uplinks_are_kept_raw_but_make_no_readings(store: Store) -> None:
    store.write_uplinks([record("sim-1", 0, simulated=True), record("em-1", 1)])
    assert [d.device for d in store.devices()] == ["em-1"]
    assert store.readings("sim-1", at(-1), at(10)) == []
    raws = store.raw_uplinks("sim-1")
    assert [(r.device, r.simulated) for r in raws] == [("sim-1", True)]
    assert store.health().uplinks == 2
    assert store.write_uplinks([record("sim-1", 0, simulated=True)]).duplicates == 1


def test_readings_time_range_fields_and_limit(store: Store) -> None:
    store.write_uplinks([record("em-1", m) for m in range(0, 60, 10)])
    store.write_uplinks([record("em-2", 5)])  # another device never leaks in
    rows = store.readings("em-1", at(10), at(40))
    assert [r.time for r in rows] == [at(10), at(20), at(30)]  # [start, end): 40 is out
    assert all(r.measurement == "electricity" for r in rows)
    assert dict(rows[0].values) == {"energy_import_kwh": 110.0, "power_w": 1200.5}
    only = store.readings("em-1", at(0), at(60), fields=["energy_import_kwh"])
    assert [dict(r.values) for r in only] == [
        {"energy_import_kwh": 100.0 + m} for m in range(0, 60, 10)
    ]
    assert store.readings("em-1", at(0), at(60), fields=["volume_m3"]) == []
    assert [r.time for r in store.readings("em-1", at(0), at(60), limit=2)] == [at(0), at(10)]
    assert store.readings("em-1", at(0), at(60), limit=0) == []


def test_reading_table_is_the_readings_as_columns(store: Store) -> None:
    store.write_uplinks(
        [
            record("em-1", 10, {"energy_import_kwh": 2.0}),
            record("em-1", 0, {"energy_import_kwh": 1.0}, key="e0"),
            record("em-1", 0, {"volume_m3": 3.5}, medium="water", key="w0"),
            record("em-1", 20, {"energy_import_kwh": 3.0, "alarm_tamper": True}),
            record("em-2", 5, {"energy_import_kwh": 9.0}),
        ]
    )
    table = store.reading_table("em-1", at(0), at(30))
    # oldest first, and at one instant in the order of the measurement's name
    assert table.times_ns.tolist() == [to_ns(at(m)) for m in (0, 0, 10, 20)]
    assert list(table.measurements) == ["electricity", "water", "electricity", "electricity"]
    assert [dict(v) for v in table.values] == [
        {"energy_import_kwh": 1.0},
        {"volume_m3": 3.5},
        {"energy_import_kwh": 2.0},
        {"energy_import_kwh": 3.0, "alarm_tamper": True},
    ]
    assert type(table.values[3]["alarm_tamper"]) is bool
    assert table.rows() == store.readings("em-1", at(0), at(30))
    assert [r.time for r in table.rows()] == [at(0), at(0), at(10), at(20)]
    first = store.reading_table("em-1", at(0), at(30), limit=3)
    assert (first.times_ns.tolist(), list(first.measurements)) == (
        table.times_ns[:3].tolist(),
        ["electricity", "water", "electricity"],
    )
    water = store.reading_table("em-1", at(0), at(30), fields=["volume_m3"])
    assert (list(water.measurements), [dict(v) for v in water.values]) == (
        ["water"],
        [{"volume_m3": 3.5}],
    )
    assert len(store.reading_table("em-1", at(0), at(30), limit=0)) == 0
    assert len(store.reading_table("nobody", at(0), at(30))) == 0


def test_readings_of_a_field_name_no_struct_can_have(store: Store) -> None:
    # written as they are (a re-decode, or another writer); read the general way
    fields: dict[str, Value] = {"2nd_tariff_kwh": 1.5, "energy_import_kwh": 5.0}
    store.write_points([Point("electricity", {"device": "em-1"}, fields, at(m)) for m in (0, 10)])
    table = store.reading_table("em-1", at(0), at(20))
    assert table.times_ns.tolist() == [to_ns(at(0)), to_ns(at(10))]
    assert [dict(v) for v in table.values] == [fields, fields]


def test_readings_with_meter_timestamps_are_grouped_per_time(store: Store) -> None:
    # A meter's own history (two stored readings) in the same uplink as the current value.
    history = (
        Reading({"energy_import_kwh": 98.0}, at(-30)),
        Reading({"energy_import_kwh": 99.0}, at(-15)),
    )
    store.write_uplinks([record("em-1", 0, {"energy_import_kwh": 100.0}, extra_readings=history)])
    rows = store.readings("em-1", at(-60), at(60))
    assert [(r.time, dict(r.values)) for r in rows] == [
        (at(-30), {"energy_import_kwh": 98.0}),
        (at(-15), {"energy_import_kwh": 99.0}),
        (at(0), {"energy_import_kwh": 100.0}),
    ]


def test_value_types_round_trip(store: Store) -> None:
    values: dict[str, Value] = {
        "energy_import_kwh": 1234.567,
        "power_w": 95,  # an int for a float field: stays numerically equal
        "alarm_tamper": True,
        "valve_open": False,
        "error_flags": 2**40 + 3,
        "meter_serial": 'SN 00,12="x" ü',
    }
    store.write_uplinks([record("em-1", 0, values)])
    (row,) = store.readings("em-1", at(0), at(1))
    assert dict(row.values) == values
    for name in ("alarm_tamper", "valve_open", "error_flags", "meter_serial", "energy_import_kwh"):
        assert type(row.values[name]) is type(values[name]), name


def test_raw_uplinks_for_redecoding(store: Store) -> None:
    payloads = [bytes([i]) * (i + 1) + b"\x00\xff\n\"'" for i in range(4)]
    store.write_uplinks([record("em-1", m, payload=p) for m, p in enumerate(payloads)])
    store.write_uplinks([record("em-2", 10)])
    raws = store.raw_uplinks("em-1")
    assert [r.payload for r in raws] == payloads
    assert [r.received_at for r in raws] == [at(m) for m in range(4)]
    first = raws[0]
    assert (first.f_port, first.f_cnt, first.network, first.decoder, first.medium, first.meter) == (
        2,
        0,
        "tts",
        "acme_em300",
        "electricity",
        "M-1",
    )
    assert first.dedup_key == record("em-1", 0).raw.dedup_key
    assert [r.f_cnt for r in store.raw_uplinks("em-1", start=at(2))] == [2, 3]
    assert len(store.raw_uplinks(limit=3)) == 3
    assert {r.device for r in store.raw_uplinks()} == {"em-1", "em-2"}


def test_dead_letters_newest_first_with_raw_bytes(store: Store) -> None:
    store.write_dead_letters(
        [
            dead_letter(0),
            dead_letter(1, "bad_base64", detail="line one\nline two", raw=b"\x00\x01"),
            dead_letter(2, "unknown_device", device="ghost 1", topic="v3/a/devices/ghost/up"),
        ]
    )
    store.write_dead_letters([dead_letter(2)])  # same instant as another: both are kept
    letters = store.dead_letters()
    assert len(letters) == 4
    assert [d.received_at for d in letters] == [at(2), at(2), at(1), at(0)]
    bad = letters[2]
    assert (bad.reason, bad.detail, bad.raw) == ("bad_base64", "line one\nline two", b"\x00\x01")
    assert {d.device for d in letters} == {"", "ghost 1"}
    assert len(store.dead_letters(limit=2)) == 2
    assert dict(store.health().dead_letters) == {
        "not_json": 2,
        "bad_base64": 1,
        "unknown_device": 1,
    }


@pytest.mark.parametrize("device", AWKWARD_IDS)
def test_awkward_device_ids_round_trip(store: Store, device: str) -> None:
    store.write_uplinks([record(device, 0), record(device, 10), record("plain", 5)])
    summary = store.device(device)
    assert summary is not None
    assert (summary.device, summary.uplinks) == (device, 2)
    assert [d.device for d in store.devices()] == sorted([device, "plain"])
    assert [r.time for r in store.readings(device, at(0), at(60))] == [at(0), at(10)]
    assert [r.device for r in store.raw_uplinks(device)] == [device, device]


def test_site_tags_do_not_leak_into_values(store: Store) -> None:
    site = {"site": "Bernau Nord", "building": "B,3"}
    store.write_uplinks([record("em-1", 0, {"power_w": 5.0}, site=site)])
    (row,) = store.readings("em-1", at(0), at(1))
    assert dict(row.values) == {"power_w": 5.0}
    summary = store.device("em-1")
    assert summary is not None and dict(summary.last_reading) == {"power_w": 5.0}


def test_series_reads_one_field_with_the_neighbours_of_the_window(store: Store) -> None:
    store.write_uplinks(
        [
            record("em-1", m, {"energy_import_kwh": 100.0 + m, "power_w": 5.0})
            for m in range(0, 120, 15)
        ]
        + [record("wm-1", 30, {"volume_m3": 7.5}, medium="water", key="w")]
    )
    got = store.series("energy_import_kwh", at(40), at(70))
    assert set(got) == {"em-1"}  # wm-1 has no such field
    # 45 and 60 inside, 30 before and 75 after: what interpolation at the bounds needs.
    assert got["em-1"].times_ns.tolist() == [to_ns(at(m)) for m in (30, 45, 60, 75)]
    assert got["em-1"].values.tolist() == [130.0, 145.0, 160.0, 175.0]
    assert got["em-1"].times_ns.dtype == np.int64
    only = store.series("energy_import_kwh", at(40), at(70), devices=["wm-1", "nobody"])
    assert only == {}
    gauges = store.series("power_w", at(0), at(200), devices=["em-1"])
    assert len(gauges["em-1"]) == 8
    water = store.series("volume_m3", at(0), at(10), medium="water")
    assert water["wm-1"].values.tolist() == [7.5]  # only the neighbour after the window
    assert store.series("volume_m3", at(0), at(10), medium="heat") == {}


def test_series_of_many_devices_in_one_call(store: Store) -> None:
    devices = [f"m-{i:03d}" for i in range(150)]  # more than a query names one by one
    store.write_uplinks(
        [
            record(d, m, {"volume_m3": i + m / 60}, medium="water")
            for i, d in enumerate(devices)
            for m in (0, 60)
        ]
    )
    got = store.series("volume_m3", at(0), at(60), devices=devices[::2])
    assert sorted(got) == devices[::2]
    assert got["m-004"].values.tolist() == [4.0, 5.0]


def test_site_tags_are_in_the_device_summary(store: Store) -> None:
    store.write_uplinks([record("em-1", 0, site={"site": "Bernau Nord"})])
    summary = store.device("em-1")
    assert summary is not None and dict(summary.tags) == {"site": "Bernau Nord"}


def test_dead_letters_found_by_reason_and_device_then_deleted(store: Store) -> None:
    store.write_dead_letters(
        [
            dead_letter(0),
            dead_letter(1, "unknown_device", device="ghost 1"),
            dead_letter(2, "unknown_device", device="ghost 2"),
            dead_letter(2, "unknown_device", device="ghost 1"),  # same instant as the one before
        ]
    )
    found = store.find_dead_letters(reason="unknown_device")
    assert [(f.letter.device, f.letter.received_at) for f in found] == [
        ("ghost 1", at(1)),
        ("ghost 2", at(2)),
        ("ghost 1", at(2)),
    ]
    assert len({f.key for f in found}) == 3
    ghost = store.find_dead_letters(device="ghost 1")
    assert [f.letter.received_at for f in ghost] == [at(1), at(2)]
    page = store.find_dead_letters(reason="unknown_device", limit=1)
    assert store.find_dead_letters(reason="unknown_device", after=page[0].key, limit=5) == found[1:]
    store.delete_dead_letters([f.key for f in ghost])
    left = store.find_dead_letters()
    assert [(f.letter.reason, f.letter.device) for f in left] == [
        ("not_json", ""),
        ("unknown_device", "ghost 2"),
    ]
    assert dict(store.health().dead_letters) == {"not_json": 1, "unknown_device": 1}


def test_readings_deleted_and_rewritten_for_one_device(store: Store) -> None:
    store.write_uplinks([record("em-1", m) for m in range(3)] + [record("em-2", 1)])
    store.delete_readings("em-1")
    assert store.readings("em-1", at(0), at(60)) == []
    assert len(store.readings("em-2", at(0), at(60))) == 1
    assert len(store.raw_uplinks("em-1")) == 3  # the raw uplinks stay, to decode again
    again = record("em-1", 1, {"energy_import_kwh": 7.5})
    store.write_points([p for p in again.points if p.measurement != "radio"])
    store.write_points([p for p in again.points if p.measurement != "radio"])  # idempotent
    (row,) = store.readings("em-1", at(0), at(60))
    assert (row.time, dict(row.values)) == (at(1), {"energy_import_kwh": 7.5})


def test_last_uplink_at_is_the_newest_receive_time_per_network(store: Store) -> None:
    assert store.last_uplink_at("tts") is None
    store.write_uplinks([record("em-1", 30), record("em-1", 5), record("wm-1", 20)])
    assert store.last_uplink_at("tts") == at(30)
    assert store.last_uplink_at("chirpstack") is None
