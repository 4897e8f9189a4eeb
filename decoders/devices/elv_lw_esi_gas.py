"""ELV-LW-ESI with the ES-Gas sensor: LoRaWAN reader on a gas meter's counter (reflex/magnet).

fPort 10. A header, then typed records:  NN RR VVVV  { 01 CC UU EEEEEEEEEE PP WWWWWWWW | 02 ... }
- N: header length after this byte (3 in firmware 1.0.x; longer headers are skipped)
- R: low nibble = send reason; V: supply voltage, mV (not emitted)
Record 0x01, counter data (13 bytes):
- C: bits 0-5 = register direction, 1 = consumption (the only one a gas meter has)
- U: bits 0-1 = counter unit, 2 = m³ (Wh/kWh records belong to an electricity meter: rejected)
- E: counter, uint40 little-endian, in 1/10000 m³      -> volume_m3
- P: bits 0-1 = flow unit, 2 = m³/h
- W: flow, uint32 little-endian, in 1/100 m³/h         -> flow_m3h
Record 0x02 (IR sensor settings, 7 bytes) is skipped. A frame needs one counter record.

Source: ELV "Bau- und Bedienungsanleitung ELV-LW-ESI" (sensor ES-Gas) and the ELV-LW-ESI payload
parser in the TTS Device Repository (vendor/elv/elv-lw-esi.js: counter unit 2 = m³, power unit
2 = m³/h); decoders/elv.py parses the frame.
"""

from decoders.core import DecodeError, Decoder, Example, Register, Uplink, Values
from decoders.elv import energy_records

_M3, _M3H = 2, 2


def decode(uplink: Uplink) -> Values:
    records = energy_records(uplink)
    if len(records) != 1:
        raise DecodeError(f"{len(records)} counter records, a gas meter has one", offset=0)
    record = records[0]
    if record.direction != 1:
        raise DecodeError(
            f"register direction {record.direction}, expected 1", offset=record.offset
        )
    if record.unit != _M3:
        raise DecodeError(f"counter unit code {record.unit}, expected 2 (m³)", offset=record.offset)
    if record.power_unit & 0x03 != _M3H:
        raise DecodeError("flow unit is not m³/h", offset=record.offset + 8)
    return {
        "volume_m3": round(record.counter / 10000, 4),
        "flow_m3h": round(record.power / 100, 2),
    }


_HEAD = "03 01 0BDE"

DECODER = Decoder(
    vendor="ELV",
    model="ELV-LW-ESI with ES-Gas",
    medium="gas",
    decode=decode,
    fields=("volume_m3", "flow_m3h"),
    registers={"volume_m3": Register(2**40 / 10000)},  # uint40 in 0.1 l
    examples=(
        Example(  # ours: 12345.6789 m³, 1.25 m³/h
            "gas counter and flow",
            f_port=10,
            hex=f"{_HEAD} 01 01 02 15CD5B0700 02 7D000000",
            expect={"volume_m3": 12345.6789, "flow_m3h": 1.25},
        ),
        Example(
            "electricity record",
            f_port=10,
            hex=f"{_HEAD} 01 01 01 15CD5B0700 00 7D000000",
            error="expected 2",
        ),
        Example("header only", f_port=10, hex=_HEAD, error="no energy record"),
        Example(
            "wrong port", f_port=1, hex=f"{_HEAD} 01 01 02 15CD5B0700 02 7D000000", error="fPort"
        ),
    ),
)
