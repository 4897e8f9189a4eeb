"""EN 13757-3 record parser: encodings, VIF families, date/time types, registers, errors."""

from __future__ import annotations

import struct
from datetime import datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from decoders import mbus
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
        ("01 13 FE", "volume", "m3", -0.002),  # every integer size is signed
        ("03 13 FEFFFF", "volume", "m3", -0.002),
        ("04 13 FEFFFFFF", "volume", "m3", -0.002),
        ("06 16 FEFFFFFFFFFF", "volume", "m3", -2),
        ("07 16 FEFFFFFFFFFFFFFF", "volume", "m3", -2),
        ("04 03 FFFFFF7F", "energy", "Wh", 2**31 - 1),  # LSB first
        ("09 5B 45", "flow_temp", "°C", 45),  # BCD2
        ("0A 5E 3412", "return_temp", "°C", 123.4),  # BCD4
        ("0B 2B 563412", "power", "W", 123456),  # BCD6
        ("0C 06 78563412", "energy", "Wh", 12_345_678_000),  # BCD8
        ("0E 13 785634120000", "volume", "m3", 12345.678),  # BCD12
        ("0A 5A 23F1", "flow_temp", "°C", -12.3),  # negative BCD (F in the top nibble)
        ("0D 78 04 34333231", "fabrication_no", "", "1234"),  # variable length, ASCII reversed
        ("0D 13 C2 3412", "volume", "m3", 1.234),  # variable length BCD
        ("0D 13 D2 3412", "volume", "m3", -1.234),  # variable length BCD, negative
        ("0D 13 E3 FFFFFF", "volume", "m3", -0.001),  # variable length binary, signed
        ("0D 13 03 333231", "volume", "m3", "123"),  # variable length ASCII: kept as text
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


# The lookup tables of decoders/mbus.py against the spec, stated here a second way: bit patterns
# as EN 13757-3:2013 prints them (table 10: primary VIF "E000 0nnn energy 10^(nnn-3) Wh", ...;
# table 12: VIFE after FB; table 14: VIFE after FD). A wrong or missing table entry goes red.
def _primary_reference(code: int) -> tuple[str, str, int] | None:
    nnn, nn = code & 0x07, code & 0x03
    ranges = [  # (mask, pattern, quantity, unit, exponent)
        (0x78, 0x00, "energy", "Wh", nnn - 3),  # E000 0nnn
        (0x78, 0x08, "energy", "J", nnn),  # E000 1nnn
        (0x78, 0x10, "volume", "m3", nnn - 6),  # E001 0nnn
        (0x78, 0x18, "mass", "kg", nnn - 3),  # E001 1nnn
        (0x7C, 0x20, "on_time", "s", 0),  # E010 00nn (nn: s, min, h, d)
        (0x7C, 0x24, "operating_time", "s", 0),  # E010 01nn
        (0x78, 0x28, "power", "W", nnn - 3),  # E010 1nnn
        (0x78, 0x30, "power", "J/h", nnn),  # E011 0nnn
        (0x78, 0x38, "volume_flow", "m3/h", nnn - 6),  # E011 1nnn
        (0x78, 0x40, "volume_flow", "m3/min", nnn - 7),  # E100 0nnn
        (0x78, 0x48, "volume_flow", "m3/s", nnn - 9),  # E100 1nnn
        (0x78, 0x50, "mass_flow", "kg/h", nnn - 3),  # E101 0nnn
        (0x7C, 0x58, "flow_temp", "°C", nn - 3),  # E101 10nn
        (0x7C, 0x5C, "return_temp", "°C", nn - 3),  # E101 11nn
        (0x7C, 0x60, "temp_diff", "K", nn - 3),  # E110 00nn
        (0x7C, 0x64, "external_temp", "°C", nn - 3),  # E110 01nn
        (0x7C, 0x68, "pressure", "bar", nn - 3),  # E110 10nn
    ]
    for mask, pattern, quantity, unit, exponent in ranges:
        if code & mask == pattern:
            return quantity, unit, exponent
    named = {0x6C: "date", 0x6D: "datetime", 0x6E: "hca_units", 0x78: "fabrication_no"}
    named |= {0x79: "identification", 0x7A: "bus_address", 0x7F: "manufacturer"}
    return (named[code], "", 0) if code in named else None


