"""Sensus iPERL water meter: wireless M-Bus (OMS, T1) telegrams forwarded by a LoRaWAN bridge.

Any application fPort (bridges differ), payload = the wM-Bus frame without CRCs (decoders/oms.py):
  LL 44 AE4C IIIIIIII VV 07  7A AA SS WWWW  [AES-128-CBC mode 5 blocks]  records
- M-field 0x4CAE = "SEN", device type 07 (water) or 16 (cold water).
- Records (EN 13757-3): 04 13 VVVVVVVV volume (litres), 02 3B FFFF flow (l/h), optional
  04 6D meter time, 44 13 / 42 6C volume and date of storage 1 (its own reading).
- SS application status: bit 2 power low -> alarm_low_battery, bits 3-4 -> alarm_meter_error.
- Key: device registry params["aes_key"] (32 hex digits) when the configuration word says mode 5.

Source: OMS Specification Vol. 2 / EN 13757-3, -4, -7; Sensus iPERL wM-Bus telegrams as published
in wmbusmeters' driver tests (tests/vectors/sensus_iperl/vendor.jsonl).
"""

from decoders.core import DecodeError, Decoder, Example, Reading, Register, Uplink
from decoders.oms import AES_KEY, decode_frame, readings, status_alarms

_KEY = {"aes_key": "000102030405060708090A0B0C0D0E0F"}
_ENCRYPTED = (
    "2E44AE4C9956341268077A370020056A62C9E34D736C3B5B418A189F9122A0DDF42DF22AFB5645173B58EC543D7596"
)


def decode(uplink: Uplink) -> list[Reading]:
    if not 1 <= uplink.f_port <= 223:
        raise DecodeError(f"unexpected fPort {uplink.f_port}: expected an application port")
    telegram = decode_frame(uplink)
    if telegram.manufacturer != "SEN" or telegram.device_type not in (0x07, 0x16):
        raise DecodeError(
            f"not a Sensus water meter: {telegram.manufacturer} type {telegram.device_type:#04x}"
        )
    if not telegram.has_volume():
        raise DecodeError("telegram has no volume record")
    return readings(telegram, uplink, status_alarms(telegram.status))


DECODER = Decoder(
    vendor="Sensus",
    model="iPERL",
    medium="water",
    decode=decode,
    fields=(
        "volume_m3",
        "flow_m3h",
        "meter_serial",
        "alarm_low_battery",
        "alarm_meter_error",
    ),
    registers={"volume_m3": Register(None)},  # int32 litres: 2.1 million m³, beyond any meter
    params=(AES_KEY,),
    examples=(
        Example(  # wmbusmeters src/driver_iperl.cc test telegram (security mode 0)
            "unencrypted T1 telegram (published test telegram)",
            f_port=1,
            hex="1844AE4C4455223368077A55000000041389E20100023B0000",
            expect={
                "meter_serial": "33225544",
                "volume_m3": 123.529,
                "flow_m3h": 0,
                "alarm_low_battery": False,
                "alarm_meter_error": False,
            },
        ),
        Example(
            "AES mode 5 with storage 1 history (ours, key 000102...0F)",
            f_port=1,
            hex=_ENCRYPTED,
            params=_KEY,
            expect=[
                {
                    "time": None,
                    "meter_serial": "12345699",
                    "volume_m3": 7.704,
                    "flow_m3h": 0,
                    "alarm_low_battery": False,
                    "alarm_meter_error": False,
                },
                {"time": "2020-12-31T00:00:00Z", "volume_m3": 6.4},
            ],
        ),
        Example(
            "wrong key",
            f_port=1,
            hex=_ENCRYPTED,
            params={"aes_key": "00" * 16},
            error="decryption failed: wrong key",
        ),
        Example("no key", f_port=1, hex=_ENCRYPTED, error="no aes_key"),
        Example("wrong port", f_port=0, hex="1844AE4C", error="unexpected fPort"),
        Example(
            "L field mismatch", f_port=1, hex="1944AE4C4455223368077A55000000", error="L field"
        ),
        Example(
            "Kamstrup frame",
            f_port=1,
            hex="14442D2C785634121B167A2B000000041339300000",
            error="not a Sensus",
        ),
    ),
)
