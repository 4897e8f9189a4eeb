"""OBIS registers of SML/IEC 62056 electricity meters as vocabulary fields (pure).

Meters speaking SML (BSI TR-03109-1, EDL21) or IEC 62056-21 identify each value by an OBIS code
``A-B:C.D.E*F``; readers on LoRaWAN (KLAX, iOKE868, ...) forward such values with a unit (a DLMS
unit code, or the reader's own code) and a decimal scaler. This module maps the electricity
codes (value groups C.D.E) to our fields and converts units once.
"""

from __future__ import annotations

import re

from decoders.core import VOCABULARY, DecodeError, Kind, Register

__all__ = ["DLMS_UNITS", "OBIS_FIELDS", "OBIS_REGISTERS", "obis_field", "obis_value", "parse_obis"]

# DLMS/COSEM unit codes (IEC 62056-62) that SML carries in its valListEntry `unit`.
DLMS_UNITS: dict[int, str] = {
    27: "W", 28: "VA", 29: "var", 30: "Wh", 31: "VAh", 32: "varh", 33: "A", 35: "V", 44: "Hz",
}  # fmt: skip

# OBIS value groups C.D.E -> (field, the unit SML meters report it in).
OBIS_FIELDS: dict[tuple[int, int, int], tuple[str, str]] = {
    (1, 8, 0): ("energy_import_kwh", "Wh"),
    (2, 8, 0): ("energy_export_kwh", "Wh"),
    (1, 8, 1): ("energy_import_t1_kwh", "Wh"),
    (1, 8, 2): ("energy_import_t2_kwh", "Wh"),
    (2, 8, 1): ("energy_export_t1_kwh", "Wh"),
    (2, 8, 2): ("energy_export_t2_kwh", "Wh"),
    (3, 8, 0): ("energy_reactive_import_kvarh", "varh"),
    (4, 8, 0): ("energy_reactive_export_kvarh", "varh"),
    (16, 7, 0): ("power_w", "W"),  # sum of active power, import minus export
    (1, 7, 0): ("power_w", "W"),  # IEC meters: active power import
    (36, 7, 0): ("power_l1_w", "W"),
    (56, 7, 0): ("power_l2_w", "W"),
    (76, 7, 0): ("power_l3_w", "W"),
    (32, 7, 0): ("voltage_l1_v", "V"),
    (52, 7, 0): ("voltage_l2_v", "V"),
    (72, 7, 0): ("voltage_l3_v", "V"),
    (31, 7, 0): ("current_l1_a", "A"),
    (51, 7, 0): ("current_l2_a", "A"),
    (71, 7, 0): ("current_l3_a", "A"),
    (14, 7, 0): ("frequency_hz", "Hz"),
}

# unit symbol -> (base unit, factor to our field's unit: kWh, kvarh, W, var, V, A, Hz)
_UNITS: dict[str, tuple[str, float]] = {
    "Wh": ("Wh", 1e-3), "kWh": ("Wh", 1.0), "MWh": ("Wh", 1e3),
    "varh": ("varh", 1e-3), "kvarh": ("varh", 1.0),
    "W": ("W", 1.0), "kW": ("W", 1e3), "var": ("var", 1.0), "kvar": ("var", 1e3),
    "V": ("V", 1.0), "A": ("A", 1.0), "Hz": ("Hz", 1.0),
}  # fmt: skip

_OBIS = re.compile(
    r"^(?:(?P<a>\d{1,3})-(?P<b>\d{1,3}):)?(?P<c>\d{1,3})\.(?P<d>\d{1,3})(?:\.(?P<e>\d{1,3}))?"
    r"(?:[*&](?P<f>\d{1,3}))?$"
)


def parse_obis(text: str) -> tuple[int, int, int]:
    """The C.D.E groups of an OBIS code such as ``1-0:1.8.0*255``, ``1.8.0`` or ``1.8`` (E=0)."""
    match = _OBIS.match(text.strip())
    if match is None:
        raise DecodeError(f"not an OBIS code: {text!r}")
    return int(match["c"]), int(match["d"]), int(match["e"] or 0)


def obis_field(obis: tuple[int, int, int]) -> str | None:
    """Our field for an OBIS register (C.D.E), or None if we do not store that register."""
    entry = OBIS_FIELDS.get(obis)
    return entry[0] if entry else None


def obis_value(obis: tuple[int, int, int], value: float, unit: str | None) -> tuple[str, float]:
    """A register's (field, value in the field's unit); ``unit`` None means the SML default unit.

    Raises DecodeError for a register we do not map, or a unit that does not fit the quantity.
    """
    entry = OBIS_FIELDS.get(obis)
    if entry is None:
        raise DecodeError(f"OBIS {'.'.join(map(str, obis))} has no field")
    name, default_unit = entry
    base, factor = _UNITS.get(unit or default_unit, ("", 0.0))
    if base != default_unit:
        raise DecodeError(
            f"OBIS {'.'.join(map(str, obis))} in unit {unit!r}, expected {default_unit}"
        )
    return name, round(value * factor, 9)


# SML carries a register as an integer of up to 64 bits with a decimal scaler, IEC 62056-21 as
# digits: what wraps is the meter's display register, whose width the reader does not report.
OBIS_REGISTERS = {
    name: Register(None)
    for name, _ in OBIS_FIELDS.values()
    if VOCABULARY[name].kind is Kind.COUNTER
}
