"""EN 13757-3 (M-Bus) data records: DIF/DIFE/VIF/VIFE parsing into typed records.

Layout of one record:  DIF [DIFE...] VIF [VIFE...] DATA
- DIF  bit 7 extension, bit 6 storage number LSB, bits 5-4 function (inst/max/min/error),
       bits 3-0 data field coding (none, int8..int64, real32, BCD2..BCD12, variable length).
       0x0F/0x1F: manufacturer-specific data to the end; 0x2F: idle filler (skipped).
- DIFE bit 7 extension, bit 6 subunit, bits 5-4 tariff, bits 3-0 storage number (next bits).
- VIF  bit 7 extension; bits 6-0 index the primary table, 0x7B/0x7D switch to the FB/FD
       tables, 0x7C is a plain-text unit (skipped), 0x7F is manufacturer specific.
- VIFE combinable extensions; multiplicative corrections (0x70-0x77, 0x7D) are applied,
       0x7F makes the rest of the chain manufacturer specific (kept in ``mfr_vife``).

Values are kept in the unit the VIF names without its decimal prefix (Wh or J, m³, W or J/h,
m³/h | m³/min | m³/s, °C, K, s, ...), tagged by ``quantity`` and ``unit``; ``to_values`` maps
records to the lorameter vocabulary (kWh, m³, W, m³/h, °C). Sources: EN 13757-3:2013 tables
and annex A (data types A, B, C, F, G, I), OMS Vol. 2 (table subsets actually sent by meters).
"""

from __future__ import annotations

import enum
import functools
import math
import struct
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, NamedTuple, TypeVar

from decoders.core import DecodeError, Value, Values

__all__ = ["Frame", "Function", "Record", "parse_record", "parse_records", "scaled", "to_values"]

RecordValue = float | int | str | datetime | bytes | None


class Function(enum.Enum):
    """The DIF function field."""

    INSTANTANEOUS = 0
    MAXIMUM = 1
    MINIMUM = 2
    ERROR = 3  # value during error state


# DIF bits 5-4 -> Function, built once (an enum call per record costs as much as the lookup).
_FUNCTIONS = tuple(Function)


class Record(NamedTuple):
    """One data record: what it measures, its value and which register (storage/tariff/subunit).

    Immutable (a named tuple: a record is built for every field of every frame, and a tuple is
    built several times faster than a frozen dataclass).
    """

    offset: int  # byte offset of the DIF in the parsed buffer
    quantity: str  # energy, volume, power, volume_flow, flow_temp, datetime, error_flags, ...
    unit: str  # unit of ``value`` (no decimal prefix): Wh J cal m3 kg s W J/h m3/h °C K ...
    value: RecordValue
    storage: int = 0
    tariff: int = 0
    subunit: int = 0
    function: Function = Function.INSTANTANEOUS
    vife: tuple[int, ...] = ()  # combinable VIFE codes (bit 7 cleared) that qualify the value
    mfr_vife: tuple[int, ...] = ()  # VIFE bytes after a 0x7F manufacturer-specific marker
    raw: bytes = b""  # the data field as sent
    invalid: bool = False  # date/time flagged invalid by the meter
    exponent: int = 0  # the VIF's decimal exponent (to scale raw data such as profile elements)


# EN 13757-3:2013 table 4, data field coding (DIF bits 3-0) -> (data bytes, how to read them):
# 0 no data, 1-4/6/7 int8..int64 (type B), 5 real32 (type H), 9-C/E BCD 2..12 digits (type A);
# 0x0D variable length (LVAR, see _variable); 0x08 (selection for readout) and 0x0F (special
# functions) carry no data and are rejected.
_CODINGS: dict[int, tuple[int, str]] = {
    0x0: (0, "binary"), 0x1: (1, "binary"), 0x2: (2, "binary"), 0x3: (3, "binary"),
    0x4: (4, "binary"), 0x5: (4, "real"), 0x6: (6, "binary"), 0x7: (8, "binary"),
    0x9: (1, "bcd"), 0xA: (2, "bcd"), 0xB: (3, "bcd"), 0xC: (4, "bcd"), 0xE: (6, "bcd"),
}  # fmt: skip
_REAL32 = struct.Struct("<f")  # type H: IEEE 754 single precision, LSB first
_UINT16 = struct.Struct("<H")
# Type B: signed integers, LSB first, by size (3 and 6 bytes have no struct format).
_SIGNED = {
    1: struct.Struct("<b"),
    2: struct.Struct("<h"),
    4: struct.Struct("<i"),
    8: struct.Struct("<q"),
}

# A byte of packed BCD (type A) -> its two digits as a number (0x42 -> 42); bytes with a nibble
# above 9 are absent, so a lookup miss is an invalid digit.
_BCD_PAIRS = {tens << 4 | ones: 10 * tens + ones for tens in range(10) for ones in range(10)}


def scaled(mantissa: float, exponent: int) -> float:
    """``mantissa * 10**exponent`` without binary rounding noise for negative exponents."""
    return float(mantissa * 10**exponent if exponent >= 0 else mantissa / 10**-exponent)


