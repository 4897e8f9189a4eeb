"""Kamstrup flowIQ 2200 / MULTICAL 21 water meter in OMS mode, forwarded by a LoRaWAN bridge.

Any application fPort (bridges differ), payload = the wM-Bus frame without CRCs (decoders/oms.py):
  LL 44 2D2C IIIIIIII VV 16  7A AA SS WWWW  [AES-128-CBC mode 5 blocks]  records
- M-field 0x2C2D = "KAM", device type 06 (warm water), 07 (water) or 16 (cold water).
- Records (EN 13757-3): 04 13 VVVVVVVV volume (litres), 02 FF 20 CCCC info codes,
  02 3B FFFF flow (l/h), optional 04 6D meter time,
  44 13 VVVVVVVV / 42 6C DDDD target volume and target date (storage 1: its own reading).
- Info codes (manufacturer VIF FF 20, LSB first): bit 0 dry, bit 1 reverse flow, bit 2 leak,
  bit 3 burst -> alarm_dry / alarm_backflow / alarm_leak / alarm_burst; the word -> error_flags.
- SS application status: bit 2 power low -> alarm_low_battery, bits 3-4 -> alarm_meter_error.
- Only standard OMS frames (CI 72/7A/78) are supported, not Kamstrup's compact C1 frames
  (CI 8D extended link layer with AES-CTR and CI 79 compact records).

Source: OMS Specification Vol. 2 / EN 13757-3, -4, -7; info-code bits as Kamstrup's
MULTICAL 21 technical description lists them (DRY, REVERSE, LEAK, BURST).
"""

from decoders.core import DecodeError, Decoder, Example, Reading, Register, Uplink, Values
from decoders.oms import AES_KEY, Telegram, decode_frame, readings, status_alarms

_KEY = {"aes_key": "000102030405060708090A0B0C0D0E0F"}
_FULL = (
    "3E442D2C785634121B167A2A003005ACFDD68065467B8E19A41B3FF3B64B0029C7ECA992C1C95A131450FDAD"
    "8D6744CA7F1ECC3C3E9EAF03B103E3287695B8"
)
_SHORT = (
    "2E442D2C785634121B167A2B002005DD336913BCB1302F244F3659210A4DACC4E68A3064E0533242BE21BF5A7A24B9"
)
_ALARMS = (("alarm_dry", 0x01), ("alarm_backflow", 0x02), ("alarm_leak", 0x04), ("alarm_burst", 8))


def _info_codes(telegram: Telegram) -> Values:
    for record in telegram.records:
        if record.quantity == "manufacturer" and record.mfr_vife == (0x20,) and record.storage == 0:
            code = int.from_bytes(record.raw, "little")
            return {"error_flags": code, **{name: bool(code & bit) for name, bit in _ALARMS}}
    raise DecodeError("telegram has no info-code record (02 FF 20)")


def decode(uplink: Uplink) -> list[Reading]:
    if not 1 <= uplink.f_port <= 223:
        raise DecodeError(f"unexpected fPort {uplink.f_port}: expected an application port")
    telegram = decode_frame(uplink)
    if telegram.manufacturer != "KAM" or telegram.device_type not in (0x06, 0x07, 0x16):
        raise DecodeError(
            f"not a Kamstrup water meter: {telegram.manufacturer} type {telegram.device_type:#04x}"
        )
    if not any(r.quantity == "volume" and r.storage == 0 for r in telegram.records):
        raise DecodeError("telegram has no volume record")
    return readings(telegram, uplink, {**_info_codes(telegram), **status_alarms(telegram.status)})


_QUIET: Values = {
    "alarm_dry": False,
    "alarm_backflow": False,
    "alarm_burst": False,
    "alarm_low_battery": False,
    "alarm_meter_error": False,
}

DECODER = Decoder(
    vendor="Kamstrup",
    model="flowIQ 2200 / MULTICAL 21 (OMS mode)",
    medium="water",
    decode=decode,
    fields=(
        "volume_m3",
        "flow_m3h",
        "meter_serial",
        "error_flags",
        *(name for name, _ in _ALARMS),
        "alarm_low_battery",
        "alarm_meter_error",
    ),
    registers={"volume_m3": Register(None)},  # int32 litres: 2.1 million m³, beyond any meter
    params=(AES_KEY,),
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
        Example(
            "wrong key",
            f_port=1,
            hex=_SHORT,
            params={"aes_key": "FF" * 16},
            error="decryption failed: wrong key",
        ),
        Example("wrong port", f_port=0, hex=_SHORT, error="unexpected fPort"),
        Example(
            "compact frame (CI 8D) not supported",
            f_port=1,
            hex="0E442D2C785634121B168D20112233",
            error="unsupported CI field 0x8d",
        ),
        Example(
            "Sensus frame",
            f_port=1,
            hex="1844AE4C4455223368077A55000000041389E20100023B0000",
            error="not a Kamstrup",
        ),
    ),
)
