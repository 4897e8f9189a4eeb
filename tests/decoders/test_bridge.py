"""Wireless M-Bus bridge: several meters per uplink, each by its address and with its own key."""

from __future__ import annotations

import pytest

from decoders.core import DecodeError, Uplink, meter_key, readings_to_json, validate_params
from decoders.registry import by_id

SENSUS = "1844AE4C4455223368077A55000000041389E20100023B0000"
KAMSTRUP = (
    "2E442D2C785634121B167A2B002005DD336913BCB1302F244F3659210A4DACC4E68A3064E0533242BE21BF5A7A24B9"
)
KEY = "000102030405060708090A0B0C0D0E0F"
# link layer: a KAM repeater 11111111; long header (CI 72): the SEN meter 22222222, 1 m³
LONG = "1C442D2C111111110107 72 22222222AE4C6807 01 00 0000 0413E8030000"
HCA = "0E44AE4C4455223368087A55000000"  # a heat cost allocator: no field of ours


def decode(
    hex_text: str, meters: dict[str, dict[str, object]] | None = None
) -> list[dict[str, object]]:
    decoder = by_id("wmbus_bridge")
    assert decoder is not None
    params = {} if meters is None else {"meters": meters}
    uplink = Uplink(1, bytes.fromhex(hex_text.replace(" ", "")), params=params)
    return readings_to_json(decoder.readings(uplink))


def test_one_uplink_yields_readings_of_each_meter_with_its_own_key() -> None:
    kam = meter_key("KAM", "12345678", 0x1B, 0x16)
    got = decode(SENSUS + KAMSTRUP + LONG, {kam: {"aes_key": KEY}})
    assert [r["meter"] for r in got] == [
        "SEN-33225544-68-07", "KAM-12345678-1B-16", "SEN-22222222-68-07",
    ]  # fmt: skip
    assert [r["volume_m3"] for r in got] == [123.529, 12.345, 1.0]
    assert all("error" not in r for r in got)


def test_a_meter_without_key_is_seen_and_the_others_are_read() -> None:
    got = decode(KAMSTRUP + SENSUS + HCA)
    assert got[0]["meter"] == "KAM-12345678-1B-16" and "aes_key" in str(got[0]["error"])
    assert got[0].keys() == {"time", "meter", "error"}
    assert got[1]["volume_m3"] == 123.529
    assert got[2] == {
        "time": None,
        "meter": "SEN-33225544-68-08",
        "error": "device type 0x08: no readings",
    }


def test_wrong_key_is_that_meter_s_error() -> None:
    got = decode(KAMSTRUP, {"KAM-12345678-1B-16": {"aes_key": "FF" * 16}})
    assert "wrong key" in str(got[0]["error"])


@pytest.mark.parametrize(
    ("hex_text", "meters", "message"),
    [
        (SENSUS + "2E44", None, "past the payload"),
        (SENSUS[:-2], None, "past the payload"),
        ("", None, "no wM-Bus frame"),
        (SENSUS, {"x": "not a mapping"}, "meters must map"),
    ],
)
def test_broken_uplinks_are_rejected(hex_text: str, meters: object, message: str) -> None:
    decoder = by_id("wmbus_bridge")
    assert decoder is not None
    params = {} if meters is None else {"meters": meters}
    with pytest.raises(DecodeError, match=message) as info:
        decoder.readings(Uplink(1, bytes.fromhex(hex_text), params=params))
    assert info.value.__cause__ is None


def test_registry_can_list_meters_in_the_bridge_params() -> None:
    decoder = by_id("wmbus_bridge")
    assert decoder is not None
    listed = {"meters": {"KAM-12345678-1B-16": {"aes_key": KEY}}}
    assert validate_params(decoder, listed) == listed


def imst(port: int, hex_text: str, meters: dict[str, dict[str, str]]) -> list[dict[str, object]]:
    decoder = by_id("imst_range_extender")
    assert decoder is not None
    uplink = Uplink(port, bytes.fromhex(hex_text.replace(" ", "")), params={"meters": meters})
    return readings_to_json(decoder.readings(uplink))


def test_imst_range_extender_dates_each_telegram_by_its_own_receive_time() -> None:
    kam = meter_key("KAM", "12345678", 0x1B, 0x16)
    # 2020-05-26 05:54:28 and 2021-09-01 00:00:00 UTC, each before its telegram
    got = imst(4, "14AFCC5E" + SENSUS + "80C22E61" + KAMSTRUP, {kam: {"aes_key": KEY}})
    assert [(r["meter"], r["time"], r["volume_m3"]) for r in got] == [
        ("SEN-33225544-68-07", "2020-05-26T05:54:28Z", 123.529),
        ("KAM-12345678-1B-16", "2021-09-01T00:00:00Z", 12.345),
    ]
    without_key = imst(68, "00" + "80C22E61" + KAMSTRUP, {})
    assert without_key[0]["meter"] == kam and "aes_key" in str(without_key[0]["error"])
    assert without_key[0]["time"] == "2021-09-01T00:00:00Z"  # seen then, though not read


def test_imst_range_extender_rejects_a_telegram_cut_by_segmentation() -> None:
    with pytest.raises(DecodeError, match="runs past the payload"):
        imst(68, "01" + "14AFCC5E" + SENSUS + "80C22E61" + KAMSTRUP[:40], {})


def test_kamstrup_c1_full_and_compact_frames_behind_a_bridge() -> None:
    """Published Kamstrup heat meter frames (see test_oms): the full frame (CI 8D ELL around
    CI 78) and its compact frame (CI 79) decode to the same readings when the meter's registry
    params give the full frame's layout; without it the compact frame is an error reading."""
    from tests.decoders.test_oms import COMPACT, FULL, LAYOUT

    key = "KAM-60723506-19-0C"
    both = (FULL + COMPACT).hex()
    got = decode(both, {key: {"compact_formats": [LAYOUT]}})
    assert len(got) == 4 and got[:2] == got[2:]
    assert got[0]["meter"] == key
    assert got[0]["energy_heat_kwh"] == 25879.0 and got[0]["volume_m3"] == 644.33
    assert got[1]["time"] == "2015-08-31T00:00:00Z" and got[1]["energy_heat_kwh"] == 25847.0
    without = decode(both)
    assert without[:2] == got[:2]
    assert "no compact_formats entry" in str(without[2]["error"])