# VIF tables as ranges, the way EN 13757-3:2013 lists them (table 10 primary VIFs, table 12
# VIFE after FB, table 14 VIFE after FD): (first code, count, quantity, unit, exponent of code
# `first`); the exponent grows by one per code in the range (e.g. 0x00-0x07 energy 10^(n-3) Wh).
# ``_codes`` expands them once, at import, into one dict lookup per VIF.
_PRIMARY: tuple[tuple[int, int, str, str, int], ...] = (
    (0x00, 8, "energy", "Wh", -3),
    (0x08, 8, "energy", "J", 0),
    (0x10, 8, "volume", "m3", -6),
    (0x18, 8, "mass", "kg", -3),
    (0x28, 8, "power", "W", -3),
    (0x30, 8, "power", "J/h", 0),
    (0x38, 8, "volume_flow", "m3/h", -6),
    (0x40, 8, "volume_flow", "m3/min", -7),
    (0x48, 8, "volume_flow", "m3/s", -9),
    (0x50, 8, "mass_flow", "kg/h", -3),
    (0x58, 4, "flow_temp", "°C", -3),
    (0x5C, 4, "return_temp", "°C", -3),
    (0x60, 4, "temp_diff", "K", -3),
    (0x64, 4, "external_temp", "°C", -3),
    (0x68, 4, "pressure", "bar", -3),
)
# Table 10's codes without a decimal exponent (0x20-0x27, on/operating time, follow below).
_PRIMARY_PLAIN = {
    0x6C: "date", 0x6D: "datetime", 0x6E: "hca_units", 0x78: "fabrication_no",
    0x79: "identification", 0x7A: "bus_address", 0x7F: "manufacturer",
}  # fmt: skip
_FB: tuple[tuple[int, int, str, str, int], ...] = (
    (0x00, 2, "energy", "Wh", 5),  # 10^(n-1) MWh
    (0x08, 2, "energy", "J", 8),  # 10^(n-1) GJ
    (0x0C, 4, "energy", "cal", 5),  # 10^(n-1) MCal, as Elvaco documents 0x0D = 1 MCal
    (0x10, 2, "volume", "m3", 2),
    (0x18, 2, "mass", "kg", 5),  # 10^(n+2) t
    (0x28, 2, "power", "W", 5),  # 10^(n-1) MW
    (0x30, 2, "power", "J/h", 8),  # 10^(n-1) GJ/h
)
_FD: tuple[tuple[int, int, str, str, int], ...] = (
    (0x40, 16, "voltage", "V", -9),
    (0x50, 16, "current", "A", -12),
)
_FD_PLAIN = {
    0x08: "access_number", 0x09: "medium", 0x0A: "manufacturer", 0x0B: "parameter_set",
    0x0C: "model_version", 0x0D: "hardware_version", 0x0E: "firmware_version",
    0x0F: "software_version", 0x10: "customer_location", 0x11: "customer", 0x16: "password",
    0x17: "error_flags", 0x18: "error_mask", 0x1A: "digital_output", 0x1B: "digital_input",
    0x3A: "dimensionless", 0x60: "reset_counter", 0x61: "cumulation_counter",
    0x74: "battery_life_days",
}  # fmt: skip
_TIME_UNITS = (1, 60, 3600, 86400)  # s, min, h, d
_IDENTIFIERS = {"fabrication_no", "identification", "bus_address", "error_flags", "error_mask"}
# Quantities whose number is a count, code or identifier: never scaled by a decimal exponent.
_UNITLESS = frozenset({*_FD_PLAIN.values(), "hca_units", "bus_address", *_IDENTIFIERS})

_Meaning = tuple[str, str, int]  # quantity, unit, decimal exponent


def _codes(
    ranges: tuple[tuple[int, int, str, str, int], ...], plain: dict[int, str]
) -> dict[int, _Meaning]:
    """One table as code (bits 6-0) -> meaning: every code of each range, then the plain ones."""
    found = {
        first + n: (quantity, unit, exponent + n)
        for first, count, quantity, unit, exponent in ranges
        for n in range(count)
    }
    return found | {code: (name, "", 0) for code, name in plain.items()}


# 0x20-0x23 on time, 0x24-0x27 operating time: bits 1-0 give s, min, h or d (``_TIME_UNITS``);
# values are kept in s.
PRIMARY_VIF = _codes(_PRIMARY, _PRIMARY_PLAIN) | {
    code: ("on_time" if code < 0x24 else "operating_time", "s", 0) for code in range(0x20, 0x28)
}
FB_VIF = _codes(_FB, {})
FD_VIF = _codes(_FD, _FD_PLAIN)


def _vif_meaning(vif: bytes, at: int) -> tuple[_Meaning, int]:
    """(quantity, unit, decimal exponent) of a VIF chain and the VIF bytes it takes (1 or 2)."""
    code = vif[0] & 0x7F
    if code in (0x7B, 0x7D):  # the FB / FD extension tables
        if len(vif) < 2:
            raise DecodeError(f"VIF {vif[0]:#04x} needs an extension byte", offset=at)
        meaning = (FB_VIF if code == 0x7B else FD_VIF).get(vif[1] & 0x7F)
        if meaning is None:
            raise DecodeError(f"unsupported VIF {vif[0]:02X} {vif[1]:02X}", offset=at)
        return meaning, 2
    meaning = PRIMARY_VIF.get(code)
    if meaning is None:
        raise DecodeError(f"unsupported VIF {vif[0]:#04x}", offset=at)
    return meaning, 1