def _fb_reference(code: int) -> tuple[str, str, int] | None:
    n, nn = code & 0x01, code & 0x03
    ranges = [
        (0x7E, 0x00, "energy", "Wh", n + 5),  # E000 000n: 10^(n-1) MWh
        (0x7E, 0x08, "energy", "J", n + 8),  # E000 100n: 10^(n-1) GJ
        (0x7C, 0x0C, "energy", "cal", nn + 5),  # E000 11nn: 10^(n-1) MCal (Elvaco: 0x0D 1 MCal)
        (0x7E, 0x10, "volume", "m3", n + 2),  # E001 000n: 10^(n+2) m³
        (0x7E, 0x18, "mass", "kg", n + 5),  # E001 100n: 10^(n+2) t
        (0x7E, 0x28, "power", "W", n + 5),  # E010 100n: 10^(n-1) MW
        (0x7E, 0x30, "power", "J/h", n + 8),  # E011 000n: 10^(n-1) GJ/h
    ]
    for mask, pattern, quantity, unit, exponent in ranges:
        if code & mask == pattern:
            return quantity, unit, exponent
    return None


def _fd_reference(code: int) -> tuple[str, str, int] | None:
    if code & 0x70 == 0x40:  # E100 nnnn: 10^(nnnn-9) V
        return "voltage", "V", (code & 0x0F) - 9
    if code & 0x70 == 0x50:  # E101 nnnn: 10^(nnnn-12) A
        return "current", "A", (code & 0x0F) - 12
    named = {
        0x08: "access_number", 0x09: "medium", 0x0A: "manufacturer", 0x0B: "parameter_set",
        0x0C: "model_version", 0x0D: "hardware_version", 0x0E: "firmware_version",
        0x0F: "software_version", 0x10: "customer_location", 0x11: "customer",
        0x16: "password", 0x17: "error_flags", 0x18: "error_mask", 0x1A: "digital_output",
        0x1B: "digital_input", 0x3A: "dimensionless", 0x60: "reset_counter",
        0x61: "cumulation_counter", 0x74: "battery_life_days",
    }  # fmt: skip
    return (named[code], "", 0) if code in named else None


@pytest.mark.parametrize(
    ("table", "reference"),
    [
        (mbus.PRIMARY_VIF, _primary_reference),
        (mbus.FB_VIF, _fb_reference),
        (mbus.FD_VIF, _fd_reference),
    ],
    ids=["primary", "FB", "FD"],
)
def test_vif_tables_match_the_spec_bit_patterns(
    table: dict[int, tuple[str, str, int]], reference: Any
) -> None:
    for code in range(0x80):
        assert table.get(code) == reference(code), f"VIF code {code:#04x}"


def test_vif_tables_reach_the_records() -> None:
    # every primary code the tables know decodes as a record with that meaning (an int8 0x01)
    for code, (quantity, unit, exponent) in mbus.PRIMARY_VIF.items():
        if quantity in ("date", "datetime", "manufacturer"):
            continue
        record = one(f"01 {code:02X} 01")
        assert (record.quantity, record.unit, record.exponent) == (quantity, unit, exponent)
    for code, (quantity, unit, exponent) in mbus.FD_VIF.items():
        record = one(f"01 FD{code:02X} 01")
        assert (record.quantity, record.unit, record.exponent) == (quantity, unit, exponent)


def test_data_field_codings_match_the_spec() -> None:
    # EN 13757-3 table 4: 0 no data, 1-4 int8..int32, 5 real32, 6 int48, 7 int64,
    # 9-C BCD 2..8 digits, E BCD 12 digits; 8, D (variable) and F are not fixed-size data
    sizes = {0: 0, 1: 1, 2: 2, 3: 3, 4: 4, 5: 4, 6: 6, 7: 8, 9: 1, 10: 2, 11: 3, 12: 4, 14: 6}
    kinds = {
        coding: "bcd" if coding >= 9 else "real" if coding == 5 else "binary" for coding in sizes
    }
    assert {c: size for c, (size, _) in mbus._CODINGS.items()} == sizes
    assert {c: kind for c, (_, kind) in mbus._CODINGS.items()} == kinds
    assert [f.value for f in mbus._FUNCTIONS] == [0, 1, 2, 3]  # DIF bits 5-4


