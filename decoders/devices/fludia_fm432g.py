"""Fludia FM432g (10/15 min): LoRaWAN sensor on a gas meter's index, T1 frame.

Any application fPort, 20 bytes, big-endian:  HH IIIIII [DDDD] x 8
- H: frame header and sampling step: 0x1D = 10 min, 0x1E = 15 min, 0x1F = 60 min (T1 frame);
  other headers (start-up, configuration frames) carry no index and are rejected
- I: the meter's index, uint24, in the meter's pulses      -> pulse_values(registry params:
  the gas meter's volume per pulse, e.g. pulse_factor 0.01, pulse_unit m3)
- D: 8 increments, uint16, the pulses of each of the last 8 steps (not emitted: the frame
  does not say when its last step ended)

Source: Fludia's codec in the TTS Device Repository (vendor/fludia/fm432g-10-15mn-decode.js:
header 29/30/31 = step 10/15/60 min, index bytes 1-3, 8 increments of 2 bytes).
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

_STEPS = {0x1D: 10, 0x1E: 15, 0x1F: 60}


def decode(uplink: Uplink) -> Values:
    if not 1 <= uplink.f_port <= 223:
        raise DecodeError(f"unexpected fPort {uplink.f_port}: expected an application port")
    header = unpack("B", uplink.payload)[0]
    if header not in _STEPS:
        raise DecodeError(f"header {header:#04x} is no T1 frame (0x1D-0x1F)", offset=0)
    if len(uplink.payload) != 20:
        raise DecodeError(f"T1 frame is 20 bytes, got {len(uplink.payload)}", offset=0)
    index = int.from_bytes(uplink.payload[1:4], "big")
    return pulse_values(index, uplink.params)


_GAS = {"medium": "gas", "pulse_factor": 0.01, "pulse_unit": "m3"}

DECODER = Decoder(
    vendor="Fludia",
    model="FM432g (10/15 min)",
    medium=None,
    lorawan_ids=("fludia/fm432g-10-15mn",),
    decode=decode,
    fields=PULSE_FIELDS,
    registers=pulse_registers(24),  # uint24 index
    registers_fn=pulse_registers_fn(24),
    params=PULSE_PARAMS,
    examples=(
        Example(  # ours: 15 min steps, index 123456 x 0.01 m³
            "T1 frame",
            f_port=1,
            hex="1E 01E240" + " 0001" * 8,
            params=_GAS,
            expect={"pulse_count": 123456, "volume_m3": 1234.56},
        ),
        Example("start-up frame", f_port=1, hex="10 0000", params=_GAS, error="no T1 frame"),
        Example("cut T1 frame", f_port=1, hex="1E 01E240 0001", params=_GAS, error="20 bytes"),
        Example("wrong port", f_port=0, hex="1E 01E240" + " 0001" * 8, error="fPort"),
    ),
)