def _bcd(data: bytes, at: int) -> int:
    """EN 13757-3 type A: packed BCD, LSB first; 0xF in the top nibble means negative."""
    try:  # the usual case: every nibble a digit (hex() gives 0-9a-f: int() takes 0-9 only)
        return int(data[::-1].hex())
    except ValueError:
        pass  # a sign nibble, an invalid digit, or no data
    if not data:
        raise DecodeError(f"invalid BCD digits {data.hex()}", offset=at)
    top = data[-1]
    sign, top = (-1, top & 0x0F) if top >> 4 == 0xF else (1, top)
    try:
        number = _BCD_PAIRS[top]
        for byte in reversed(data[:-1]):
            number = 100 * number + _BCD_PAIRS[byte]
    except KeyError:
        raise DecodeError(f"invalid BCD digits {data.hex()}", offset=at) from None
    return sign * number


def _date_g(word: int, at: int) -> datetime | None:
    day, month = word & 0x1F, (word >> 8) & 0x0F
    year = ((word >> 12) & 0x0F) << 3 | (word >> 5) & 0x07
    if day == 0 or month == 0 or word == 0xFFFF:
        return None  # the meter's "no date" (type G has no invalid bit)
    return _calendar(year, 0, month, day, 0, 0, 0, at)


def _calendar(
    year: int, century: int, month: int, day: int, hour: int, minute: int, sec: int, at: int
) -> datetime:
    full = 1900 + 100 * century + year if century else (2000 if year < 81 else 1900) + year
    try:
        return datetime(full, month, day, hour, minute, sec)
    except ValueError as exc:
        raise DecodeError(f"invalid date/time in record: {exc}", offset=at) from None


def _date_time(data: bytes, at: int) -> datetime | None:
    """Type F (4 bytes: minute..year) or type I (6 bytes, with seconds); None if flagged invalid."""
    sec = 0
    if len(data) == 6:
        sec, data = data[0] & 0x3F, data[1:5]
    minute, hour, day, month = data[0], data[1], data[2], data[3]
    if minute & 0x80:
        return None
    year = (month >> 4) << 3 | day >> 5
    return _calendar(
        year, (hour >> 5) & 0x03, month & 0x0F, day & 0x1F, hour & 0x1F, minute & 0x3F, sec, at
    )


def _variable(data: bytes, pos: int, at: int) -> tuple[bytes, int, str]:
    """Variable-length data (DIF 0x0D): (data, new position, kind ascii|bcd|-bcd|binary)."""
    if pos >= len(data):
        raise DecodeError("record truncated: missing LVAR length byte", offset=pos)
    lvar = data[pos]
    pos += 1
    if lvar <= 0xBF:
        size, kind = lvar, "ascii"
    elif 0xC0 <= lvar <= 0xC9 or 0xD0 <= lvar <= 0xD9:
        size, kind = lvar & 0x0F, "bcd" if lvar < 0xD0 else "-bcd"
    elif 0xE0 <= lvar <= 0xEF:
        size, kind = lvar - 0xE0, "binary"
    elif 0xF0 <= lvar <= 0xF6:
        size, kind = (4 * (lvar - 0xEC) if lvar <= 0xF4 else 48 if lvar == 0xF5 else 64), "binary"
    else:
        raise DecodeError(f"reserved LVAR {lvar:#04x}", offset=pos - 1)
    if pos + size > len(data):
        raise DecodeError(f"record truncated: need {size} data bytes", offset=at)
    return data[pos : pos + size], pos + size, kind


# How one record's data field becomes its value: ``read(raw, at) -> (value, flagged invalid)``,
# ``at`` the record's offset for errors. Which reader a record needs depends only on what its
# header says (quantity, data field coding, exponent) and, for variable-length data, on the
# LVAR kind and size, so ``_reader`` picks it once per such combination (cached) and the
# per-record work is one call without the branching below.
_Read = Callable[[bytes, int], tuple[RecordValue, bool]]


@functools.lru_cache(maxsize=1024)
def _reader(
    quantity: str, coding: int, kind: str, size: int, exponent: int, time_factor: int = 1
) -> _Read:
    """The reader for data of ``size`` bytes read as ``kind`` (EN 13757-3 annex A types)."""
    read = _base_reader(quantity, coding, kind, size, exponent)
    if time_factor == 1:
        return read

    def in_seconds(raw: bytes, at: int) -> tuple[RecordValue, bool]:
        value, invalid = read(raw, at)
        return (value * time_factor if isinstance(value, int | float) else value), invalid

    return in_seconds


