"""Elvaco CMi4110: LoRaWAN module for Landis+Gyr UH50/UC50 heat and cooling meters.

fPort 2 (Scheduled formats: 3), byte 0 = message format, then M-Bus records (EN 13757-3):
  00 Standard     0C06 EEEEEEEE  0C14 VVVVVVVV  0B2D PPPPPP  0B3B FFFFFF  0A5A TTTT  0A5E RRRR
                  0C78 IIIIIIII  02FD17 SSSS
  01 Compact      0C06 EEEEEEEE  0C78 IIIIIIII  02FD17 SSSS
  03 Scheduled - daily redundant   energy, volume, meter ID, error flags, 046D date/time,
                  energy read at 24:00 (DIF 0x4C: storage 1; function "error" until first read)
  04 Scheduled - extended          the Standard records plus 046D meter date/time
  FA Clock message                 046D date/time (34 6D: invalid) -> no reading
- E energy (BCD8; VIF 06 kWh, 07 10 kWh, FB 00/01 MWh, 0E/0F GJ), V volume (BCD8, 0.01 m³),
  P power (BCD6, 100 W), F flow (BCD6, l/h), T/R flow/return temperature (BCD4, 0.1 °C),
  I meter ID (BCD8), S error flags (UH50 error word, kept raw in error_flags).
- The meter date/time (type F) is the reading's time; the 24:00 energy becomes its own reading.
- Compact Tariff, Extended+ and the other newer formats (0x3F-0x4A) and JSON (02) are rejected.

Source: Elvaco CMi4110 User's Manual v1.3 (2018-06), 6.6.2 message formats, tables 6-12;
format identifiers as listed by the CMi41xx family manuals.
"""

from decoders.core import Decoder, Example, Reading, Uplink, Values
from decoders.elvaco import COMPACT, DAILY, FIELDS, REGISTERS, STANDARD, Format, decode_cmi

FORMATS = {
    0x00: Format("Standard", STANDARD),
    0x01: Format("Compact", COMPACT),
    0x02: Format("JSON", supported=False),
    0x03: Format("Scheduled - daily redundant", DAILY),
    0x04: Format("Scheduled - extended", (*STANDARD, "datetime")),
    **{n: Format("newer format", supported=False) for n in (0x3F, 0x40, 0x41, 0x46, 0x47, 0x48)},
    **{n: Format("newer format", supported=False) for n in (0x49, 0x4A)},
}
_STANDARD = "0C06 52676102 0C14 97899900 0B2D 000000 0B3B 000000 0A5A 3306 0A5E 4105 0C78 29110366"
_VALUES: Values = {
    "energy_heat_kwh": 2616752.0,
    "volume_m3": 9989.97,
    "power_w": 0,
    "flow_m3h": 0,
    "flow_temp_c": 63.3,
    "return_temp_c": 54.1,
    "meter_serial": "66031129",
    "error_flags": 0,
}


def decode(uplink: Uplink) -> list[Reading]:
    return decode_cmi(uplink, FORMATS)


DECODER = Decoder(
    vendor="Elvaco",
    model="CMi4110",
    medium="heat",
    lorawan_ids=("elvaco/cmi4110",),
    decode=decode,
    fields=FIELDS,
    registers=REGISTERS,
    examples=(
        Example(  # payload from the comment in TTN lorawan-devices vendor/elvaco/cmi4110.js
            "standard message (ours)", f_port=2, hex=f"00 {_STANDARD} 02FD17 0000", expect=_VALUES
        ),
        Example(
            "compact message, error word set (ours)",
            f_port=2,
            hex="01 0C06 52676102 0C78 29110366 02FD17 0800",
            expect={"energy_heat_kwh": 2616752.0, "meter_serial": "66031129", "error_flags": 8},
        ),
        Example(
            "scheduled extended with meter time 2024-03-15 12:00 (ours)",
            f_port=3,
            hex=f"04 {_STANDARD} 046D 000C0F33 02FD17 0000",
            expect=[{"time": "2024-03-15T12:00:00Z", **_VALUES}],
        ),
        Example(
            "scheduled daily redundant: energy at 24:00 as its own reading (ours)",
            f_port=3,
            hex="03 0C06 52676102 0C14 97899900 0C78 29110366 02FD17 0000 046D 1E0A0F33"
            " 4C06 00656102",
            expect=[
                {
                    "time": "2024-03-15T10:30:00Z",
                    "energy_heat_kwh": 2616752.0,
                    "volume_m3": 9989.97,
                    "meter_serial": "66031129",
                    "error_flags": 0,
                },
                {"time": "2024-03-15T00:00:00Z", "energy_heat_kwh": 2616500.0},
            ],
        ),
        Example(
            "daily redundant before the first 24:00 read: value in error state (ours)",
            f_port=3,
            hex="03 0C06 52676102 0C14 97899900 0C78 29110366 02FD17 0000 046D 1E0A0F33"
            " 7C06 00000000",
            expect=[
                {
                    "time": "2024-03-15T10:30:00Z",
                    "energy_heat_kwh": 2616752.0,
                    "volume_m3": 9989.97,
                    "meter_serial": "66031129",
                    "error_flags": 0,
                }
            ],
        ),
        Example("clock message (ours)", f_port=3, hex="FA 046D 000C0F33", expect=[]),
        Example(
            "wrong port", f_port=1, hex=f"00 {_STANDARD} 02FD17 0000", error="unexpected fPort"
        ),
        Example("truncated", f_port=2, hex=f"00 {_STANDARD} 02FD17 00", error="truncated"),
        Example("missing records", f_port=2, hex="00 0C06 52676102", error="lacks records"),
        Example("JSON format", f_port=2, hex="02 7B7D", error="not supported"),
        Example(
            "CMi4111 format id", f_port=2, hex=f"05 {_STANDARD}", error="unknown message format"
        ),
        Example("bad BCD", f_port=2, hex="01 0C06 5267610A", error="invalid BCD"),
    ),
)
