"""Kamstrup flowIQ 2200 / MULTICAL 21 water meter: its LoRaWAN module, or OMS via a bridge.

The flowIQ 2200 LoRaWAN module (TTS kamstrup/flowiq2200-02k73a) sends the payload from the CI
byte on (72 / 78 / 7A, Kamstrup's record profile, compact profiles, info codes 04 FF 23 or
52 FF 25): decoders/kamstrup.py. Each dated storage and profile value is a reading at its time.
A wireless M-Bus bridge sends the whole frame, without CRCs (decoders/oms.py), on any fPort:
  LL 44 2D2C IIIIIIII VV 16  7A AA SS WWWW  [AES-128-CBC mode 5 blocks]  records
- M-field "KAM" (0x2C2D) or "KAW" (the flowIQ 2200, versions 0x3A/0x3C); device type
  06 (warm water), 07 (water) or 16 (cold water).
- Records (EN 13757-3): 04 13 VVVVVVVV volume (litres), 02 FF 20 CCCC info codes,
  02 3B FFFF flow (l/h), optional 04 6D meter time,
  44 13 VVVVVVVV / 42 6C DDDD target volume and target date (storage 1: its own reading).
- Info codes (02 FF 20 or 04 FF 23, LSB first): bit 0 dry, 1 reverse flow, 2 leak, 3 burst,
  4 tamper, 5 low battery -> alarm_*; the word -> error_flags.
- SS application status: bit 2 power low -> alarm_low_battery, bits 3-4 -> alarm_meter_error.
- Kamstrup's C1 frames: CI 8D extended link layer (AES-128-CTR) around CI 78 records or CI 79
  compact records, whose layout is the registry's params["compact_formats"] (decoders/oms.py).

Source: OMS Specification Vol. 2 / EN 13757-3, -4, -7; info-code bits as Kamstrup's
MULTICAL 21 technical description lists them (DRY, REVERSE, LEAK, BURST) and Kamstrup's LoRaWAN
codec examples (TTS Device Repository vendor/kamstrup/mbusparser.yaml).
"""

from decoders.core import DecodeError, Decoder, Example, Reading, Register, Uplink
from decoders.kamstrup import ALARMS, current_info, is_module_payload, lorawan_readings
from decoders.oms import AES_KEY, COMPACT_FORMATS, decode_frame, readings, status_alarms

_KEY = {"aes_key": "000102030405060708090A0B0C0D0E0F"}
_FULL = (
    "3E442D2C785634121B167A2A003005ACFDD68065467B8E19A41B3FF3B64B0029C7ECA992C1C95A131450FDAD"
    "8D6744CA7F1ECC3C3E9EAF03B103E3287695B8"
)
_SHORT = (
    "2E442D2C785634121B167A2B002005DD336913BCB1302F244F3659210A4DACC4E68A3064E0533242BE21BF5A7A24B9"
)
_ELL = "24442D2C692845631B168D3050209CD621B006B1140AEF4953AE5B86FAFC0B00E70705B846"
_INSTALL = "7258578853372c3c16d610080004ff16bf587000"
_SENSUS = "1844AE4C4455223368077A55000000041389E20100023B0000"
_WATER = (0x06, 0x07, 0x16)


def decode(uplink: Uplink) -> list[Reading]:
    if not 1 <= uplink.f_port <= 223:
        raise DecodeError(f"unexpected fPort {uplink.f_port}: expected an application port")
    if is_module_payload(uplink.payload):
        return lorawan_readings(uplink, {})
    telegram = decode_frame(uplink)
    if telegram.manufacturer not in ("KAM", "KAW") or telegram.device_type not in _WATER:
        raise DecodeError(
            f"not a Kamstrup water meter: {telegram.manufacturer} type {telegram.device_type:#04x}"
        )
    if not telegram.has_volume():
        raise DecodeError("telegram has no volume record")
    info = current_info(telegram.frame)
    if not info:
        raise DecodeError("telegram has no info-code record (02 FF 20 or 04 FF 23)")
    return readings(telegram, uplink, {**info, **status_alarms(telegram.status)})


_QUIET: dict[str, bool] = dict.fromkeys(
    ("alarm_dry", "alarm_tamper", "alarm_backflow", "alarm_burst", "alarm_low_battery"), False
) | {"alarm_meter_error": False}
_OK: dict[str, float | int | bool | str] = {"alarm_leak": False, **_QUIET}

DECODER = Decoder(
    vendor="Kamstrup",
    model="flowIQ 2200 / MULTICAL 21 (OMS mode)",
    medium="water",
    lorawan_ids=("kamstrup/flowiq2200-02k73a",),
    decode=decode,
    fields=(
        "volume_m3",
        "flow_m3h",
        "meter_serial",
        "error_flags",
        "flow_max_m3h",
        "flow_min_m3h",
        *(name for name, _ in ALARMS),
        "alarm_meter_error",
    ),
    registers={"volume_m3": Register(None)},  # int32 litres: 2.1 million m³, beyond any meter
    params=(AES_KEY, COMPACT_FORMATS),
    examples=(
        Example(
            "AES mode 5, leak info code, meter time and target value (ours, key 000102...0F)",
            f_port=1,
            hex=_FULL,
            params=_KEY,
            expect=[
                {
                    "time": "2024-03-15T12:34:00Z",
                    "meter_serial": "12345678",
                    "volume_m3": 12.345,
                    "flow_m3h": 0.01,
                    "error_flags": 4,
                    "alarm_leak": True,
                    **_QUIET,
                },
                {"time": "2020-12-31T00:00:00Z", "volume_m3": 10.0},
            ],
        ),
        Example(
            "AES mode 5, no alarms (ours)",
            f_port=1,
            hex=_SHORT,
            params=_KEY,
            expect={
                "meter_serial": "12345678",
                "volume_m3": 12.345,
                "flow_m3h": 0.01,
                "error_flags": 0,
                "alarm_leak": False,
                **_QUIET,
            },
        ),
        Example("wrong key", 1, _SHORT, error="decryption failed", params={"aes_key": "F" * 32}),
        Example(  # Kamstrup's hourly profile (vendor.jsonl), 3 values, records reordered (ours)
            "LoRaWAN module: inverse compact profile of hourly volumes before the base value",
            f_port=1,
            hex="78 4d931308 6201 2701 2201 2201  4413 c1aa7700  446d 002cfd28",
            expect=[
                {"time": "2023-08-29T12:00:00Z", "volume_m3": 7842.497},
                {"time": "2023-08-29T11:00:00Z", "volume_m3": 7842.202},
                {"time": "2023-08-29T10:00:00Z", "volume_m3": 7841.912},
                {"time": "2023-08-29T09:00:00Z", "volume_m3": 7841.622},
            ],
        ),
        Example("module's installation frame", 1, _INSTALL, error="no meter register"),
        Example("wrong port", f_port=0, hex=_SHORT, error="unexpected fPort"),
        Example(  # lvogt/wireless-mbus-parser test/parser/extendedLinkLayer.test.ts
            "MULTICAL 21 C1 frame: ELL (CI 8D) AES-128-CTR around CI 78 records (published)",
            f_port=1,
            hex=_ELL,
            params={"aes_key": "4E5508544202058100DFEFA06B0934A5"},
            expect={"meter_serial": "63452869", "volume_m3": 474.24, "error_flags": 0, **_OK},
        ),
        Example("Sensus frame", 1, _SENSUS, error="not a Kamstrup"),
    ),
)