def _base_reader(quantity: str, coding: int, kind: str, size: int, exponent: int) -> _Read:
    if coding == 0:
        return _no_data
    if quantity in ("date", "datetime"):
        if kind != "binary" or size not in ((2,) if quantity == "date" else (4, 6)):
            return _fails(f"{quantity} record with unexpected coding {coding:#x}")
        return _read_date_g if size == 2 else _read_date_time
    if kind == "ascii":
        return _read_ascii
    if quantity == "manufacturer":
        return _read_bytes
    number: Callable[[bytes, int], int]
    if kind in ("bcd", "-bcd"):
        number = _read_bcd if kind == "bcd" else _read_negative_bcd
        if quantity in _IDENTIFIERS:
            return _as_digits(number, 2 * size)
    elif kind == "real":
        return _real_reader(quantity, exponent)
    elif quantity == "identification" and size == 8:  # ID (BCD), manufacturer, version, medium
        return _read_identification
    else:
        if quantity not in _UNITLESS and size in _SIGNED:  # a register: type B x 10^exponent
            return _scaled_int_reader(_SIGNED[size], exponent)
        number = _read_int if quantity not in _IDENTIFIERS else _read_uint
        if quantity in ("fabrication_no", "identification"):
            return _as_text(number)
    if quantity in _UNITLESS:
        return _as_is(number)
    return _scaled_reader(number, exponent)


def _no_data(raw: bytes, at: int) -> tuple[RecordValue, bool]:
    return None, False


def _fails(message: str) -> _Read:
    def fail(raw: bytes, at: int) -> tuple[RecordValue, bool]:
        raise DecodeError(message, offset=at)

    return fail


def _read_date_g(raw: bytes, at: int) -> tuple[RecordValue, bool]:
    word = _UINT16.unpack(raw)[0]  # the reader of 2-byte data only (``_base_reader``)
    when = _DATES_G.get(word, _UNSEEN)
    if when is _UNSEEN:
        when = _date_g(word, at)  # raises for an impossible date (never kept)
        if len(_DATES_G) < _DATES_G_KEPT:
            _DATES_G[word] = when
    return when, when is None


# Type G dates by their 16-bit word: a memo of ``_date_g`` (pure; datetimes are immutable). A
# meter's history records repeat the same month-start dates frame after frame. Bounded.
_DATES_G: dict[int, datetime | None] = {}
_DATES_G_KEPT = 4096
_UNSEEN = datetime.min  # not a type G date (those start in 1981)


def _read_date_time(raw: bytes, at: int) -> tuple[RecordValue, bool]:
    when = _date_time(raw, at)
    return when, when is None


def _read_ascii(raw: bytes, at: int) -> tuple[RecordValue, bool]:
    return raw[::-1].decode("latin-1"), False


def _read_bytes(raw: bytes, at: int) -> tuple[RecordValue, bool]:
    return raw, False


def _read_identification(raw: bytes, at: int) -> tuple[RecordValue, bool]:
    return str(_bcd(raw[:4], at)).zfill(8), False


_read_bcd = _bcd


def _read_negative_bcd(raw: bytes, at: int) -> int:
    return -_bcd(raw, at)


def _read_int(raw: bytes, at: int) -> int:
    return int.from_bytes(raw, "little", signed=True)


def _read_uint(raw: bytes, at: int) -> int:
    return int.from_bytes(raw, "little")


def _as_digits(number: Callable[[bytes, int], int], width: int) -> _Read:
    def digits(raw: bytes, at: int) -> tuple[RecordValue, bool]:
        return str(number(raw, at)).zfill(width), False

    return digits


def _as_text(number: Callable[[bytes, int], int]) -> _Read:
    def text(raw: bytes, at: int) -> tuple[RecordValue, bool]:
        return str(number(raw, at)), False

    return text


def _as_is(number: Callable[[bytes, int], int]) -> _Read:
    def plain(raw: bytes, at: int) -> tuple[RecordValue, bool]:
        return number(raw, at), False

    return plain


def _scaled_reader(number: Callable[[bytes, int], int], exponent: int) -> _Read:
    """number x 10^exponent: an int for exponent >= 0, else as ``scaled`` divides."""
    if exponent >= 0:
        factor = 10**exponent

        def times(raw: bytes, at: int) -> tuple[RecordValue, bool]:
            return number(raw, at) * factor, False

        return times
    divisor = 10**-exponent

    def divided(raw: bytes, at: int) -> tuple[RecordValue, bool]:
        return float(number(raw, at) / divisor), False

    return divided


def _scaled_int_reader(number: struct.Struct, exponent: int) -> _Read:
    """``_scaled_reader(_read_int, exponent)`` in one call per record (the most common record),
    the integer read by a precompiled struct."""
    unpack = number.unpack
    if exponent >= 0:
        factor = 10**exponent

        def times(raw: bytes, at: int) -> tuple[RecordValue, bool]:
            return unpack(raw)[0] * factor, False

        return times
    divisor = 10**-exponent

    def divided(raw: bytes, at: int) -> tuple[RecordValue, bool]:
        return unpack(raw)[0] / divisor, False  # int / int: float

    return divided


