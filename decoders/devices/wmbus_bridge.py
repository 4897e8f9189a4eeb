"""Wireless M-Bus bridge: OMS meters' telegrams forwarded over LoRaWAN, several per uplink.

Any application fPort (1..223). The payload is one or more wM-Bus frames, block CRCs removed,
each starting with its L field (decoders/bridge.py, decoders/oms.py):
  LL CC MMMM IIIIIIII VV TT  CI [header] data   [LL CC ...]
- M manufacturer, I identification (BCD), V version, T device type: the meter's address, the
  key ``MMM-IIIIIIII-VV-TT`` (e.g. SEN-33225544-68-07) the registry lists it under, with its
  AES key (params ``meters``: {key: {aes_key: ...}}, filled by ingest from the registry)
- CI 7A / 72 / 78 with OMS security mode 0 or 5; records per EN 13757-3
- T: 02 electricity (energy -> energy_import_kwh), 03 gas, 04/0A-0D heat, 06/07/15/16 water;
  other types (heat cost allocators 08, ...) are seen but give no values
Every reading carries its meter's key; a telegram that cannot be decoded (no or wrong key)
is a reading with an error and no values, so the meter shows up as seen.

Source: EN 13757-4 (frame format A without CRCs, as bridges forward it), EN 13757-3 and
-7, OMS Specification Vol. 2 (addresses, security mode 5, device types).
"""

from decoders.bridge import FIELDS, METERS, REGISTERS, meter_readings
from decoders.core import DecodeError, Decoder, Example, Reading, Uplink

_SENSUS = "1844AE4C4455223368077A55000000041389E20100023B0000"  # plain, 123.529 m³
_KAMSTRUP = (  # AES mode 5 with key 000102..0F: 12.345 m³, 0.01 m³/h
    "2E442D2C785634121B167A2B002005DD336913BCB1302F244F3659210A4DACC4E68A3064E0533242BE21BF5A7A24B9"
)
_KEY = {"meters": {"KAM-12345678-1B-16": {"aes_key": "000102030405060708090A0B0C0D0E0F"}}}
_FINE = {"alarm_low_battery": False, "alarm_meter_error": False}


def decode(uplink: Uplink) -> list[Reading]:
    if not 1 <= uplink.f_port <= 223:
        raise DecodeError(f"unexpected fPort {uplink.f_port}: expected an application port")
    return meter_readings(uplink)


DECODER = Decoder(
    vendor="Generic",
    model="wireless M-Bus bridge (OMS meters)",
    medium=None,
    decode=decode,
    fields=FIELDS,
    registers=REGISTERS,
    params=(METERS,),
    examples=(
        Example(
            "plain water meter telegram",
            f_port=1,
            hex=_SENSUS,
            expect=[
                {
                    "meter": "SEN-33225544-68-07",
                    "meter_serial": "33225544",
                    "volume_m3": 123.529,
                    "flow_m3h": 0.0,
                    **_FINE,
                }
            ],
        ),
        Example(
            "encrypted telegram with the meter's key",
            f_port=1,
            hex=_KAMSTRUP,
            params=_KEY,
            expect=[
                {
                    "meter": "KAM-12345678-1B-16",
                    "meter_serial": "12345678",
                    "volume_m3": 12.345,
                    "flow_m3h": 0.01,
                    **_FINE,
                }
            ],
        ),
        Example(
            "encrypted telegram of a meter without key: seen, not read",
            f_port=1,
            hex=_KAMSTRUP,
            expect=[
                {
                    "meter": "KAM-12345678-1B-16",
                    "error": "the device registry gives no "
                    "aes_key (the meter's AES-128 key for encrypted telegrams)",
                }
            ],
        ),
        Example("frame runs past the end", 1, "2E442D2C7856341234", error="past the payload"),
        Example("L field too small", 1, "05442D2C7856", error="at least 10 bytes"),
        Example("wrong port", 0, _SENSUS, error="unexpected fPort"),
    ),
)
