"""Elvaco CMi4160: LoRaWAN module for Diehl Sharky 775 / Sharky FS 473 heat and cooling meters.

fPort 2, byte 0 = message format, then M-Bus records (EN 13757-3), integers LSB first:
  1E Standard     04 06 EEEEEEEE  04 13 VVVVVVVV  02 2B PPPP  02 3B FFFF  02 5A TTTT  02 5E RRRR
                  07 79 IIIIIIII MMMM VV TT  (enhanced ID: BCD8 ID, manufacturer, version, medium)
                  01 FD17 SS
  1F Compact      energy, meter ID, error flags
  21 Scheduled - daily redundant   energy, volume, meter ID, error flags, 046D date/time,
                  energy at 24:00 (storage 1)
  22 Scheduled - extended          energy, volume,
                  07 FF A0 SS TTTT RRRR FFFF PPPP    (fw/rt temp 0.01 °C, flow, power)
                  0D FF 21 E9 SS IIIIIIII MMMM VV TT (error flags, BCD8 meter ID, manufacturer,
                  version, device type), 04 6D meter date/time
  FA Clock message                 046D date/time -> no reading
- Energy VIF 03-07 (Wh..10 kWh), 0E/0F (MJ), FB 0D-0F (MCal); volume VIF 13-17.
- Error flags are the Sharky's, kept raw. JSON (20), Combined heat/cooling (23) and
  Extended+ (3D/3E) are rejected.

Source: Elvaco CMi4160 User's Manual v1.3 (2020-10), message format tables; the TTS Device
Repository example (vendor/elvaco/cmi4160-codec.yaml) is a vendor vector.
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
    0x1E: Format("Standard", STANDARD),
    0x1F: Format("Compact", COMPACT),
    0x20: Format("JSON", supported=False),
    0x21: Format("Scheduled - daily redundant", DAILY),
    0x22: Format("Scheduled - extended", EXTENDED),
    **{n: Format("format", supported=False) for n in (0x23, 0x3D, 0x3E)},
}
_TTN = "04068FA10100041384B71E00022BCF0F023B5D00025A1003025E9801077982253269A511400401FD1700"
_EXT = "0406E8030000 041410270000 07FFA033 8F19 AC0F D204 983A 0DFF21E9 00 78563412 A511 40 04"


def decode(uplink: Uplink) -> list[Reading]:
    return decode_cmi(uplink, FORMATS)


DECODER = Decoder(
    vendor="Elvaco",
    model="CMi4160",
    medium="heat",
    lorawan_ids=("elvaco/cmi4160",),
    decode=decode,
    fields=FIELDS,
    registers=REGISTERS,
    examples=(
        Example(  # TTS Device Repository vendor/elvaco/cmi4160-codec.yaml
            "standard message (TTS repository example)",
            f_port=2,
            hex=f"1E {_TTN}",
            expect={
                "energy_heat_kwh": 106895.0,
                "volume_m3": 2013.06,
                "power_w": 4047,
                "flow_m3h": 0.093,
                "flow_temp_c": 78.4,
                "return_temp_c": 40.8,
                "meter_serial": "69322582",
                "error_flags": 0,
            },
        ),
        Example(
            "scheduled extended with compound records (ours)",
            f_port=2,
            hex=f"22 {_EXT} 046D000C0F33",
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
        Example("wrong port", f_port=9, hex=f"1E {_TTN}", error="unexpected fPort"),
        Example("truncated", f_port=2, hex=f"22 {_EXT}", error="lacks records"),
        Example("bad BCD meter ID", f_port=2, hex="1F 0406E8030000 0C7878563A12", error="BCD"),
    ),
)
