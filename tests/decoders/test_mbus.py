"""EN 13757-3 record parser: encodings, VIF families, date/time types, registers, errors."""

from __future__ import annotations

import struct
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from decoders.core import DecodeError
from decoders.mbus import Function, Record, parse_records, to_values


def one(hex_: str) -> Record:
    records = parse_records(bytes.fromhex(hex_.replace(" ", "")))
    assert len(records) == 1, records
    return records[0]


@pytest.mark.parametrize(
    ("hex_", "quantity", "unit", "value"),
    [
        ("00 06", "energy", "Wh", None),  # no data
        ("01 FD17 05", "error_flags", "", 5),  # int8, unsigned flags
        ("02 5A 38FF", "flow_temp", "°C", -20.0),  # int16, signed (type B)
        ("03 13 40E201", "volume", "m3", 123.456),  # int24
        ("04 06 10270000", "energy", "Wh", 10_000_000),  # int32, kWh
        ("06 03 010000000000", "energy", "Wh", 1),  # int48
        ("07 16 0100000000000000", "volume", "m3", 1),  # int64
        ("09 5B 45", "flow_temp", "°C", 45),  # BCD2
        ("0A 5E 3412", "return_temp", "°C", 123.4),  # BCD4
        ("0B 2B 563412", "power", "W", 123456),  # BCD6
        ("0C 06 78563412", "energy", "Wh", 12_345_678_000),  # BCD8
        ("0E 13 785634120000", "volume", "m3", 12345.678),  # BCD12
        ("0A 5A 23F1", "flow_temp", "°C", -12.3),  # negative BCD (F in the top nibble)
        ("0D 78 04 34333231", "fabrication_no", "", "1234"),  # variable length, ASCII reversed
        ("0D 13 C2 3412", "volume", "m3", 1.234),  # variable length BCD
    ],
)
def test_data_field_codings(hex_: str, quantity: str, unit: str, value: object) -> None:
    record = one(hex_)
    assert (record.quantity, record.unit) == (quantity, unit)
    assert record.value == (pytest.approx(value) if isinstance(value, float) else value)


def test_real32() -> None:
    record = one("05 2E" + struct.pack("<f", 1.5).hex())
    assert (record.quantity, record.value) == ("power", 1500.0)


@pytest.mark.parametrize(
    ("hex_", "quantity", "unit", "value"),
    [
        ("04 0E 02000000", "energy", "J", 2_000_000),  # MJ
        ("04 1B 05000000", "mass", "kg", 5),
        ("02 22 0A00", "on_time", "s", 36000),  # hours
        ("02 26 0200", "operating_time", "s", 7200),
        ("02 33 0A00", "power", "J/h", 10000),
        ("02 46 0A00", "volume_flow", "m3/min", 1.0),
        ("02 4E 0A00", "volume_flow", "m3/s", 0.01),
        ("02 53 0A00", "mass_flow", "kg/h", 10),
        ("02 61 F401", "temp_diff", "K", 5.0),
        ("02 66 C800", "external_temp", "°C", 20.0),
        ("02 6B 0300", "pressure", "bar", 3),
        ("0C 79 78563412", "identification", "", "12345678"),
        ("07 79 78563412A5114004", "identification", "", "12345678"),
        ("01 7A 05", "bus_address", "", 5),
        ("04 FB00 0A000000", "energy", "Wh", 1_000_000),  # 0.1 MWh steps
        ("04 FB0D 02000000", "energy", "cal", 2_000_000),  # MCal
        ("04 FB08 03000000", "energy", "J", 300_000_000),  # 0.1 GJ steps
        ("02 FD48 FE08", "voltage", "V", 230.2),
        ("01 FD0B 07", "parameter_set", "", 7),
        ("04 93 75 0A000000", "volume", "m3", 0.001),  # VIFE 0x75: 10^-1 correction
    ],
)
def test_vif_families(hex_: str, quantity: str, unit: str, value: object) -> None:
    record = one(hex_)
    assert (record.quantity, record.unit) == (quantity, unit)
    assert record.value == (pytest.approx(value) if isinstance(value, float) else value)


