"""Elsys ELT Lite: LoRaWAN sensor with a pulse input, used on water, gas and electricity meters.

fPort 1 (any application port accepted), Elsys payload format: a run of  TT <data>  records,
big-endian; the record type fixes the length. Those read here:
- 01 TTTT       temperature, int16, 0.1 °C                   -> temperature_c
- 07 VVVV       battery voltage, mV                           -> battery_v
- 0B CCCCCCCC   pulse input 1, absolute count, uint32         -> pulse_values(registry params)
- 0A CCCC       pulse input 1, pulses since the last report (a delta: not a register, skipped)
Skipped by their length: 02 humidity (1), 03 acceleration (3), 04 light (2), 05 motion (1),
06 CO2 (2), 08 analog (2), 09 GPS (6), 0C external temperature (2), 0D digital input (1),
0E distance (2), 0F motion count (1), 10 IR temperature (4), 11 occupancy (1), 12 water leak
(1), 14 pressure (4), 15 sound (2), 16 pulse 2 (2), 17 pulse 2 absolute (4), 18 analog 2 (2),
19 external temperature 2 (2), 1A digital input 2 (1), 1B analog uV (4), 3D debug (4).
Another type ends decoding (its length is unknown). A frame without an absolute pulse count
(0B) carries no register and is rejected.

Source: Elsys "Elsys LoRa payload" (www.elsys.se/en/elsys-payload/): type codes and lengths;
the vendor example in the TTS Device Repository (vendor/elsys/elt-2-codec.yaml).
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

_SKIP = {
    0x02: 1, 0x03: 3, 0x04: 2, 0x05: 1, 0x06: 2, 0x08: 2, 0x09: 6, 0x0A: 2, 0x0C: 2, 0x0D: 1,
    0x0E: 2, 0x0F: 1, 0x10: 4, 0x11: 1, 0x12: 1, 0x14: 4, 0x15: 2, 0x16: 2, 0x17: 4, 0x18: 2,
    0x19: 2, 0x1A: 1, 0x1B: 4, 0x3D: 4,
}  # fmt: skip


def decode(uplink: Uplink) -> Values:
    if not 1 <= uplink.f_port <= 223:
        raise DecodeError(f"unexpected fPort {uplink.f_port}: expected an application port")
    payload, i, values = uplink.payload, 0, {}
    count: int | None = None
    while i < len(payload):
        kind = payload[i]
        if kind == 0x01:
            values["temperature_c"] = unpack(">h", payload, i + 1)[0] / 10
            i += 3
        elif kind == 0x07:
            values["battery_v"] = unpack(">H", payload, i + 1)[0] / 1000
            i += 3
        elif kind == 0x0B:
            count = unpack(">I", payload, i + 1)[0]
            i += 5
        elif kind in _SKIP:
            unpack(f"{_SKIP[kind]}s", payload, i + 1)  # DecodeError on a cut record
            i += 1 + _SKIP[kind]
        else:
            raise DecodeError(f"unknown record type {kind:#04x}", offset=i)
    if count is None:
        raise DecodeError("no absolute pulse count (type 0B) in the frame", offset=len(payload))
    return {**pulse_values(count, uplink.params), **values}


_WATER = {"medium": "water", "pulse_factor": 1, "pulse_unit": "l"}

DECODER = Decoder(
    vendor="Elsys",
    model="ELT Lite",
    medium=None,
    lorawan_ids=("elsys/elt-lite",),
    decode=decode,
    fields=(*PULSE_FIELDS, "temperature_c", "battery_v"),
    registers=pulse_registers(32),
    registers_fn=pulse_registers_fn(32),
    params=PULSE_PARAMS,
    examples=(
        Example(  # ours: 22.6 °C, 3.6 V, 20 pulses since the last report, 123456 l in total
            "temperature, battery, pulse delta and absolute count",
            f_port=1,
            hex="01 00E2 07 0E10 0A 0014 0B 0001E240",
            params=_WATER,
            expect={
                "temperature_c": 22.6,
                "battery_v": 3.6,
                "pulse_count": 123456,
                "volume_m3": 123.456,
            },
        ),
        Example(  # the vendor's example: a climate frame
            "no pulse count",
            f_port=1,
            hex="0100e20229030127051406010111",
            params=_WATER,
            error="no absolute pulse count",
        ),
        Example("unknown type", 1, "01 00E2 7F 00 0B 0001E240", params=_WATER, error="unknown"),
        Example("wrong port", 0, "0B 0001E240", params=_WATER, error="fPort"),
    ),
)