def _real_reader(quantity: str, exponent: int) -> _Read:
    def real(raw: bytes, at: int) -> tuple[RecordValue, bool]:
        value = _REAL32.unpack(raw)[0]
        if not math.isfinite(value):
            raise DecodeError(f"non-finite real value in {quantity} record", offset=at)
        return scaled(value, exponent), False

    return real


def parse_records(data: bytes, start: int = 0) -> list[Record]:
    """Parse ``data[start:]`` as M-Bus data records; offsets in errors refer to ``data``."""
    layout = _LAYOUTS.get((start, len(data)))
    if layout is not None and layout.fits(data):
        return layout.records(layout.read(data))
    records: list[Record] = []
    ends: list[int] = []  # the offset after each record (for ``_learn``)
    pos, end = start, len(data)
    while pos < end:
        if data[pos] == 0x2F:  # idle filler
            pos += 1
            continue
        record, pos = _record(data, pos)
        if record is None:
            ends.clear()  # a plain-text unit: this frame gets no layout
            break
        records.append(record)
        ends.append(pos)
    while pos < end:  # the rest of a frame with a plain-text unit: no layout
        if data[pos] == 0x2F:
            pos += 1
            continue
        record, pos = _record(data, pos)
        if record is not None:
            records.append(record)
    if len(ends) == len(records) and len(_LAYOUTS) < _LAYOUTS_KEPT:
        _learn(data, start, records, ends)
    return records


_Reading = tuple[Sequence[bytes], list[tuple[RecordValue, bool]]]  # data fields; (value, invalid)s
_Plan = tuple[tuple[int, str, "_Convert"], ...]  # record index, field, conversion (to_values)
T = TypeVar("T")


class _Layout(NamedTuple):
    """Where the data fields of a frame lie, learnt from one full parse (``_learn``).

    The parse of a frame is decided by its non-data bytes alone (DIF, DIFEs, VIF, VIFEs,
    fillers; EN 13757-3 clause 6: each DIF fixes its data field's length, except LVAR 0x0D,
    which such layouts never hold): a frame of the same length whose non-data bytes equal
    ``fixed_bytes`` parses into the same records, each data field at the same place, read by
    the same reader, its value of the same type. So such a frame is decoded by slicing, one
    reader call per record, and what depends on the headers alone (where ``to_values`` puts
    each record: ``plan``; a decoder's checks: ``Frame.shape``) is worked out once.
    """

    fixed: tuple[slice, ...]  # the non-data stretches: headers and fillers
    fixed_bytes: tuple[bytes, ...]  # what they held
    fields: tuple[slice, ...]  # one data field per record
    cut_fixed: struct.Struct  # unpacks the ``fixed`` stretches in one call
    cut_fields: struct.Struct  # unpacks the ``fields`` in one call
    headers: tuple[tuple[int, _Header | None], ...]  # offset, header (None: 0F/1F mfr data)
    readers: tuple[tuple[int, _Read], ...]  # offset, reader of each record's data field
    learnt: tuple[Record, ...]  # the records of the frame it was learnt from
    plans: dict[str, dict[int, _Plan]]  # memo of ``plan``
    shapes: dict[Callable[[Sequence[Record]], object], object]  # memo of ``Frame.shape``

    def fits(self, data: bytes) -> bool:
        return self.cut_fixed.unpack_from(data) == self.fixed_bytes

    def read(self, data: bytes) -> _Reading:
        """Every record's data field and value (``data`` fits), raising as the full parse."""
        raws = self.cut_fields.unpack_from(data)
        return raws, [read(raw, at) for (at, read), raw in zip(self.readers, raws, strict=True)]

    def records(self, read: _Reading) -> list[Record]:
        """The records, as ``_record`` makes them, of a frame that ``read`` gave ``read``."""
        records = []
        raws, values = read
        for (at, h), raw, (value, invalid) in zip(self.headers, raws, values, strict=True):
            if h is None:
                records.append(_manufacturer_data(at, raw))
                continue
            records.append(Record(
                at, h.quantity, h.unit, value, h.storage, h.tariff, h.subunit, h.function,
                h.vife, h.mfr_vife, raw, invalid, h.exponent,
            ))  # fmt: skip
        return records

    def plan(self, energy_field: str) -> dict[int, _Plan]:
        """``to_values``' routes for this layout's records, by storage number (they depend on
        headers and value types only, both fixed by the layout)."""
        plan = self.plans.get(energy_field)
        if plan is None:
            plan = self.plans[energy_field] = {}
            for storage in sorted({record.storage for record in self.learnt}):
                routes: list[tuple[int, str, _Convert]] = []
                for i, record in enumerate(self.learnt):
                    have_serial = any(name == "meter_serial" for _, name, _ in routes)
                    route = _route(record, storage, energy_field, have_serial)
                    if route is not None:
                        routes.append((i, *route))
                plan[storage] = tuple(routes)
        return plan


