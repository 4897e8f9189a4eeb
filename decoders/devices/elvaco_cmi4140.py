"""Elvaco CMi4140: LoRaWAN module for Kamstrup MULTICAL 403/603/803 heat and cooling meters.

fPort 2, byte 0 = message format, then M-Bus records (EN 13757-3), integers LSB first:
  15 Standard     energy E1/E3, volume, power, flow, flow temp, return temp, 0C78 meter ID,
                  04FD17 info bits
  16 Compact      energy, meter ID, info bits
  18 Scheduled - daily redundant   energy (Wh/J/Cal), volume, 0C 78 IIIIIIII meter ID,
                  04 FD17 SSSSSSSS info bits, 04 6D meter date/time, energy at 24:00 (storage 1)
  19 Scheduled - extended          energy, volume,
                  07 FF A0 SS TTTT RRRR FFFF PPPP   (fw/rt temp 0.01 °C, flow, power; SS scaling)
                  07 FF 21 SSSSSSSS IIIIIIII        (info bits uint32, meter ID uint32 binary),
                  04 6D meter date/time
  FA Clock message                 046D date/time -> no reading
- Energy VIF 03-07 (Wh..10 kWh), 0E/0F (MJ), FB 0D-0F (MCal); volume VIF 13-17.
- Info bits are Kamstrup's, kept raw in error_flags. JSON (17), Combined heat/cooling (1A),
  Heat Intelligence (1B), Extended+ (3B/3C) and the pulse formats are rejected.

Source: Elvaco CMi4140 User's Manual v1.1 (2020-06), tables 10-14 (message formats). The TTS
Device Repository example for this module (cmi4140-codec.yaml) carries a CMi4110 payload whose
listed output does not match its bytes, so it is not used.
"""

from decoders.core import Decoder, Example, Reading, Uplink
from decoders.elvaco import (
    COMPACT,
    DAILY,
    EXTENDED,
    FIELDS,
    REGISTERS,
    STANDARD,
    Format,
    decode_cmi,
)

FORMATS = {
    0x15: Format("Standard", STANDARD),
    0x16: Format("Compact", COMPACT),
    0x17: Format("JSON", supported=False),
    0x18: Format("Scheduled - daily redundant", DAILY),
    0x19: Format("Scheduled - extended", EXTENDED),
    **{n: Format("format", supported=False) for n in (0x1A, 0x1B, 0x1C, 0x1D, 0x3B, 0x3C)},
    **{n: Format("format", supported=False) for n in (0x4D, 0x4E, 0x4F)},
}
_EXT = "0406E8030000 041410270000 07FFA033 8F19 AC0F D204 983A 07FF21 04000000 4E61BC00"
_DAILY = "0406E8030000 041410270000 0C7878563412 04FD1700000000 046D1E0A0F33"


def decode(uplink: Uplink) -> list[Reading]:
    return decode_cmi(uplink, FORMATS)


DECODER = Decoder(
    vendor="Elvaco",
    model="CMi4140",
    medium="heat",
    lorawan_ids=("elvaco/cmi4140",),
    decode=decode,
    fields=FIELDS,
    registers=REGISTERS,
    examples=(
        Example(
            "scheduled extended with compound records (ours)",
            f_port=2,
            hex=f"19 {_EXT} 046D000C0F33",
            expect=[
                {
                    "time": "2024-03-15T12:00:00Z",
                    "energy_heat_kwh": 1000.0,
                    "volume_m3": 100.0,
                    "flow_temp_c": 65.43,
                    "return_temp_c": 40.12,
                    "flow_m3h": 1.234,
                    "power_w": 15000.0,
                    "error_flags": 4,
                    "meter_serial": "12345678",
                }
            ],
        ),
        Example(
            "scheduled daily redundant (ours)",
            f_port=2,
            hex=f"18 {_DAILY} 4406E0030000",
            expect=[
                {
                    "time": "2024-03-15T10:30:00Z",
                    "energy_heat_kwh": 1000.0,
                    "volume_m3": 100.0,
                    "meter_serial": "12345678",
                    "error_flags": 0,
                },
                {"time": "2024-03-15T00:00:00Z", "energy_heat_kwh": 992.0},
            ],
        ),
        Example("wrong port", f_port=9, hex=f"19 {_EXT}", error="unexpected fPort"),
        Example("daily without 24:00 value", f_port=2, hex=f"18 {_DAILY}", error="lacks records"),
        Example("CMi4110 format id", f_port=2, hex=f"00 {_DAILY}", error="unknown message format"),
    ),
)
