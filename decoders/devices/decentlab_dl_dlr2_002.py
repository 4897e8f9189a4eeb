"""Decentlab DL-DLR2-002: pulse counter (one dry-contact input) in the Decentlab sensor format.

fPort 1, big-endian 16-bit words:  VV IIII FFFF [sensor 0] [sensor 1]
- V: protocol version, 0x02
- I: device id
- F: flags; bit 0 = sensor 0's words follow, bit 1 = sensor 1's
- sensor 0, 4 words: CCCC TTTT LLLL HHHH  pulses in the last interval, the interval (s),
  cumulative pulse count = L + 65536 * H        -> pulse_values(registry params)
- sensor 1, 1 word: battery voltage, mV         -> battery_v
A frame without sensor 0 carries no register and is rejected.

Source: Decentlab DL-DLR2-002 datasheet; the vendor's codec and example in the TTS Device
Repository (vendor/decentlab/dl-dlr2-002.js, dl-dlr2-002-codec.yaml).
"""

from decoders.core import (
    PULSE_FIELDS,
    PULSE_PARAMS,
    DecodeError,
    Decoder,
    Example,
    Uplink,
    Values,
    pulse_registers,
    pulse_registers_fn,
    pulse_values,
    unpack,
)
from decoders.decentlab import SENSORS_AT, sensor_flags


def decode(uplink: Uplink) -> Values:
    flags = sensor_flags(uplink, 0x03, "DL-DLR2-002")
    payload = uplink.payload
    if not flags & 0x01:
        raise DecodeError("frame without the pulse counter (sensor 0)", offset=3)
    _, _, low, high = unpack(">4H", payload, SENSORS_AT)
    values = pulse_values(low + (high << 16), uplink.params)
    end = 13
    if flags & 0x02:
        values["battery_v"] = unpack(">H", payload, end)[0] / 1000
        end += 2
    if end != len(payload):
        raise DecodeError(f"{len(payload) - end} bytes after the flagged sensors", offset=end)
    return values


_GAS = {"medium": "gas", "pulse_factor": 0.01, "pulse_unit": "m3"}

DECODER = Decoder(
    vendor="Decentlab",
    model="DL-DLR2-002",
    medium=None,
    lorawan_ids=("decentlab/dl-dlr2-002",),
    decode=decode,
    fields=(*PULSE_FIELDS, "battery_v"),
    registers=pulse_registers(32),  # 32-bit cumulative count
    registers_fn=pulse_registers_fn(32),
    params=PULSE_PARAMS,
    examples=(
        Example(  # ours: a gas meter's reed contact, 0.01 m³ per pulse, 123456 pulses
            "pulse counter and battery",
            f_port=1,
            hex="02 199E 0003 0005 0258 E240 0001 0C9B",
            params=_GAS,
            expect={"pulse_count": 123456, "volume_m3": 1234.56, "battery_v": 3.227},
        ),
        Example("battery only", f_port=1, hex="02 199E 0002 0C9B", params=_GAS, error="sensor 0"),
        Example("protocol v1", f_port=1, hex="01 199E 0001 0000 0258 0000 0000", error="version"),
        Example("wrong port", f_port=2, hex="02 199E 0001 0000 0258 0000 0000", error="fPort"),
    ),
)
