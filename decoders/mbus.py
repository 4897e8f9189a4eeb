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
import math
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from decoders.core import DecodeError, Values

__all__ = ["Function", "Record", "parse_record", "parse_records", "scaled", "to_values"]

RecordValue = float | int | str | datetime | bytes | None


class Function(enum.Enum):
    """The DIF function field."""

    INSTANTANEOUS = 0
    MAXIMUM = 1
    MINIMUM = 2
    ERROR = 3  # value during error state


@dataclass(frozen=True)
class Record:
    """One data record: what it measures, its value and which register (storage/tariff/subunit)."""

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


_LENGTHS = {0: 0, 1: 1, 2: 2, 3: 3, 4: 4, 5: 4, 6: 6, 7: 8, 9: 1, 10: 2, 11: 3, 12: 4, 14: 6}
_BCD = {9, 10, 11, 12, 14}


def scaled(mantissa: float, exponent: int) -> float:
    """``mantissa * 10**exponent`` without binary rounding noise for negative exponents."""
    return float(mantissa * 10**exponent if exponent >= 0 else mantissa / 10**-exponent)


# Primary VIF table: (first code, count, quantity, unit, exponent of code `first`).
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


def _lookup(table: tuple[tuple[int, int, str, str, int], ...], code: int) -> tuple[str, str, int]:
    for first, count, quantity, unit, exponent in table:
        if first <= code < first + count:
            return quantity, unit, exponent + code - first
    return "", "", 0


def _vif_meaning(vif: tuple[int, ...], at: int) -> tuple[str, str, int, int]:
    """(quantity, unit, decimal exponent, VIF bytes consumed) of a VIF chain."""
    code = vif[0] & 0x7F
    if code in (0x7B, 0x7D):
        if len(vif) < 2:
            raise DecodeError(f"VIF {vif[0]:#04x} needs an extension byte", offset=at)
        ext = vif[1] & 0x7F
        if code == 0x7B:
            quantity, unit, exponent = _lookup(_FB, ext)
        elif ext in _FD_PLAIN:
            quantity, unit, exponent = _FD_PLAIN[ext], "", 0
        else:
            quantity, unit, exponent = _lookup(_FD, ext)
        if not quantity:
            raise DecodeError(f"unsupported VIF {vif[0]:02X} {vif[1]:02X}", offset=at)
        return quantity, unit, exponent, 2
    quantity, unit, exponent = _lookup(_PRIMARY, code)
    if quantity:
        return quantity, unit, exponent, 1
    if 0x20 <= code <= 0x27:
        name = "on_time" if code < 0x24 else "operating_time"
        return name, "s", 0, 1
    simple = {0x6C: "date", 0x6D: "datetime", 0x6E: "hca_units", 0x78: "fabrication_no"}
    simple |= {0x79: "identification", 0x7A: "bus_address", 0x7F: "manufacturer"}
    if code in simple:
        return simple[code], "", 0, 1
    raise DecodeError(f"unsupported VIF {vif[0]:#04x}", offset=at)


def _bcd(data: bytes, at: int) -> int:
    digits = data[::-1].hex()
    sign = 1
    if digits and digits[0] == "f":  # EN 13757-3 type A: 0xF in the top nibble = negative
        sign, digits = -1, digits[1:]
    if not digits.isdigit():
        raise DecodeError(f"invalid BCD digits {data.hex()}", offset=at)
    return sign * int(digits or "0")


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


def _value(
    quantity: str, coding: int, kind: str, raw: bytes, exponent: int, at: int
) -> tuple[RecordValue, bool]:
    """The record's value in its unit, and whether the meter flagged it invalid."""
    if coding == 0:
        return None, False
    if quantity in ("date", "datetime"):
        if kind != "binary" or len(raw) not in ((2,) if quantity == "date" else (4, 6)):
            raise DecodeError(f"{quantity} record with unexpected coding {coding:#x}", offset=at)
        when = _date_g(int.from_bytes(raw, "little"), at) if len(raw) == 2 else None
        when = _date_time(raw, at) if len(raw) != 2 else when
        return when, when is None
    if kind == "ascii":
        return raw[::-1].decode("latin-1"), False
    if quantity == "manufacturer":
        return raw, False
    if kind in ("bcd", "-bcd"):
        number = _bcd(raw, at) * (-1 if kind == "-bcd" else 1)
        if quantity in _IDENTIFIERS:
            return str(number).zfill(2 * len(raw)), False
    elif kind == "real":
        real = struct.unpack("<f", raw)[0]
        if not math.isfinite(real):
            raise DecodeError(f"non-finite real value in {quantity} record", offset=at)
        return scaled(real, exponent), False
    elif quantity == "identification" and len(raw) == 8:  # ID (BCD), manufacturer, version, medium
        return str(_bcd(raw[:4], at)).zfill(8), False
    else:
        signed = quantity not in _IDENTIFIERS
        number = int.from_bytes(raw, "little", signed=signed)
        if quantity in ("fabrication_no", "identification"):
            return str(number), False
    if quantity in _IDENTIFIERS or not _has_unit(quantity):
        return number, False
    return (number * 10**exponent if exponent >= 0 else scaled(number, exponent)), False


def _has_unit(quantity: str) -> bool:
    return quantity not in _FD_PLAIN.values() and quantity not in ("hca_units", "bus_address")