def _bcd_reference(data: bytes) -> int | None:
    """Type A the way the standard prints it: the hex digits, MSB first; F on top = minus."""
    digits = data[::-1].hex()
    sign = -1 if digits[:1] == "f" else 1
    digits = digits[1:] if sign < 0 else digits
    return sign * int(digits) if digits.isdigit() else None


def test_bcd_pairs_cover_every_byte() -> None:
    for byte in range(256):
        text = f"{byte:02x}"
        assert mbus._BCD_PAIRS.get(byte) == (int(text) if text.isdigit() else None)


@settings(max_examples=500, deadline=None)
@given(st.binary(min_size=1, max_size=8))
def test_bcd_matches_the_digit_reading(data: bytes) -> None:
    want = _bcd_reference(data)
    if want is None:
        with pytest.raises(DecodeError, match="invalid BCD"):
            mbus._bcd(data, 0)
    else:
        assert mbus._bcd(data, 0) == want


def test_remembered_headers_decode_like_fresh_ones() -> None:
    frame = bytes.fromhex(
        "0C06 52676102 0C14 97899900 0B2D 000000 0A5A 3306 0C78 29110366 02FD17 0000"
        " C4 5A 06 01000000  84 10 06 02000000  14 3B 01000000  04 93 75 0A000000  02 26 0200"
    )
    mbus._HEADERS.clear()
    fresh = parse_records(frame)
    assert mbus._HEADERS, "headers are kept"
    assert parse_records(frame) == fresh
    mbus._HEADERS.clear()
    assert parse_records(frame) == fresh


def test_bad_headers_are_not_kept_and_the_store_is_bounded() -> None:
    mbus._HEADERS.clear()
    for _ in range(2):
        with pytest.raises(DecodeError, match="unsupported VIF 0x6f"):
            parse_records(bytes.fromhex("02 6F 0000"))
    assert not mbus._HEADERS
    for storage in range(mbus._HEADERS_KEPT + 10):  # distinct headers: DIF 82 and 4 DIFEs
        difes = [0x80 | (storage >> shift) & 0x0F for shift in (0, 4, 8, 12)]
        difes[-1] &= 0x7F
        (record,) = parse_records(bytes([0x82, *difes, 0x13, 0x01, 0x00]))
        assert record.storage == storage << 1
        assert record.value == pytest.approx(0.001)  # VIF 13: litres
    assert len(mbus._HEADERS) == mbus._HEADERS_KEPT
    mbus._HEADERS.clear()


# Frames covering each reader (int/BCD/real/date/identifier codings, DIFEs, VIFEs, fillers,
# manufacturer data to the end) for the layout tests below.
_LAYOUT_FRAMES = [
    "0C06 52676102 0C14 97899900 0B2D 000000 0B3B 000000 0A5A 3306 0A5E 4105 0C78 29110366"
    " 02FD17 0000",
    "2F2F 0413 40E20100 02FF20 0000 023B 0A00 046D 220C0F33 4413 10270000 426C 1F21"
    " 8401 13 20230000 8201 6C 1F21 2F2F",
    "05 2B 0000C842  01 FD17 05  06 03 010000000000  07 16 0100000000000000  02 26 0200"
    " 04 93 75 0A000000  C4 5A 06 01000000  0C 78 29110366  07 79 7856341201020304"
    " 0F 01020304",
    "04 6D 3B17 8C11  02 FD74 1027  09 FD0E 21  0C 0E 00000000  1F 00",
]


def _clear() -> None:
    mbus._HEADERS.clear()
    mbus._LAYOUTS.clear()


def _outcome(frame: bytes) -> object:
    try:
        return parse_records(frame)
    except DecodeError as exc:
        return ("error", str(exc), exc.offset)


