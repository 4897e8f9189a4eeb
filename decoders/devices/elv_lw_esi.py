"""ELV ELV-LW-ESI: LoRaWAN energy sensor interface (ES-IEC, ES-LED, ES-Fer sensors on a meter).

fPort 10. A header, then typed records:  NN RR VVVV  { 01 CC UU EEEEEEEEEE PP WWWWWWWW | 02 ... }
- N: header length after this byte (3 in firmware 1.0.x; longer headers are skipped)
- R: low nibble = send reason: 1 timer, 2 button, 3 power event, 4 calibration
- V: internal supply voltage, mV, uint16 BE (USB powered: not a battery; not emitted)
Record 0x01, energy data (13 bytes):
- C: bits 0-5 = register direction: 1 consumption (A+), 2 delivery (A-)
- U: bits 0-1 = counter unit: 0 Wh, 1 kWh, 2 m³ (gas sensor); bits 2-3 = counter overflowed once
- E: energy counter, uint40 little-endian, in 1/10000 of the unit
- P: bits 0-1 = power unit: 0 W, 1 kW, 2 m³/h; bit 2 = power is negative
- W: power, uint32 little-endian, in 1/100 of the unit
Record 0x02, IR sensor settings (7 bytes): 3 x int16 LE (sensitivity, thresholds), not emitted.

A frame must carry at least one energy record (header-only frames hold no meter value). The
first energy record's power becomes power_w. Gas (m³) records are rejected: this decoder's
medium is electricity; an ESI on a gas meter is elv_lw_esi_gas.

Source: ELV-LW-ESI payload parser V1.0.0 and codec examples in the TTS Device Repository
(TheThingsNetwork/lorawan-devices vendor/elv/elv-lw-esi.js, elv-lw-esi-codec.yaml); ELV
"Bau- und Bedienungsanleitung ELV-LW-ESI" (sensors ES-IEC, ES-Gas, ES-LED, ES-Fer).
"""

from decoders.core import DecodeError, Decoder, Example, Register, Uplink, Values
from decoders.elv import energy_records

_REGISTER = {1: "energy_import_kwh", 2: "energy_export_kwh"}
_COUNTER_TO_KWH = {0: 1 / 1000, 1: 1.0}  # Wh, kWh
_POWER_TO_W = {0: 1.0, 1: 1000.0}  # W, kW


def decode(uplink: Uplink) -> Values:
    values: Values = {}
    for record in energy_records(uplink):
        i = record.offset
        register = _REGISTER.get(record.direction)
        if register is None:
            raise DecodeError(f"unknown register direction {record.direction}", offset=i + 1)
        if record.unit not in _COUNTER_TO_KWH:
            what = "a gas register (m³)" if record.unit == 2 else f"unit code {record.unit}"
            raise DecodeError(f"energy record holds {what}, expected Wh or kWh", offset=i + 2)
        if register in values:
            raise DecodeError(f"second {register} record in one frame", offset=i)
        if record.power_unit & 0x03 not in _POWER_TO_W:
            code = record.power_unit & 0x03
            raise DecodeError(f"power unit code {code}, expected W or kW", offset=i + 8)
        values[register] = round(record.counter / 10000 * _COUNTER_TO_KWH[record.unit], 7)
        if "power_w" not in values:
            sign = -1 if record.power_unit & 0x04 else 1
            scale = _POWER_TO_W[record.power_unit & 0x03]
            values["power_w"] = round(sign * record.power / 100 * scale, 2)
    return values


DECODER = Decoder(
    vendor="ELV",
    model="ELV-LW-ESI",
    medium="electricity",
    lorawan_ids=("elv/elv-lw-esi",),
    description="LoRaWAN energy sensor interface for electricity meters (IEC, LED, Ferraris)",
    decode=decode,
    fields=("energy_import_kwh", "energy_export_kwh", "power_w"),
    registers={  # uint40 in 1/10000 Wh or kWh: the unit is in the frame; the ESI flags overflows
        "energy_import_kwh": Register(None),
        "energy_export_kwh": Register(None),
    },
    examples=(
        Example(
            "consumption, Wh counter and W power (ours)",
            f_port=10,
            hex="03 01 0BB8 01 01 00 40420F0000 00 10270000",
            expect={"energy_import_kwh": 0.1, "power_w": 100.0},
        ),
        Example(
            "IR settings, then delivery register with negative power (ours)",
            f_port=10,
            hex="03 01 0BB8 02 6400 C800 2C01 01 02 01 A086010000 04 D0070000",
            expect={"energy_export_kwh": 10.0, "power_w": -20.0},
        ),
        Example("wrong port", f_port=2, hex="03 01 0BDE", error="unexpected fPort"),
        Example("header only", f_port=10, hex="03 03 0BDE", error="no energy record"),
        Example(
            "gas register",
            f_port=10,
            hex="03 01 0BE2 01 01 02 9087010000 02 96000000",
            error="gas register",
        ),
        Example("unknown record", f_port=10, hex="03 01 0BDE 07 00", error="unknown record"),
        Example("cut record", f_port=10, hex="03 01 0BDE 01 01 01 88", error="payload length"),
    ),
)
