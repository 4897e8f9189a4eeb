"""Kamstrup MULTICAL 403 / 603 heat (cooling) meters with the HC-003-55 LoRaWAN module.

Any application fPort (1 as shipped). The payload starts at the CI byte (decoders/kamstrup.py):
  78 records  |  7A AA SS WWWW records  |  72 IIIIIIII MMMM VV TT AA SS WWWW records
- Records (EN 13757-3, the module's configured data profile): 04 06 / 04 0E heat energy (kWh /
  GJ), 04 13 / 04 14 volume, 04 2B / 04 2C power, 04 3B / 04 3C flow, 02 59 / 02 5D flow and
  return temperature, 02 61 temperature difference, 04 22 hours in operation; storage 1
  (DIF 4x) values with their 44 6D date/time are the day's or hour's log reading.
- Inverse compact profiles (4D VIF 13 ...) of energy or volume: one reading per logged value.
- Info codes (04 FF 23, 52 FF 25): the MULTICAL's own codes (supply voltage, sensor errors,
  leak, ...), kept raw in error_flags; 0 = no error.
- 04 FF 16 alone: the installation frame (module type / configuration number): rejected.

Source: EN 13757-3:2013; Kamstrup HC-003-55 codec examples (TTS Device Repository
vendor/kamstrup/mbusparser.yaml, shared with the flowIQ 2200 module); MULTICAL 403 data sheet.
"""

from decoders.core import DecodeError, Decoder, Example, Reading, Register, Uplink
from decoders.kamstrup import lorawan_readings


def decode(uplink: Uplink) -> list[Reading]:
    if not 1 <= uplink.f_port <= 223:
        raise DecodeError(f"unexpected fPort {uplink.f_port}: expected an application port")
    return lorawan_readings(uplink, {}, water=False)


DECODER = Decoder(
    vendor="Kamstrup",
    model="MULTICAL 403 / 603 (HC-003-55 LoRaWAN module)",
    medium="heat",
    lorawan_ids=("kamstrup/hc-003-55-multical",),
    decode=decode,
    fields=(
        "energy_heat_kwh",
        "volume_m3",
        "power_w",
        "flow_m3h",
        "flow_max_m3h",
        "flow_min_m3h",
        "flow_temp_c",
        "return_temp_c",
        "temp_diff_k",
        "operating_time_h",
        "meter_serial",
        "error_flags",
    ),
    # the meter's display registers (8 digits, decimals as configured): wrap not known here
    registers=dict.fromkeys(("energy_heat_kwh", "volume_m3", "operating_time_h"), Register(None)),
    examples=(
        Example(
            "hourly energy profile before its base value (ours)",
            f_port=1,
            hex="78 4D861308 6201 0A00 0C00 0B00  4406 10270000  446D 002CFD28",
            expect=[
                {"time": "2023-08-29T12:00:00Z", "energy_heat_kwh": 10000.0},
                {"time": "2023-08-29T11:00:00Z", "energy_heat_kwh": 9990.0},
                {"time": "2023-08-29T10:00:00Z", "energy_heat_kwh": 9978.0},
                {"time": "2023-08-29T09:00:00Z", "energy_heat_kwh": 9967.0},
            ],
        ),
        Example(
            "daily log with info code, short header; profile first (ours)",
            f_port=1,
            hex="7A 01 00 0000 4D931305 6101 05 07 00 04FF2300000000 0413 E8030000"
            "44 0E 0A000000 44 13 C8000000 446D 0000F32A",
            expect=[
                {"volume_m3": 1.0, "error_flags": 0},
                {"time": "2023-10-19T00:00:00Z", "energy_heat_kwh": 2.7777777778, "volume_m3": 0.2},
                {"time": "2023-10-18T23:00:00Z", "volume_m3": 0.195},
                {"time": "2023-10-18T22:00:00Z", "volume_m3": 0.188},
                {"time": "2023-10-18T21:00:00Z", "volume_m3": 0.188},
            ],
        ),
        Example(
            "installation frame",
            1,
            "7258578853372c3c16d610080004ff16bf587000",
            error="no meter register",
        ),
        Example(
            "encrypted (security mode 5)", 1, "7A01001005 0406 00000000", error="security mode 5"
        ),
        Example("wrong port", f_port=0, hex="78 0406 10270000", error="unexpected fPort"),
        Example("unknown CI", f_port=1, hex="8D 0406 10270000", error="unsupported CI field"),
    ),
)
