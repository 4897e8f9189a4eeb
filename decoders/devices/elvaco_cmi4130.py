"""Elvaco CMi4130: LoRaWAN module for Itron CF Echo II / CF 51 / CF 55 / UltraMaxx heat meters.

fPort 2, byte 0 = message format, then M-Bus records (EN 13757-3), integers LSB first:
  0F Standard     04 07 EEEEEEEE  04 15 VVVVVVVV  02 2D PPPP  02 3B FFFF  02 5A TTTT  02 5E RRRR
                  0C 78 IIIIIIII  02 FD17 SSSS
  10 Compact      energy, meter ID, error flags
  12 Scheduled - daily redundant   energy, volume, 0C78 meter ID, 02FD17 alarm codes,
                  046D date/time, energy at 24:00 (storage 1; function "error" until read)
  13 Scheduled - extended          energy, volume,
                  07 FF A0 SS TTTT RRRR FFFF PPPP  (fw/rt temp 0.01 °C, flow, power; SS scaling)
                  06 FF 21 AAAA IIIIIIII           (alarm codes uint16, meter ID uint32),
                  046D meter date/time
  14 Combined heat/cooling         heat energy, 04 8x FF 02 cooling energy, volume, ...
  FA Clock message                 046D date/time -> no reading
- Energy VIF 03-07 (Wh..10 kWh), 0E/0F (MJ); volume VIF 13-17 (0.001..10 m³).
- Alarm codes are the Itron meter's, kept raw in error_flags. JSON (11) is rejected.

Source: Elvaco CMi4130 User's Manual v1.1 (2020-06), tables 9-13 (message formats); the
meter ID in 06 FF 21 is read as a binary uint32 (the manual gives no coding, CMi4140 says
binary). The TTS Device Repository example (vendor/elvaco/cmi4130-codec.yaml) is a vendor vector.
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
    0x0F: Format("Standard", STANDARD),
    0x10: Format("Compact", COMPACT),
    0x11: Format("JSON", supported=False),
    0x12: Format("Scheduled - daily redundant", DAILY),
    0x13: Format("Scheduled - extended", EXTENDED),
    0x14: Format("Combined heat/cooling", ("energy", "cooling", "volume")),
}
_TTN = "0407E1040200041511A24C00022D3E00023B0C03025AA602025E60020C781967901002FD170000"
_EXT = "0406E8030000 041410270000 07FFA033 8F19 AC0F D204 983A 06FF21 0000 4E61BC00"


def decode(uplink: Uplink) -> list[Reading]:
    return decode_cmi(uplink, FORMATS)


DECODER = Decoder(
    vendor="Elvaco",
    model="CMi4130",
    medium="heat",
    lorawan_ids=("elvaco/cmi4130",),
    decode=decode,
    fields=FIELDS,
    registers=REGISTERS,
    examples=(
        Example(  # TTS Device Repository vendor/elvaco/cmi4130-codec.yaml
            "standard message (TTS repository example)",
            f_port=2,
            hex=f"0F {_TTN}",
            expect={
                "energy_heat_kwh": 1323210.0,
                "volume_m3": 502222.5,
                "power_w": 6200,
                "flow_m3h": 0.78,
                "flow_temp_c": 67.8,
                "return_temp_c": 60.8,
                "meter_serial": "10906719",
                "error_flags": 0,
            },
        ),
        Example(
            "scheduled extended with compound records (ours)",
            f_port=2,
            hex=f"13 {_EXT} 046D000C0F33",
            expect=[
                {
                    "time": "2024-03-15T12:00:00Z",
                    "energy_heat_kwh": 1000.0,
                    "volume_m3": 100.0,
                    "flow_temp_c": 65.43,
                    "return_temp_c": 40.12,
                    "flow_m3h": 1.234,
                    "power_w": 15000.0,
                    "error_flags": 0,
                    "meter_serial": "12345678",
                }
            ],
        ),
        Example(
            "combined heat/cooling (ours)",
            f_port=2,
            hex="14 0406E8030000 0486FF0264000000 041410270000",
            expect={"energy_heat_kwh": 1000.0, "energy_cooling_kwh": 100.0, "volume_m3": 100.0},
        ),
        Example("wrong port", f_port=9, hex=f"0F {_TTN}", error="unexpected fPort"),
        Example("truncated", f_port=2, hex=f"0F {_TTN[:-10]}", error="lacks records"),
        Example("JSON format", f_port=2, hex="11 7B7D", error="not supported"),
        Example("CMi4160 format id", f_port=2, hex=f"1E {_TTN}", error="unknown message format"),
    ),
)
