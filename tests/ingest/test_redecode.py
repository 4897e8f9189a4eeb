"""Redecode after a registry or decoder fix: dead letters become readings once, history again."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ingest.devices import parse_registry
from ingest.pipeline import Accepted, Pipeline
from ingest.redecode import redecode_dead_letters, redecode_raw
from storage import Store, open_store
from tests.helpers import tts_up

NOW = datetime(2025, 11, 20, 12, 0, tzinfo=UTC)
PULSES = bytes.fromhex("0175 5C 0367 0401 05C8 E8030000".replace(" ", ""))  # 1000 pulses


def pulse_registry(factor: float, decoder: str = "milesight_em300_di") -> Pipeline:
    entry = {"device": "pulse-1", "decoder": decoder, "medium": "water", "meter": "W-1"}
    if decoder == "milesight_em300_di":  # another decoder takes no pulse params
        entry["params"] = {"pulse_factor": factor, "pulse_unit": "l"}  # type: ignore[assignment]
    return Pipeline(parse_registry({"devices": [entry]}))


def pulse_uplink(n: int) -> bytes:
    return tts_up("pulse-1", PULSES, f_port=85, f_cnt=n, received_at=f"2025-11-20T10:{n:02d}:00Z")


@pytest.fixture
def store(store_url: str, spool_path: Path) -> Iterator[Store]:
    opened = open_store(store_url, spool_path=spool_path)
    yield opened
    opened.close()


def store_all(store: Store, pipeline: Pipeline, messages: list[bytes]) -> None:
    records, letters = [], []
    for message in messages:
        out = pipeline.process("v3/app/devices/pulse-1/up", message, NOW)
        if isinstance(out, Accepted):
            records.append(out.record)
        else:
            letters.append(out.letter)
    if records:
        store.write_uplinks(records)
    if letters:
        store.write_dead_letters(letters)
    settle(store)


def settle(store: Store) -> None:
    """InfluxDB's health counts what InfluxDB holds: send the spool first."""
    flush = getattr(store, "flush", None)
    if flush is not None:
        flush()


def volumes(store: Store) -> list[object]:
    rows = store.readings("pulse-1", datetime(2025, 11, 20, tzinfo=UTC), NOW)
    return [r.values.get("volume_m3") for r in rows]


def test_dead_letters_become_readings_once_after_a_registry_fix(store: Store) -> None:
    # Not in the registry yet: every uplink is a dead letter (unknown_device).
    store_all(store, Pipeline(), [pulse_uplink(n) for n in range(3)])
    store_all(store, Pipeline(), [b"not json"])
    assert dict(store.health().dead_letters) == {"unknown_device": 3, "not_json": 1}
    fixed = pulse_registry(10)
    report = redecode_dead_letters(store, fixed, reason="unknown_device")
    assert (report.examined, report.stored, dict(report.still)) == (3, 3, {})
    assert volumes(store) == [10.0, 10.0, 10.0]
    settle(store)
    assert dict(store.health().dead_letters) == {"not_json": 1}
    assert store.health().uplinks == 3
    again = redecode_dead_letters(store, fixed)
    assert (again.examined, again.stored, dict(again.still)) == (1, 0, {"not_json": 1})
    settle(store)
    assert store.health().uplinks == 3 and len(volumes(store)) == 3


def test_a_letter_whose_uplink_is_stored_already_is_only_removed(store: Store) -> None:
    fixed = pulse_registry(10)
    store_all(store, fixed, [pulse_uplink(1)])
    store_all(store, Pipeline(), [pulse_uplink(1)])  # the same uplink, dead-lettered elsewhere
    report = redecode_dead_letters(store, fixed, device="pulse-1")
    assert report.stored == 1
    settle(store)
    assert store.health().uplinks == 1 and dict(store.health().dead_letters) == {}


def test_raw_uplinks_decoded_again_replace_the_readings_idempotently(store: Store) -> None:
    store_all(store, pulse_registry(10), [pulse_uplink(n) for n in range(4)])
    assert volumes(store) == [10.0] * 4
    report = redecode_raw(store, pulse_registry(2.5), "pulse-1")
    assert report.replaced and report.uplinks == 4
    assert volumes(store) == [2.5] * 4
    assert redecode_raw(store, pulse_registry(2.5), "pulse-1").replaced
    assert volumes(store) == [2.5] * 4
    settle(store)
    assert store.health().uplinks == 4


def test_raw_redecode_changes_nothing_when_an_uplink_no_longer_decodes(store: Store) -> None:
    store_all(store, pulse_registry(10), [pulse_uplink(n) for n in range(2)])
    report = redecode_raw(store, pulse_registry(10, decoder="elv_lw_esi"), "pulse-1")
    assert not report.replaced and report.failed["decode_error"] == 2
    assert "elv_lw_esi" in report.examples[0]
    assert volumes(store) == [10.0, 10.0]


KAMSTRUP = (  # AES mode 5 (key 000102..0F), 12.345 m³: decoders/devices/wmbus_bridge.py
    "2E442D2C785634121B167A2B002005DD336913BCB1302F244F3659210A4DACC4E68A3064E0533242BE21BF5A7A24B9"
)
BRIDGE = {"device": "bridge-1", "decoder": "wmbus_bridge"}


def test_a_meter_added_from_the_unregistered_list_gets_its_history_from_the_bridge(
    store: Store,
) -> None:
    uplinks = [
        tts_up("bridge-1", bytes.fromhex(KAMSTRUP), f_port=1, f_cnt=n, received_at=f"{day}Z")
        for n, day in enumerate(("2025-11-18T10:00:00", "2025-11-19T10:00:00"), 1)
    ]
    store_all(store, Pipeline(parse_registry({"devices": [BRIDGE]})), uplinks)
    assert [m.meter for m in store.unregistered_meters()] == ["KAM-12345678-1B-16"]
    assert store.device("wm-0815") is None
    meter = {
        "device": "wm-0815",
        "wmbus": "KAM-12345678-1B-16",
        "medium": "water",
        "params": {"aes_key": "000102030405060708090A0B0C0D0E0F"},
    }
    report = redecode_raw(store, Pipeline(parse_registry({"devices": [BRIDGE, meter]})), "bridge-1")
    assert (report.replaced, report.uplinks, dict(report.failed)) == (True, 2, {})
    settle(store)
    rows = store.readings("wm-0815", datetime(2025, 11, 1, tzinfo=UTC), NOW)
    assert [(r.time.day, r.values["volume_m3"]) for r in rows] == [(18, 12.345), (19, 12.345)]
