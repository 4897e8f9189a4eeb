"""ELV-LW-ESI frames (fPort 10): the header and the typed records, shared by its decoders.

Layout drawn in decoders/devices/elv_lw_esi.py (electricity) and elv_lw_esi_gas.py (gas).
"""

from __future__ import annotations

from dataclasses import dataclass

from decoders.core import DecodeError, Uplink, unpack

__all__ = ["EnergyRecord", "energy_records"]

_ENERGY, _IR_SETTINGS = 0x01, 0x02
_RECORD_LENGTH = {_ENERGY: 13, _IR_SETTINGS: 7}


@dataclass(frozen=True)
class EnergyRecord:
    """Record 0x01: register direction, counter unit code and value (1/10000 of the unit),
    power unit code (bit 2: negative) and value (1/100 of the unit), and where it starts."""

    direction: int
    unit: int
    counter: int
    power_unit: int
    power: int
    offset: int


def energy_records(uplink: Uplink) -> list[EnergyRecord]:
    """The frame's energy records (IR-settings records skipped); at least one, or DecodeError."""
    if uplink.f_port != 10:
        raise DecodeError(f"unexpected fPort {uplink.f_port}, expected 10")
    payload = uplink.payload
    (header_length,) = unpack("B", payload)
    if header_length < 3:
        raise DecodeError(f"header length {header_length}, expected at least 3", offset=0)
    unpack(f"{header_length}s", payload, 1)  # the whole header must be there
    i, found = 1 + header_length, []
    while i < len(payload):
        kind = payload[i]
        if kind not in _RECORD_LENGTH:
            raise DecodeError(f"unknown record type {kind:#04x}, expected 0x01 or 0x02", offset=i)
        unpack(f"{_RECORD_LENGTH[kind]}s", payload, i)  # DecodeError on a cut record
        if kind == _ENERGY:
            direction, unit = unpack("<BB", payload, i + 1)
            counter = int.from_bytes(payload[i + 3 : i + 8], "little")
            power_unit, power = unpack("<BI", payload, i + 8)
            found.append(EnergyRecord(direction & 0x3F, unit & 0x03, counter, power_unit, power, i))
        i += _RECORD_LENGTH[kind]
    if not found:
        raise DecodeError("frame holds no energy record (type 0x01)", offset=len(payload))
    return found