@pytest.mark.parametrize("hex_", _LAYOUT_FRAMES)
def test_a_learnt_layout_decodes_like_a_fresh_parse(hex_: str) -> None:
    frame = bytes.fromhex(hex_.replace(" ", ""))
    _clear()
    fresh = parse_records(frame)
    layout = mbus._LAYOUTS[0, len(frame)]
    assert len(layout.fields) == len(fresh)
    assert parse_records(frame) == fresh  # through the layout
    assert layout.records(layout.read(frame)) == fresh
    _clear()


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(_LAYOUT_FRAMES), st.randoms(use_true_random=False))
def test_other_data_in_a_learnt_layout_decode_like_a_fresh_parse(hex_: str, rng: Any) -> None:
    """Same headers, other data (valid or not): the layout gives the fresh parse's records or
    its very error; a changed header byte makes the layout not fit."""
    frame = bytes.fromhex(hex_.replace(" ", ""))
    _clear()
    parse_records(frame)
    layout = mbus._LAYOUTS[0, len(frame)]
    other = bytearray(frame)
    for field in layout.fields:
        for i in range(field.start, field.stop):
            if rng.random() < 0.5:
                other[i] = rng.choice([rng.randrange(256), rng.randrange(10) << 4 | 9])
    if rng.random() < 0.2:  # a header or filler byte changed too
        fixed = [i for s in layout.fixed for i in range(s.start, s.stop)]
        other[rng.choice(fixed)] ^= 1 << rng.randrange(8)
    other_frame = bytes(other)
    assert layout.fits(other_frame) == all(
        other_frame[s] == b for s, b in zip(layout.fixed, layout.fixed_bytes, strict=True)
    )
    learnt = _outcome(other_frame)  # the layout when it fits, else a full parse
    _clear()
    assert learnt == _outcome(other_frame)
    _clear()


def test_frames_whose_data_length_is_in_the_data_learn_no_layout() -> None:
    _clear()
    parse_records(bytes.fromhex("0D 78 04 34333231  04 13 01000000"))  # LVAR
    parse_records(bytes.fromhex("02 7C 03 434241 0100  04 13 01000000"))  # plain-text unit
    assert not mbus._LAYOUTS
    _clear()


def test_layouts_are_bounded() -> None:
    _clear()
    for size in range(mbus._LAYOUTS_KEPT + 10):
        parse_records(bytes.fromhex("04 13 01000000") + b"\x2f" * size)
    assert len(mbus._LAYOUTS) == mbus._LAYOUTS_KEPT
    _clear()


