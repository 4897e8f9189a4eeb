"""Elvaco CMi4111: LoRaWAN module for Landis+Gyr Ultraheat T230 (UH30) heat/cooling meters.

fPort 2, byte 0 = message format, then M-Bus records (EN 13757-3), integers LSB first:
  05 Standard     0406 EEEEEEEE  0414 VVVVVVVV  022D PPPP  023B FFFF  025A TTTT  025E RRRR
                  0C78 IIIIIIII  04FD17 SSSSSSSS
  06 Compact      energy, meter ID, error flags
  08 Scheduled - daily redundant   energy, volume, meter ID, error flags, 046D date/time,
                  energy at 24:00 (storage 1)
  09 Scheduled - extended          energy, volume, ... and 046D meter date/time
  FA Clock message                 046D date/time -> no reading
- E energy (VIF 06 kWh, 07 10 kWh, 0E/0F MJ, FB 0D-0F MCal), V volume (14: 0.01 m³),
  P power (2D: 100 W), F flow (3B: l/h), T/R flow/return temperature (5A/5E: 0.1 °C),
  I meter ID (BCD8), S error flags (meter status word, kept raw).
- JSON (07), Combined heat/cooling (0A), Simple billing, Plausibility check and Monitoring
  (0B-0D) are rejected: their layouts are not implemented.

Source: Elvaco CMi4111 User's Manual v1.1 (2020-06), message formats; the TTS Device Repository
example (vendor/elvaco/cmi4111-codec.yaml) is a vendor vector.
"""

from decoders.core import Decoder, Example, Reading, Uplink
from decoders.elvaco import COMPACT, DAILY, FIELDS, REGISTERS, STANDARD, Format, decode_cmi

FORMATS = {
    0x05: Format("Standard", STANDARD),
    0x06: Format("Compact", COMPACT),
    0x07: Format("JSON", supported=False),
    0x08: Format("Scheduled - daily redundant", DAILY),
    0x09: Format("Scheduled - extended", ("energy", "volume", "datetime")),
    **{n: Format("format", supported=False) for n in (0x0A, 0x0B, 0x0C, 0x0D)},
}
_TTN = "04065A2600000414F0140A00022D0B00023B2600025A7B02025E7C010C787135496904FD1700000800"


def decode(uplink: Uplink) -> list[Reading]:
    return decode_cmi(uplink, FORMATS)


DECODER = Decoder(
    vendor="Elvaco",
    model="CMi4111",
    medium="heat",
    lorawan_ids=("elvaco/cmi4111",),
    decode=decode,
    fields=FIELDS,
    registers=REGISTERS,
    examples=(
        Example(  # TTS Device Repository vendor/elvaco/cmi4111-codec.yaml
            "standard message (TTS repository example)",
            f_port=2,
            hex=f"05 {_TTN}",
            expect={
                "energy_heat_kwh": 9818.0,
                "volume_m3": 6607.2,
                "power_w": 1100,
                "flow_m3h": 0.038,
                "flow_temp_c": 63.5,
                "return_temp_c": 38.0,
                "meter_serial": "69493571",
                "error_flags": 524288,
            },
        ),
        Example(
            "compact message (ours)",
            f_port=2,
            hex="06 04065A260000 0C7871354969 04FD1700000000",
            expect={"energy_heat_kwh": 9818.0, "meter_serial": "69493571", "error_flags": 0},
        ),
        Example("wrong port", f_port=5, hex=f"05 {_TTN}", error="unexpected fPort"),
        Example("truncated", f_port=2, hex=f"05 {_TTN[:-2]}", error="truncated"),
        Example("CMi4110 format id", f_port=2, hex=f"00 {_TTN}", error="unknown message format"),
        Example("combined heat/cooling", f_port=2, hex="0A 0406", error="not supported"),
    ),
)