class Frame:
    """The data records of one frame (``parse_records``) and their values (``to_values``).

    A frame of a known layout (``_Layout``) is read into values only: its ``Record``s are built
    on first use of ``records``, ``values`` follows the layout's plan, ``shape`` is memoized.
    Any other frame is parsed in full. The results are the same either way.
    """

    __slots__ = ("_layout", "_read", "_records")

    def __init__(self, data: bytes, start: int = 0) -> None:
        layout = _LAYOUTS.get((start, len(data)))
        self._layout: _Layout | None = None
        self._records: list[Record] | None = None
        self._read: _Reading = [], []
        if layout is not None and layout.fits(data):
            self._layout, self._read = layout, layout.read(data)
        else:
            self._records = parse_records(data, start)

    @property
    def records(self) -> list[Record]:
        if self._records is None:
            assert self._layout is not None  # set together with _read
            self._records = self._layout.records(self._read)
        return self._records

    def raw(self, index: int) -> bytes:
        """The data field of record ``index``, as sent."""
        return self._read[0][index] if self._records is None else self._records[index].raw

    def value(self, index: int) -> RecordValue:
        """The value of record ``index``."""
        return self._read[1][index][0] if self._records is None else self._records[index].value

    def values(self, storage: int = 0, energy_field: str = "energy_heat_kwh") -> Values:
        """``to_values(self.records, storage=storage, energy_field=energy_field)``."""
        if self._layout is None or self._records is not None:
            return to_values(self.records, storage=storage, energy_field=energy_field)
        read = self._read[1]
        plan = self._layout.plan(energy_field).get(storage, ())
        return {name: convert(read[i][0]) for i, name, convert in plan}

    def values_by_storage(self, energy_field: str = "energy_heat_kwh") -> dict[int, Values]:
        """``values(storage, energy_field)`` of each storage number among the records,
        ascending."""
        if self._layout is None or self._records is not None:
            records = self.records
            storages = sorted({r.storage for r in records})
            return {s: to_values(records, storage=s, energy_field=energy_field) for s in storages}
        read = self._read[1]
        return {
            storage: {name: convert(read[i][0]) for i, name, convert in plan}
            for storage, plan in self._layout.plan(energy_field).items()
        }

    def shape(self, of: Callable[[Sequence[Record]], T]) -> T:
        """``of(self.records)``, for an ``of`` that reads no record's value, raw data or
        invalid flag (only what the headers say): worked out once per layout."""
        if self._layout is None:
            return of(self.records)
        shapes = self._layout.shapes
        if of not in shapes:
            shapes[of] = of(self._layout.learnt)
        return shapes[of]  # type: ignore[return-value]  # stored by this function as T


# Layouts by (start, frame length): one per key, the last frame's (a meter sends the same
# layout every time). A memo like ``_HEADERS``: ``fits`` checks every non-data byte before a
# layout is used, so a stale or foreign layout only costs the full parse. Bounded.
_LAYOUTS: dict[tuple[int, int], _Layout] = {}
_LAYOUTS_KEPT = 1024


def _learn(data: bytes, start: int, records: list[Record], ends: list[int]) -> None:
    """Keep the layout of a frame that parsed into ``records`` (each ending at ``ends``)."""
    fixed, fields, headers = [], [], []
    pos = start
    for record, end in zip(records, ends, strict=True):
        at = record.offset
        if data[at] in (0x0F, 0x1F):  # manufacturer data to the end
            header = None
        else:
            if data[at] & 0x0F == 0x0D:
                return  # variable length: the data's length is in the data
            header = _HEADERS.get(data[at : end - len(record.raw)])
            if header is None:
                return  # not kept (store full)
        fixed.append(slice(pos, end - len(record.raw)))
        fields.append(slice(end - len(record.raw), end))
        headers.append((at, header))
        pos = end
    fixed.append(slice(pos, len(data)))  # trailing fillers (or nothing)
    fixed_bytes = tuple(data[s] for s in fixed)
    # 0F/1F manufacturer data: the bytes as they are (its value, as ``_manufacturer_data``)
    readers = tuple(
        (at, _read_bytes if h is None or h.read is None else h.read) for at, h in headers
    )
    _LAYOUTS[start, len(data)] = _Layout(
        tuple(fixed),
        fixed_bytes,
        tuple(fields),
        _cutter(start, fixed, fields, keep_fixed=True),
        _cutter(start, fixed, fields, keep_fixed=False),
        tuple(headers),
        readers,
        tuple(records),
        {},
        {},
    )


def _cutter(
    start: int, fixed: list[slice], fields: list[slice], *, keep_fixed: bool
) -> struct.Struct:
    """A struct that unpacks, as bytes, the ``fixed`` stretches or the data ``fields`` (which
    alternate from ``start``: fixed, field, ..., fixed) and skips the others ("<": no alignment,
    "Ns": N bytes as they are, "Nx": N bytes skipped)."""
    keep, skip = ("s", "x") if keep_fixed else ("x", "s")
    stretches = [f"{start}x"]
    for stretch, field in zip(fixed, fields, strict=False):  # fixed has one more: the tail
        stretches += [f"{stretch.stop - stretch.start}{keep}", f"{field.stop - field.start}{skip}"]
    if keep_fixed:
        stretches.append(f"{fixed[-1].stop - fixed[-1].start}s")
    return struct.Struct("<" + "".join(stretches))