@pytest.mark.parametrize(
    ("hex_", "value"),
    [
        ("04 13 40E20100", 123.456),  # int32 x 10^-3: divided
        ("04 06 10270000", 10_000_000),  # int32 x 10^3: an int
        ("0C 06 78563412", 12_345_678_000),  # BCD8 x 10^3
        ("0A 5A 23F1", -12.3),  # negative BCD x 10^-1
        ("02 FD17 FFFF", 0xFFFF),  # flags: unsigned, unscaled
        ("0C 78 29110366", "66031129"),  # fabrication number: BCD digits
        ("04 78 29110366", str(0x66031129)),  # fabrication number, binary: its decimal text
        ("02 26 0200", 2 * 3600),  # operating time in hours -> s
        ("05 2B 0000C842", 100.0),  # real32, W
        ("02 6C 1F21", datetime(2016, 1, 31)),  # type G
    ],
)
def test_readers_give_the_spec_value_fresh_and_through_a_layout(hex_: str, value: object) -> None:
    frame = bytes.fromhex(hex_.replace(" ", ""))
    _clear()
    fresh = parse_records(frame)
    learnt = parse_records(frame)
    assert (0, len(frame)) in mbus._LAYOUTS
    assert fresh[0].value == value == learnt[0].value
    assert type(fresh[0].value) is type(value) is type(learnt[0].value)
    _clear()


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(_LAYOUT_FRAMES), st.randoms(use_true_random=False), st.booleans())
def test_a_frame_read_through_its_layout_gives_the_records_and_values_of_a_full_parse(
    hex_: str, rng: Any, serial_first: bool
) -> None:
    frame = bytes.fromhex(hex_.replace(" ", ""))
    _clear()
    mbus.Frame(frame)  # learns the layout
    layout = mbus._LAYOUTS[0, len(frame)]
    other = bytearray(frame)
    for field in layout.fields:
        for i in range(field.start, field.stop):
            if rng.random() < 0.3:
                other[i] = rng.randrange(10) << 4 | rng.randrange(10)
    data = bytes(other)
    fast_outcome = _frame_or_error(data)
    _clear()
    if not isinstance(fast_outcome, mbus.Frame):
        assert fast_outcome == _frame_or_error(data)  # the full parse's very error
        return
    fast = fast_outcome
    assert fast._layout is layout, "read through the layout"
    records = parse_records(data)
    storages = sorted({r.storage for r in records})
    for storage in (0, 1, 2, 3):
        for energy in ("energy_heat_kwh", "energy_cooling_kwh"):
            want = to_values(records, storage=storage, energy_field=energy)
            assert fast.values(storage, energy) == want
            assert [type(v) for v in fast.values(storage, energy).values()] == [
                type(v) for v in want.values()
            ]
    for energy in ("energy_heat_kwh", "energy_cooling_kwh"):
        by_storage = {s: to_values(records, storage=s, energy_field=energy) for s in storages}
        assert fast.values_by_storage(energy) == by_storage
        assert list(fast.values_by_storage(energy)) == storages  # ascending
    assert [fast.value(i) for i in range(len(records))] == [r.value for r in records]
    assert [fast.raw(i) for i in range(len(records))] == [r.raw for r in records]
    if serial_first:  # records built from the layout's reading, then the values from them
        assert fast.records == records
        assert fast.values() == to_values(records)
        assert fast.values_by_storage() == {s: to_values(records, storage=s) for s in storages}
        assert [fast.raw(i) for i in range(len(records))] == [r.raw for r in records]
    assert fast.records == records
    _clear()


def _frame_or_error(data: bytes) -> mbus.Frame | tuple[str, int | None]:
    try:
        return mbus.Frame(data)
    except DecodeError as exc:
        return str(exc), exc.offset


def test_frame_shape_is_worked_out_once_per_layout() -> None:
    frame = bytes.fromhex(_LAYOUT_FRAMES[0].replace(" ", ""))
    calls: list[int] = []

    def quantities(records: Any) -> tuple[str, ...]:
        calls.append(1)
        return tuple(r.quantity for r in records)

    _clear()
    first = mbus.Frame(frame).shape(quantities)  # a full parse: computed from its records
    assert mbus.Frame(frame).shape(quantities) == first
    assert mbus.Frame(frame).shape(quantities) == first
    assert len(calls) == 2  # the full parse, then once for the layout
    assert first[:2] == ("energy", "volume")
    _clear()


def test_type_g_dates_are_kept_only_when_possible_and_the_store_is_bounded() -> None:
    mbus._DATES_G.clear()
    for _ in range(2):
        (record,) = parse_records(bytes.fromhex("02 6C 1F21"))
        assert record.value == datetime(2016, 1, 31)
    assert {0x211F: datetime(2016, 1, 31)} == mbus._DATES_G
    for at in (0, 3):  # Feb 31: an error at each record's own offset, never kept
        with pytest.raises(DecodeError, match=rf"day is out of range.*at byte {at}"):
            parse_records(bytes.fromhex("2F2F2F"[: 2 * at] + "02 6C 1F22"))
    assert 0x221F not in mbus._DATES_G
    for n in range(mbus._DATES_G_KEPT + 100):  # distinct possible dates
        day, month, year = n % 28 + 1, n // 28 % 12 + 1, n // 336
        word = day | (year & 0x07) << 5 | month << 8 | (year >> 3) << 12
        assert mbus._read_date_g(word.to_bytes(2, "little"), 0)[0] == mbus._date_g(word, 0)
    assert len(mbus._DATES_G) == mbus._DATES_G_KEPT
    mbus._DATES_G.clear()