def parse_records(data: bytes, start: int = 0) -> list[Record]:
    """Parse ``data[start:]`` as M-Bus data records; offsets in errors refer to ``data``."""
    return [record for record, _ in _walk(data, start) if record is not None]


def parse_record(data: bytes, start: int) -> tuple[Record | None, int]:
    """The one record at ``data[start]`` (None: plain-text unit) and the offset after it, for
    framings that put something else between records (IoT-Factory's M-Bus gateway)."""
    for found in _walk(data, start):
        return found
    raise DecodeError("no data record", offset=start)


def _walk(data: bytes, start: int) -> Iterator[tuple[Record | None, int]]:
    pos = start
    while pos < len(data):
        at, dif = pos, data[pos]
        pos += 1
        if dif == 0x2F:
            continue  # idle filler
        if dif in (0x0F, 0x1F):
            yield Record(at, "manufacturer_data", "", data[pos:], raw=data[pos:]), len(data)
            return
        coding = dif & 0x0F
        if coding == 0x0F or coding == 0x08:
            raise DecodeError(f"reserved or unsupported DIF {dif:#04x}", offset=at)
        storage, tariff, subunit = (dif >> 6) & 1, 0, 0
        ext, n = dif & 0x80, 0
        while ext:
            if pos >= len(data):
                raise DecodeError("record truncated: missing DIFE", offset=pos)
            if n == 10:
                raise DecodeError("more than 10 DIFE bytes", offset=pos)
            dife = data[pos]
            storage |= (dife & 0x0F) << (1 + 4 * n)
            tariff |= ((dife >> 4) & 0x03) << (2 * n)
            subunit |= ((dife >> 6) & 0x01) << n
            ext, n, pos = dife & 0x80, n + 1, pos + 1
        vif_at = pos
        chain: list[int] = []
        while not chain or chain[-1] & 0x80:
            if pos >= len(data):
                raise DecodeError("record truncated: missing VIF/VIFE", offset=pos)
            if len(chain) == 11:
                raise DecodeError("more than 10 VIFE bytes", offset=pos)
            chain.append(data[pos])
            pos += 1
        plain_text = chain[0] & 0x7F == 0x7C
        if plain_text:  # unit given as text after the VIF chain: consume and skip the record
            if pos >= len(data) or pos + 1 + data[pos] > len(data):
                raise DecodeError("record truncated: plain-text VIF", offset=vif_at)
            pos += 1 + data[pos]
            quantity, unit, exponent, used = "plain_text", "", 0, 1
        else:
            quantity, unit, exponent, used = _vif_meaning(tuple(chain), vif_at)
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
        if coding == 0x0D:
            raw, pos, kind = _variable(data, pos, at)
        else:
            size = _LENGTHS[coding]
            if pos + size > len(data):
                raise DecodeError(
                    f"record truncated: DIF {dif:#04x} needs {size} data bytes", offset=at
                )
            raw, pos = data[pos : pos + size], pos + size
            kind = "bcd" if coding in _BCD else "real" if coding == 5 else "binary"
        if plain_text:
            yield None, pos
            continue
        if quantity in ("on_time", "operating_time"):
            factor = _TIME_UNITS[chain[0] & 0x03]
            exponent = 0
        else:
            factor = 1
        value, invalid = _value(quantity, coding, kind, raw, exponent, at)
        if factor != 1 and isinstance(value, int | float):
            value = value * factor
        yield (
            Record(
                at,
                quantity,
                unit,
                value,
                storage,
                tariff,
                subunit,
                Function((dif >> 4) & 3),
                tuple(vife),
                tuple(mfr),
                raw,
                invalid,
                exponent,
            ),
            pos,
        )


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
    records: list[Record], *, storage: int = 0, energy_field: str = "energy_heat_kwh"
) -> Values:
    """Plain registers of one storage number in our vocabulary (tariff 0, subunit 0 only).

    Energy goes to ``energy_field``; flow maxima/minima to flow_max_m3h/flow_min_m3h;
    fabrication number or identification to meter_serial; FD 17 to error_flags. Records with
    qualifying VIFEs, other tariffs/subunits, or values flagged as error state are left out.
    """
    values: Values = {}
    for r in records:
        if r.storage != storage or r.tariff or r.subunit or r.vife or r.mfr_vife:
            continue
        if not isinstance(r.value, int | float | str) or r.function is Function.ERROR:
            continue
        if r.quantity in ("fabrication_no", "identification") and "meter_serial" not in values:
            values["meter_serial"] = str(r.value)
        elif r.quantity == "error_flags" and isinstance(r.value, int):
            values["error_flags"] = r.value
        elif isinstance(r.value, str):
            continue
        elif r.quantity == "energy" and r.function is Function.INSTANTANEOUS:
            values[energy_field] = _kwh(r)
        elif r.quantity in _VOCABULARY:
            name, factors = _VOCABULARY[r.quantity]
            if r.function is not Function.INSTANTANEOUS:
                if r.quantity != "volume_flow":
                    continue
                name = "flow_max_m3h" if r.function is Function.MAXIMUM else "flow_min_m3h"
            factor = factors[r.unit]
            value = r.value if factor == 1 else _clean(r.value * factor)
            values[name] = value
    return values


def _kwh(record: Record) -> float:
    """An energy record in kWh."""
    assert isinstance(record.value, int | float)
    return _clean(record.value * _KWH[record.unit])


def _clean(value: float) -> float:
    """Drop binary noise from unit conversion (meters send at most 12 significant digits)."""
    return float(f"{value:.14g}")
