"""Decentlab DL-DLR2-010: dual pulse counter (dry contact) in the Decentlab sensor format.

The DL-DLR2 family is an analog-or-digital sensor interface; only the -010 variant counts pulses
(the others report voltages, currents or resistances, which are no meter registers of ours).

fPort 1, big-endian 16-bit words:  VV IIII FFFF [sensor 0] [sensor 1] [sensor 2]
- V: protocol version, 0x02
- I: device id
- F: flags; bit n set = sensor n's words follow, in order
- sensor 0, 4 words: CCCC TTTT LLLL HHHH  input CH0: pulses in the last interval, interval (s),
  cumulative pulse count = L + 65536 * H       -> pulse_values(registry params)
- sensor 1, 4 words: the same for input CH1    -> pulse_count_2
- sensor 2, 1 word: battery voltage, mV        -> battery_v

Source: Decentlab DL-DLR2 datasheet (Decentlab-DL-DLR2-datasheet.pdf) and the vendor's codec
examples in the TTS Device Repository (vendor/decentlab/dl-dlr2-010-codec.yaml).
"""

from decoders.core import (
    PULSE_FIELDS,
    PULSE_PARAMS,
    DecodeError,
    Decoder,
    Example,
    Register,
    Uplink,
    Values,
    pulse_registers,
    pulse_registers_fn,
    pulse_values,
    unpack,
)
from decoders.decentlab import SENSORS_AT, sensor_flags


def decode(uplink: Uplink) -> Values:
    flags = sensor_flags(uplink, 0x07, "DL-DLR2-010")
    payload = uplink.payload
    values: Values = {}
    i = SENSORS_AT
    for channel in (0, 1):
        if flags & (1 << channel):
            _, _, low, high = unpack(">4H", payload, i)
            count = low + (high << 16)
            if channel == 0:
                values.update(pulse_values(count, uplink.params))
            else:
                values["pulse_count_2"] = count
            i += 8
    if flags & 0x04:
        values["battery_v"] = unpack(">H", payload, i)[0] / 1000
        i += 2
    if i != len(payload):
        raise DecodeError(f"{len(payload) - i} bytes after the flagged sensors", offset=i)
    if not values:
        raise DecodeError("flags name no sensor", offset=3)
    return values


_PARAMS = {"medium": "electricity", "pulse_factor": 1, "pulse_unit": "wh"}

# The cumulative count is 32 bits (L + 65536 * H), per input.
_COUNTER = Register(2.0**32)

DECODER = Decoder(
    vendor="Decentlab",
    model="DL-DLR2-010",
    medium=None,
    lorawan_ids=("decentlab/dl-dlr2-010",),
    decode=decode,
    fields=(
        *PULSE_FIELDS,
        "pulse_count_2",
        "battery_v",
    ),
    registers={**pulse_registers(32), "pulse_count_2": _COUNTER},
    registers_fn=pulse_registers_fn(32),
    params=PULSE_PARAMS,
    examples=(
        Example(  # ours: CH0 only, 1 Wh per pulse, 70000 pulses, battery 3.0 V
            "CH0 and battery",
            f_port=1,
            hex="02 198F 0005 000A 0258 1170 0001 0BB8",
            params=_PARAMS,
            expect={"pulse_count": 70000, "energy_import_kwh": 70.0, "battery_v": 3.0},
        ),
        Example("wrong port", f_port=2, hex="02198F00040C33", error="unexpected fPort"),
        Example("other sensor flags", f_port=1, hex="02198F00080C33", error="flags"),
        Example("trailing bytes", f_port=1, hex="02198F00040C3300", error="after the flagged"),
    ),
)