def parse_record(data: bytes, start: int) -> tuple[Record | None, int]:
    """The one record at ``data[start]`` (None: plain-text unit) and the offset after it, for
    framings that put something else between records (IoT-Factory's M-Bus gateway)."""
    pos = start
    while pos < len(data) and data[pos] == 0x2F:  # idle filler
        pos += 1
    if pos >= len(data):
        raise DecodeError("no data record", offset=start)
    return _record(data, pos)


class _Header(NamedTuple):
    """What a record's DIF..VIF(E) bytes say about its data (``_header``)."""

    storage: int
    tariff: int
    subunit: int
    function: Function
    quantity: str
    unit: str
    exponent: int
    vife: tuple[int, ...]
    mfr_vife: tuple[int, ...]
    time_factor: int  # on/operating time: seconds per count of the VIF's unit; else 1
    read: _Read | None  # the data field's reader (``_reader``); None: variable length (LVAR)


# A meter repeats the same record headers frame after frame, so the meaning of each distinct
# DIF..VIF(E) byte string (all it depends on) is worked out once (``_header``) and kept: a memo,
# no state a result depends on. Bounded: past the limit (random input) headers are still
# decoded, just not kept. Headers with errors are never kept.
_HEADERS: dict[bytes, _Header] = {}
_HEADERS_KEPT = 4096
_PLAIN_TEXT = 0x7C  # VIF: the unit follows as text (EN 13757-3 table 10); the record is skipped


def _record(data: bytes, at: int) -> tuple[Record | None, int]:
    """The record whose DIF is ``data[at]`` (not a filler) and the offset after it; None for a
    record with a plain-text unit (skipped)."""
    end = len(data)
    dif, pos = data[at], at + 1
    if dif in (0x0F, 0x1F):  # manufacturer-specific data to the end of the frame
        return _manufacturer_data(at, data[pos:]), end
    coding = dif & 0x0F
    if coding == 0x0F or coding == 0x08:
        raise DecodeError(f"reserved or unsupported DIF {dif:#04x}", offset=at)
    while data[pos - 1] & 0x80:  # DIFEs follow while bit 7 is set
        if pos >= end:
            raise DecodeError("record truncated: missing DIFE", offset=pos)
        if pos - at == 11:
            raise DecodeError("more than 10 DIFE bytes", offset=pos)
        pos += 1
    vif_at = pos
    while True:  # the VIF and its VIFEs: bit 7 says another byte follows
        if pos >= end:
            raise DecodeError("record truncated: missing VIF/VIFE", offset=pos)
        if pos - vif_at == 11:
            raise DecodeError("more than 10 VIFE bytes", offset=pos)
        pos += 1
        if not data[pos - 1] & 0x80:
            break
    if data[vif_at] & 0x7F == _PLAIN_TEXT:  # consume the unit text and the data, no record
        if pos >= end or pos + 1 + data[pos] > end:
            raise DecodeError("record truncated: plain-text VIF", offset=vif_at)
        return None, _data(data, pos + 1 + data[pos], coding, at)[1]
    header = _HEADERS.get(data[at:pos])
    if header is None:
        header = _header(data, at, vif_at, pos)
        if len(_HEADERS) < _HEADERS_KEPT:
            _HEADERS[data[at:pos]] = header
    raw, pos, kind = _data(data, pos, coding, at)
    read = header.read or _reader(
        header.quantity, coding, kind, len(raw), header.exponent, header.time_factor
    )
    value, invalid = read(raw, at)
    record = Record(
        at, header.quantity, header.unit, value, header.storage, header.tariff, header.subunit,
        header.function, header.vife, header.mfr_vife, raw, invalid, header.exponent,
    )  # fmt: skip
    return record, pos


def _manufacturer_data(at: int, raw: bytes) -> Record:
    return Record(at, "manufacturer_data", "", raw, raw=raw)


def _data(data: bytes, pos: int, coding: int, at: int) -> tuple[bytes, int, str]:
    """The data field at ``data[pos]``: (bytes, offset after it, kind binary|real|bcd|...)."""
    if coding == 0x0D:
        return _variable(data, pos, at)
    size, kind = _CODINGS[coding]
    if pos + size > len(data):
        raise DecodeError(
            f"record truncated: DIF {data[at]:#04x} needs {size} data bytes", offset=at
        )
    return data[pos : pos + size], pos + size, kind


def _header(data: bytes, at: int, vif_at: int, end: int) -> _Header:
    """The meaning of the DIF at ``data[at]``, its DIFEs and the VIF chain ``data[vif_at:end]``."""
    dif = data[at]
    storage, tariff, subunit = (dif >> 6) & 1, 0, 0
    for n, dife in enumerate(data[at + 1 : vif_at]):
        storage |= (dife & 0x0F) << (1 + 4 * n)
        tariff |= ((dife >> 4) & 0x03) << (2 * n)
        subunit |= ((dife >> 6) & 0x01) << n
    chain = data[vif_at:end]
    (quantity, unit, exponent), used = _vif_meaning(chain, vif_at)
    vife, mfr, exponent = _vifes(chain, used, quantity, exponent)
    time_factor = 1
    if quantity in ("on_time", "operating_time"):
        time_factor, exponent = _TIME_UNITS[chain[0] & 0x03], 0
    function = _FUNCTIONS[(dif >> 4) & 3]
    coding = dif & 0x0F
    size, kind = _CODINGS.get(coding, (0, ""))
    read = None if coding == 0x0D else _reader(quantity, coding, kind, size, exponent, time_factor)
    return _Header(
        storage, tariff, subunit, function, quantity, unit, exponent, vife, mfr, time_factor, read
    )


