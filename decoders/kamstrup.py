"""Kamstrup's LoRaWAN payloads (flowIQ 2200 module, HC-003-55 for MULTICAL 403/603), shared.

The LoRaWAN module sends the meter's M-Bus application layer from the CI byte on, without the
wireless M-Bus link layer (LoRaWAN encrypts; security mode must be 0):
  78 records                                   (no header)
  7A AA SS WWWW records                        (short header: access no., status, config word)
  72 IIIIIIII MMMM VV TT AA SS WWWW records    (long header; manufacturer KAM or KAW)
Records are EN 13757-3 (decoders/mbus.py) plus Kamstrup's own:
- 04 FF 23 (32 bit) / 52 FF 25 (16 bit) / 02 FF 20 (16 bit) info codes, bits 0..5: dry,
  reverse flow, leak, burst, tamper, low battery (bit order as Kamstrup's codec lists them in
  the TTS Device Repository examples) -> alarm_*; the word -> error_flags.
- 04 FF 16 module type / configuration number (installation frame: no meter value).
- A compact profile: DIF 0x4D (storage 1, variable length), VIF of the register, VIFE 0x13
  (inverse compact profile: newest first), LVAR, spacing control byte CC, spacing value NN,
  then elements. CC bits 3-0: element size (M-Bus data coding 1..4 = 1..4-byte integer),
  bits 5-4 spacing unit (0 s, 1 min, 2 h, 3 d), bits 7-6 increment mode (1: each element is
  the increase over the previous period, 0: absolute values). The base value and base time
  are the storage-1 register (44 13) and date/time (44 6D): the profile's first element is
  one spacing before the base time. A profile without its base value carries no register.

Source: EN 13757-3:2013 (records, compact profile); Kamstrup's examples for the HC-003-55 /
flowIQ 2200 LoRaWAN codec (TTS Device Repository vendor/kamstrup/mbusparser.yaml).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from decoders.core import DecodeError, Reading, Uplink, Values, unpack
from decoders.mbus import Frame, Record, parse_records, scaled, to_values
from decoders.oms import manufacturer_code

__all__ = [
    "ALARMS",
    "CI_FIRST",
    "current_info",
    "info_codes",
    "is_module_payload",
    "lorawan_readings",
    "lorawan_records",
]

CI_FIRST = (0x72, 0x78, 0x7A)
ALARMS = (
    ("alarm_dry", 0x01),
    ("alarm_backflow", 0x02),
    ("alarm_leak", 0x04),
    ("alarm_burst", 0x08),
    ("alarm_tamper", 0x10),
    ("alarm_low_battery", 0x20),
)
_INFO_VIFE = {(0x20,), (0x23,), (0x25,)}
_SPACING_S = (1, 60, 3600, 86400)
_TIMES = ("datetime", "date")


def is_module_payload(payload: bytes) -> bool:
    """A LoRaWAN module's payload: its first byte is a CI byte, not a wM-Bus frame's length."""
    return bool(payload) and payload[0] in CI_FIRST and payload[0] != len(payload) - 1


def info_codes(records: list[Record], storage: int, named: bool = True) -> Values:
    """Info-code alarms of one storage number (``named``: the water meters' bits as alarm_*),
    or nothing if the telegram has none."""
    for record in records:
        info = record.quantity == "manufacturer" and record.mfr_vife in _INFO_VIFE
        if info and record.storage == storage:
            return _info_values(record.raw, named)
    return {}


def _info_values(raw: bytes, named: bool) -> Values:
    code = int.from_bytes(raw, "little")
    alarms = {name: bool(code & bit) for name, bit in ALARMS} if named else {}
    return {"error_flags": code, **alarms}


def current_info(frame: Frame) -> Values:
    """``info_codes(frame.records, 0)``, building no record."""
    at = frame.shape(_info_codes_at)
    return {} if at is None else _info_values(frame.raw(at), True)


def _info_codes_at(records: Sequence[Record]) -> int | None:
    """The index of the record ``info_codes`` reads for storage 0, if any (for
    ``Frame.shape``: decided by the records' headers)."""
    return next(
        (
            i
            for i, r in enumerate(records)
            if r.quantity == "manufacturer" and r.mfr_vife in _INFO_VIFE and r.storage == 0
        ),
        None,
    )


def lorawan_records(payload: bytes) -> tuple[list[Record], int]:
    """The records of a payload starting at the CI byte, and the header's status byte."""
    ci = unpack("B", payload)[0]
    if ci == 0x78:
        return parse_records(payload, 1), 0
    if ci not in CI_FIRST:
        raise DecodeError(f"unsupported CI field {ci:#04x}: expected 72, 78 or 7A", offset=0)
    head = 1 if ci == 0x7A else 9
    if ci == 0x72:
        maker = manufacturer_code(unpack("<H", payload, 5)[0])
        if maker not in ("KAM", "KAW"):
            raise DecodeError(f"manufacturer {maker}, not Kamstrup (KAM/KAW)", offset=5)
    _, status, word = unpack("<BBH", payload, head)
    if (word >> 8) & 0x1F:
        raise DecodeError(f"security mode {(word >> 8) & 0x1F}: expected 0", offset=head + 2)
    return parse_records(payload, head + 4), status


def _profile(record: Record, base: Record, when: datetime, energy_field: str) -> list[Reading]:
    """The readings of an inverse compact profile: one spacing, two, ... before the base."""
    control, spacing = unpack("BB", record.raw)
    size, unit, mode = control & 0x0F, (control >> 4) & 3, control >> 6
    if size not in (1, 2, 3, 4) or mode not in (0, 1) or spacing == 0:
        raise DecodeError(
            f"unsupported compact profile control {control:#04x}", offset=record.offset
        )
    data = record.raw[2:]
    if len(data) % size:
        raise DecodeError(
            f"profile of {len(data)} bytes in {size}-byte elements", offset=record.offset
        )
    step = timedelta(seconds=spacing * _SPACING_S[unit])
    value = float(base.value) if isinstance(base.value, int | float) else 0.0
    readings = []
    for n in range(len(data) // size):
        element = scaled(int.from_bytes(data[n * size : (n + 1) * size], "little"), base.exponent)
        value = round(value - element, 9) if mode == 1 else element
        point = base._replace(value=value, storage=0)
        stamp = when - (n + 1) * step
        readings.append(Reading(to_values([point], energy_field=energy_field), stamp))
    return readings


def _base(records: list[Record], profile: Record) -> Record | None:
    for r in records:
        if (r.quantity, r.storage, r.vife, r.function) == (
            profile.quantity, profile.storage, (), profile.function
        ) and isinstance(r.value, int | float):  # fmt: skip
            return r
    return None


def lorawan_readings(uplink: Uplink, extra: Values, water: bool = True) -> list[Reading]:
    """Readings of a CI-first payload: current values, each dated storage, compact profiles.

    ``extra`` joins the first reading; ``water``: info codes as the water meters' alarms (heat
    meters' codes mean other things: error_flags only). Raises DecodeError
    when no reading holds a register (installation frames, a profile without its base).
    """
    records, _ = lorawan_records(uplink.payload)
    energy_field = "energy_heat_kwh"
    result: list[Reading] = []
    for storage in sorted({r.storage for r in records}):
        values = to_values(records, storage=storage, energy_field=energy_field)
        stamp = next(
            (r.value for r in records if r.storage == storage and r.quantity in _TIMES), None
        )
        when = uplink.meter_time(stamp) if isinstance(stamp, datetime) else None
        if storage and when is None:
            values = {}  # a stored value without its date is of no use
        if values:
            result.append(Reading({**values, **info_codes(records, storage, water)}, when))
        for profile in (r for r in records if r.storage == storage and r.vife == (0x13,)):
            base = _base(records, profile)
            if base is None or when is None:
                raise DecodeError("compact profile without its base value", offset=profile.offset)
            result += _profile(profile, base, when, energy_field)
    registers = {"volume_m3", energy_field}
    if not any(registers & r.values.keys() for r in result):
        raise DecodeError("no meter register in the frame (installation or status frame)")
    result[0] = result[0]._replace(values={**result[0].values, **extra})
    return result
