"""Elvaco CMi41xx LoRaWAN modules: message-format byte + M-Bus records, shared by the decoders.

Every data message is  FF RR RR ...  where FF is the message-format identifier (unique across the
CMi41xx family) and RR are EN 13757-3 data records (decoders/mbus.py). 0xFA is the daily clock
message (one 04 6D / 34 6D date-time record). The Scheduled formats carry the meter date/time
(04 6D, the reading's time) and, in "daily redundant", the energy read at 24:00 (storage 1).
Elvaco's compound records (manufacturer VIF 0xFF), per the CMi41xx user's manuals:
- 07 FF A0 SS TTTT RRRR FFFF PPPP  SS: bits 6-4 n (power 10^(n-3) W), bits 2-0 m (flow
  10^(m-6) m³/h); T/R flow/return temperature 0.01 °C; F flow; P power (int16, LSB first).
- 06 FF 21 AAAA IIIIIIII           alarm codes uint16, meter ID uint32 (CMi4130)
- 07 FF 21 AAAAAAAA IIIIIIII       info bits uint32, meter ID uint32 binary (CMi4140)
- 0D FF 21 E9 AA IIIIIIII MMMM VV TT  error flags, meter ID BCD8, manufacturer, version,
  device type (CMi4160)
- 04 8x FF 02 EEEEEEEE             cooling energy (VIF 0x8x energy + manufacturer VIFE 02)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from decoders.core import DecodeError, Reading, Register, Uplink, Values
from decoders.mbus import Frame, Record, scaled, to_values

__all__ = [
    "COMPACT",
    "DAILY",
    "EXTENDED",
    "FIELDS",
    "REGISTERS",
    "STANDARD",
    "Format",
    "decode_cmi",
]

FIELDS = (
    "energy_heat_kwh", "energy_cooling_kwh", "volume_m3", "power_w", "flow_m3h", "flow_temp_c",
    "return_temp_c", "meter_serial", "error_flags",
)  # fmt: skip
# The heat meter's registers, as M-Bus records: BCD8 or int32 in the unit its VIF names (kWh,
# 10 kWh, MWh, GJ; 0.01 m³ or litres), so the wrap depends on the meter's configuration, not on
# the module: no rollover declared (metering's reset detection covers a display wrap).
REGISTERS = {
    "energy_heat_kwh": Register(None),
    "energy_cooling_kwh": Register(None),
    "volume_m3": Register(None),
}
PORTS = (2, 3)  # data on port 2; the CMi4110 manual v1.3 puts Scheduled messages on port 3

# The records a message format must contain (tags as made by _tag), so a cut message is rejected.
STANDARD = ("energy", "volume", "power", "volume_flow", "flow_temp", "return_temp", "id", "error")
COMPACT = ("energy", "id", "error")
DAILY = ("energy", "volume", "id", "error", "datetime", "energy@1")
EXTENDED = ("energy", "volume", "mfr:a0", "mfr:21", "datetime")


@dataclass(frozen=True)
class Format:
    """One message format of a module: its name and the records it must contain."""

    name: str
    required: tuple[str, ...] = ()
    supported: bool = True


# Record quantities under the short names the formats' required tags use.
_TAG_NAMES = {"fabrication_no": "id", "identification": "id", "error_flags": "error"}


def _tag(record: Record) -> str:
    if record.mfr_vife:
        if record.quantity == "manufacturer":
            return f"mfr:{record.mfr_vife[0]:02x}"
        if record.quantity == "energy" and record.mfr_vife == (0x02,):
            return "cooling"
    name = _TAG_NAMES.get(record.quantity, record.quantity)
    return name if record.storage == 0 else f"{name}@{record.storage}"


def _int16(raw: bytes, at: int) -> int:
    return int.from_bytes(raw[at : at + 2], "little", signed=True)


def _compound(record: Record) -> Values:
    """Values of Elvaco's manufacturer-specific compound records (layouts in the docstring)."""
    raw, vife = record.raw, record.mfr_vife
    if vife[:1] == (0xA0,) and len(vife) == 2 and len(raw) == 8:
        power_exp, flow_exp = (vife[1] >> 4) & 0x07, vife[1] & 0x07
        return {
            "flow_temp_c": _int16(raw, 0) / 100,
            "return_temp_c": _int16(raw, 2) / 100,
            "flow_m3h": scaled(_int16(raw, 4), flow_exp - 6),
            "power_w": scaled(_int16(raw, 6), power_exp - 3),
        }
    if vife == (0x21,) and len(raw) in (6, 8):
        flags = len(raw) - 4
        return {
            "error_flags": int.from_bytes(raw[:flags], "little"),
            "meter_serial": str(int.from_bytes(raw[flags:], "little")),
        }
    if vife == (0x21,) and len(raw) == 9:
        digits = raw[1:5][::-1].hex()
        if not digits.isdigit():
            raise DecodeError(f"invalid BCD meter ID {digits}", offset=record.offset)
        return {"error_flags": raw[0], "meter_serial": digits}
    if record.quantity == "energy" and vife == (0x02,) and isinstance(record.value, int | float):
        cooling = to_values([Record(0, "energy", record.unit, record.value)], energy_field="c")
        return {"energy_cooling_kwh": cooling["c"]}
    return {}