def test_date_time_type_f_and_g() -> None:
    # type F 2024-03-15 12:34 (minute, hour, day+year-low, month+year-high)
    assert one("04 6D 220C0F33").value == datetime(2024, 3, 15, 12, 34)
    assert one("02 6C 7F2C").value == datetime(2019, 12, 31)  # type G
    flagged = one("04 6D A20C0F33")  # IV bit in the minute byte
    assert flagged.invalid
    assert flagged.value is None
    none = one("02 6C FFFF")
    assert none.invalid
    assert none.value is None
    assert one("06 6D 1E220C0F3300").value == datetime(2024, 3, 15, 12, 34, 30)  # type I


def test_registers_storage_tariff_subunit_function() -> None:
    record = one("C4 5A 06 01000000")
    assert (record.storage, record.tariff, record.subunit) == (21, 1, 1)
    assert one("44 06 01000000").storage == 1
    assert one("84 10 06 01000000").tariff == 1
    assert one("14 3B 01000000").function is Function.MAXIMUM
    assert one("24 3B 01000000").function is Function.MINIMUM
    assert one("34 06 01000000").function is Function.ERROR


def test_skips_and_manufacturer_parts() -> None:
    records = parse_records(bytes.fromhex("2F2F 02 7C 03 434241 0100 04 86FF02 0A000000 0F 0102"))
    assert [r.quantity for r in records] == ["energy", "manufacturer_data"]
    assert records[0].mfr_vife == (0x02,)
    assert records[1].value == b"\x01\x02"
    compound = one("07 FF A0 33 0102030405060708")
    assert (compound.quantity, compound.mfr_vife) == ("manufacturer", (0xA0, 0x33))


def test_to_values_converts_units() -> None:
    records = parse_records(
        bytes.fromhex(
            "04 0E 24000000  02 46 0100  02 33 1027  12 3B 0500  0C 78 78563412 02 FD17 0300"
            " 44 06 01000000  84 10 06 02000000  34 13 01000000"
        )
    )
    values = to_values(records)
    assert values == {
        "energy_heat_kwh": pytest.approx(10.0),
        "flow_m3h": pytest.approx(6.0),  # 0.1 m³/min
        "power_w": pytest.approx(10_000_000 / 3600),
        "flow_max_m3h": pytest.approx(0.005),
        "meter_serial": "12345678",
        "error_flags": 3,
    }
    assert to_values(records, storage=1, energy_field="energy_cooling_kwh") == {
        "energy_cooling_kwh": 1.0
    }


@pytest.mark.parametrize(
    ("hex_", "message", "offset"),
    [
        ("3F 06", "reserved or unsupported DIF", 0),
        ("08 06", "reserved or unsupported DIF", 0),
        ("04 06 0100", "truncated", 0),
        ("04", "missing VIF", 1),
        ("84", "missing DIFE", 1),
        ("0C 06 1A000000", "invalid BCD", 0),
        ("02 6F 0000", "unsupported VIF 0x6f", 1),
        ("02 FD3F 0000", "unsupported VIF FD 3F", 1),
        ("02 FB7F 0000", "unsupported VIF FB 7F", 1),
        ("04 6D 220C1F32", "invalid date", 0),  # 31 February
        ("05 2E 0000C07F", "non-finite", 0),  # NaN
        ("0D 13 F8", "reserved LVAR", 2),
    ],
)
def test_errors_name_the_byte(hex_: str, message: str, offset: int) -> None:
    with pytest.raises(DecodeError, match=message) as info:
        parse_records(bytes.fromhex(hex_.replace(" ", "")))
    assert info.value.offset == offset


def test_offsets_are_relative_to_the_whole_buffer() -> None:
    with pytest.raises(DecodeError) as info:
        parse_records(bytes.fromhex("00 04 06 01"), start=1)
    assert info.value.offset == 1


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=80))
def test_random_bytes_give_records_or_decode_error(data: bytes) -> None:
    try:
        records = parse_records(data)
    except DecodeError:
        return
    for record in records:
        assert isinstance(record, Record)
    to_values(records)
