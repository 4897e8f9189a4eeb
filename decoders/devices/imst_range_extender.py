"""IMST Wireless M-Bus Range Extender (iO881A): the wM-Bus telegrams it hears, over LoRaWAN.

fPort 4 = wM-Bus values; fPort 68 (0x40|4) = the same after one leading segmentation byte.
Telegrams one after another, each behind the extender's own 4-byte receive time:
  SSSSSSSS LL CC MMMM IIIIIIII VV TT CI ...   [SSSSSSSS LL ...] ...
- S: uint32 LE, Unix seconds (UTC): when the extender heard the telegram, the readings' time
  unless the meter's telegram dates them itself (04 6D record)
- L ... : one wM-Bus frame, block CRCs removed, L = the bytes after it (at least 10);
  decoded by decoders/bridge.py and decoders/oms.py: M manufacturer, I identification (BCD),
  V version, T device type form the meter's key ``MMM-IIIIIIII-VV-TT``; its AES key comes
  from params ``meters`` ({key: {aes_key: ...}}), as for ``wmbus_bridge``
fPort 3 / 67 = status, no meter value (returns no reading): 28 bytes (firmware 1.0) or 31
  (1.1): system time, firmware minor/major, last sync time, reset counter (u32), status bits
  (u16), telegrams received / saved / sent (u32 each); 1.1 adds system voltage (u16, mV) and
  the firmware type (u8). All little-endian.
A segmented uplink (fPort 68) is one part of a longer message: a telegram cut at its end is
rejected as a whole (the raw uplink is kept), as are other fPorts.

Source: IMST range extender codec (TheThingsNetwork/lorawan-devices vendor/imst/range-extender.js
v1.2: port numbers, segmentation bit 0x40, time + L-prefixed telegram framing, status fields)
and its examples in range-extender-codec.yaml (two status frames); EN 13757-4, OMS Vol. 2.
"""

from datetime import UTC, datetime

from decoders.bridge import FIELDS, METERS, REGISTERS, split_frames, telegram_readings
from decoders.core import DecodeError, Decoder, Example, Reading, Uplink, unpack

_VALUES, _STATUS, _SEGMENTED = 4, 3, 0x40
_STATUS_LENGTHS = (28, 31)  # firmware 1.0, 1.1 (+ system voltage and firmware type)

# ours: a Sensus water telegram (123.529 m³) heard at 2020-05-26 05:54:28 UTC
_HEARD = "14AFCC5E"
_SENSUS = "1844AE4C4455223368077A55000000041389E20100023B0000"
_FINE = {"alarm_low_battery": False, "alarm_meter_error": False}
_WATER = {
    "meter": "SEN-33225544-68-07",
    "time": "2020-05-26T05:54:28Z",
    "meter_serial": "33225544",
    "volume_m3": 123.529,
    "flow_m3h": 0.0,
    **_FINE,
}


def decode(uplink: Uplink) -> list[Reading]:
    port, payload = uplink.f_port, uplink.payload
    if port & _SEGMENTED and port & ~_SEGMENTED in (_VALUES, _STATUS):
        if not payload:
            raise DecodeError("segmented uplink without its segmentation byte")
        port, payload = port & ~_SEGMENTED, payload[1:]
    if port == _STATUS:
        if len(payload) not in _STATUS_LENGTHS:
            raise DecodeError(f"status frame of {len(payload)} bytes, expected 28 or 31")
        return []  # the extender's own status: no meter value
    if port != _VALUES:
        raise DecodeError(f"unexpected fPort {uplink.f_port}: expected 4, 68, 3 or 67")
    found: list[Reading] = []
    for at, frame in split_frames(payload, head=4):
        heard = datetime.fromtimestamp(unpack("<I", payload, at)[0], UTC)
        for reading in telegram_readings(uplink, frame):
            found.append(reading if reading.time else reading._replace(time=heard))
    return found


DECODER = Decoder(
    vendor="IMST",
    model="Wireless M-Bus Range Extender (iO881A)",
    medium=None,
    lorawan_ids=("imst/range-extender",),
    decode=decode,
    fields=FIELDS,
    registers=REGISTERS,
    params=(METERS,),
    examples=(
        Example("telegram with receive time", f_port=4, hex=_HEARD + _SENSUS, expect=[_WATER]),
        Example("segmented", f_port=68, hex="00" + _HEARD + _SENSUS, expect=[_WATER]),
        Example(  # IMST's example status frame (range-extender-codec.yaml), firmware 1.0
            "status",
            f_port=3,
            hex="f9edd95f000180fcd75f05000000260040e2010040e2010040e20100",
            expect=[],
        ),
        Example("telegram cut short", 4, _HEARD + _SENSUS[:-2], error="past the payload"),
        Example("time without telegram", 4, _HEARD, error="header bytes and an L field"),
        Example("status of 27 bytes", 3, "00" * 27, error="status frame of 27 bytes"),
        Example("wrong port", 5, _HEARD + _SENSUS, error="unexpected fPort"),
    ),
)