def _midnight(day: datetime) -> datetime:
    return day.replace(hour=0, minute=0, second=0)


def decode_cmi(uplink: Uplink, formats: Mapping[int, Format]) -> list[Reading]:
    """Decode one CMi41xx uplink: the current reading plus one reading per storage number."""
    if uplink.f_port not in PORTS:
        raise DecodeError(f"unexpected fPort {uplink.f_port}, expected 2 or 3")
    if not uplink.payload:
        raise DecodeError("empty payload: expected a message-format byte", offset=0)
    header = uplink.payload[0]
    fmt = formats.get(header)
    if header != 0xFA and fmt is None:
        raise DecodeError(f"unknown message format {header:#04x} for this module", offset=0)
    if fmt is not None and not fmt.supported:
        raise DecodeError(f"message format {header:#04x} ({fmt.name}) is not supported", offset=0)
    frame = Frame(uplink.payload, 1)
    shape = frame.shape(_shape)
    if fmt is None:
        if shape.quantities != ("datetime",):
            raise DecodeError("clock message must hold one date/time record", offset=1)
        return []  # the meter clock alone; nothing to store
    if not shape.tags.issuperset(fmt.required):
        missing = [t for t in fmt.required if t not in shape.tags]
        raise DecodeError(f"{fmt.name} message lacks records {missing}", offset=len(uplink.payload))
    values = frame.values()
    if shape.compound:
        for record in frame.records:
            if record.mfr_vife or record.quantity == "manufacturer":
                values |= _compound(record)
    now = None if shape.now_at is None else frame.value(shape.now_at)
    main_time = uplink.meter_time(now) if isinstance(now, datetime) else None
    readings = [Reading(values, main_time)]
    for storage, dates_at in shape.stored:
        dated = [v for i in dates_at if (v := frame.value(i))]
        stored = frame.values(storage)
        stored.pop("meter_serial", None)
        if dated and isinstance(dated[0], datetime):
            when: datetime | None = dated[0]
        elif storage == 1 and isinstance(now, datetime):
            when = _midnight(now)  # "accumulated energy at 24:00" of the meter's current day
        else:
            when = None
        if stored and when is not None:
            readings.append(Reading(stored, uplink.meter_time(when)))
    return [r for r in readings if r.values]


class _Shape(NamedTuple):
    """What a frame's record headers say (``Frame.shape``: worked out once per layout)."""

    quantities: tuple[str, ...]
    tags: frozenset[str]  # as ``_tag`` names them
    compound: bool  # holds Elvaco compound or other manufacturer-specific records
    now_at: int | None  # the first date/time record of storage 0 (the meter's clock)
    stored: tuple[tuple[int, tuple[int, ...]], ...]  # storage > 0 ascending, its date records


def _shape(records: Sequence[Record]) -> _Shape:
    dates = [(i, r.storage, r.quantity) for i, r in enumerate(records) if r.quantity in _DATES]
    storages = sorted({r.storage for r in records} - {0})
    return _Shape(
        tuple(r.quantity for r in records),
        frozenset(_tag(r) for r in records),
        any(r.mfr_vife or r.quantity == "manufacturer" for r in records),
        next((i for i, s, q in dates if q == "datetime" and s == 0), None),
        tuple((s, tuple(i for i, d, _ in dates if d == s)) for s in storages),
    )


_DATES = ("date", "datetime")