def _vifes(
    chain: bytes, used: int, quantity: str, exponent: int
) -> tuple[tuple[int, ...], tuple[int, ...], int]:
    """The VIFEs after the VIF: (combinable codes, manufacturer-specific bytes, exponent with
    the multiplicative corrections applied)."""
    vife: list[int] = []
    mfr: list[int] = []
    for i, byte in enumerate(chain[used:], used):
        code = byte & 0x7F
        if mfr or (quantity == "manufacturer"):
            mfr.append(byte)
        elif code == 0x7F:
            mfr = list(chain[i + 1 :])
            break
        elif 0x70 <= code <= 0x77:
            exponent += (code & 0x07) - 6  # multiplicative correction 10^(nnn-6)
        elif code == 0x7D:
            exponent += 3
        else:
            vife.append(code)
    return tuple(vife), tuple(mfr), exponent


# quantity -> (vocabulary field, {unit: factor to the field's unit})
_VOCABULARY: dict[str, tuple[str, dict[str, float]]] = {
    "volume": ("volume_m3", {"m3": 1.0}),
    "power": ("power_w", {"W": 1.0, "J/h": 1 / 3600}),
    "volume_flow": ("flow_m3h", {"m3/h": 1.0, "m3/min": 60.0, "m3/s": 3600.0}),
    "flow_temp": ("flow_temp_c", {"°C": 1.0}),
    "return_temp": ("return_temp_c", {"°C": 1.0}),
    "temp_diff": ("temp_diff_k", {"K": 1.0}),
    "external_temp": ("temperature_c", {"°C": 1.0}),
    "operating_time": ("operating_time_h", {"s": 1 / 3600}),
}
_KWH = {"Wh": 1e-3, "J": 1 / 3.6e6, "cal": 4.1868 / 3.6e6}  # IT calorie, as in district heating


def to_values(
    records: Sequence[Record], *, storage: int = 0, energy_field: str = "energy_heat_kwh"
) -> Values:
    """Plain registers of one storage number in our vocabulary (tariff 0, subunit 0 only).

    Energy goes to ``energy_field``; flow maxima/minima to flow_max_m3h/flow_min_m3h;
    fabrication number or identification to meter_serial; FD 17 to error_flags. Records with
    qualifying VIFEs, other tariffs/subunits, or values flagged as error state are left out.
    """
    values: Values = {}
    for r in records:
        route = _route(r, storage, energy_field, "meter_serial" in values)
        if route is not None:
            name, convert = route
            values[name] = convert(r.value)
    return values


_Convert = Callable[[Any], Value]  # a record value (of the type the route was chosen for) -> ours


def _route(
    r: Record, storage: int, energy_field: str, have_serial: bool
) -> tuple[str, _Convert] | None:
    """Where ``to_values`` puts a record, and how it converts the value; None: left out.

    Decided by the record's header and the type of its value only (never the value itself),
    so a frame layout decides it once for all frames of that layout (``_Layout.plan``).
    """
    if r.storage != storage or r.tariff or r.subunit or r.vife or r.mfr_vife:
        return None
    value, quantity = r.value, r.quantity
    if not isinstance(value, _PLAIN_VALUES) or r.function is Function.ERROR:
        return None
    if quantity in _SERIALS and not have_serial:
        return "meter_serial", str
    if quantity == "error_flags" and isinstance(value, int):
        return "error_flags", _as_value
    if isinstance(value, str):
        return None
    if quantity == "energy" and r.function is Function.INSTANTANEOUS:
        return energy_field, _times(_KWH[r.unit])
    if quantity in _VOCABULARY:
        name, factors = _VOCABULARY[quantity]
        if r.function is not Function.INSTANTANEOUS:
            if quantity != "volume_flow":
                return None
            name = "flow_max_m3h" if r.function is Function.MAXIMUM else "flow_min_m3h"
        factor = factors[r.unit]
        return name, _as_value if factor == 1 else _times(factor)
    return None


def _as_value(value: Value) -> Value:
    return value


@functools.lru_cache(maxsize=64)
def _times(factor: float) -> _Convert:
    """value x factor, cleaned of binary noise (``_clean``)."""

    def convert(value: float) -> Value:
        return _clean(value * factor)

    return convert


_PLAIN_VALUES = (int, float, str)  # record values to_values reads (not dates, bytes or None)
_SERIALS = ("fabrication_no", "identification")


def _clean(value: float) -> float:
    """Drop binary noise from unit conversion (meters send at most 12 significant digits)."""
    return float(f"{value:.14g}")
