"""Fludia FM432p: pulse reader ("multifluid tracker") on any meter's pulse output.

Any application fPort, big-endian. I is the pulse index (the pulses counted since the sensor
started) -> pulse_values(registry params: medium, the meter's volume or energy per pulse);
D are per-step increments (uint16, not emitted: the frame does not say when its last step
ended).
- HH IIIIII [DDDD] x 8 (20 bytes): T1 frame, H 2B = 10 min, 2C = 15 min, 2D = 60 min steps
- 5C IIIIII [DDDD] x 20 (44 bytes): T1 frame of the 1 min model
- 6B PP IIIIIIII [DDDD] x n (8..46 bytes): T1 frame with adjustable step P (minutes)
- 29 vvvvvv IIIIIIII xx PP (10 bytes): T2 (status) frame, v firmware version
- 6C vvvvvv IIIIIIII PP nn rr (11 bytes): T2 frame with adjustable step
- 01 xxxx (3 bytes): start-up frame, no index: rejected
The fixed-step T1 frames carry the index as uint24, the others as uint32: every index is
taken modulo 2**24, so a device's register is one 24-bit counter whichever frames it sends
(declared as such: metering counts the wrap, consumption stays right; the absolute register
drops by 2**24 pulses x pulse_factor when it wraps, as in the T1 frames themselves).

Source: Fludia's codecs in the TTS Device Repository (vendor/fludia/fm432p-10-15mn-decode.js,
fm432p-1mn-decode.js): headers, frame lengths, index bytes 1-3 (T1), 2-5 (6B) and 4-7 (T2).
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

_WIDTH = 24
# header -> (frame length or (shortest, longest), offset of the index, its bytes)
_FRAMES: dict[int, tuple[int | tuple[int, int], int, int]] = {
    0x2B: (20, 1, 3),
    0x2C: (20, 1, 3),
    0x2D: (20, 1, 3),
    0x5C: (44, 1, 3),
    0x6B: ((8, 46), 2, 4),
    0x29: (10, 4, 4),
    0x6C: (11, 4, 4),
}


def decode(uplink: Uplink) -> Values:
    if not 1 <= uplink.f_port <= 223:
        raise DecodeError(f"unexpected fPort {uplink.f_port}: expected an application port")
    p = uplink.payload
    header = unpack("B", p)[0]
    if header == 0x01:
        raise DecodeError("start-up frame: no index", offset=0)
    if header not in _FRAMES:
        raise DecodeError(f"unknown frame header {header:#04x}", offset=0)
    length, at, size = _FRAMES[header]
    low, high = length if isinstance(length, tuple) else (length, length)
    if not low <= len(p) <= high or (header == 0x6B and len(p) % 2):
        want = f"{low}..{high} (even)" if low != high else str(low)
        raise DecodeError(f"frame {header:#04x} of {len(p)} bytes, expected {want}", offset=0)
    index = int.from_bytes(p[at : at + size], "big") % 2**_WIDTH
    return pulse_values(index, uplink.params)


_WATER = {"medium": "water", "pulse_factor": 10, "pulse_unit": "l"}
_STEPS = " 0001" * 8

DECODER = Decoder(
    vendor="Fludia",
    model="FM432p (pulse, 10/15 min and 1 min)",
    medium=None,
    lorawan_ids=("fludia/fm432p-10-15mn", "fludia/fm432p-1mn"),
    decode=decode,
    fields=PULSE_FIELDS,
    registers=pulse_registers(_WIDTH),
    registers_fn=pulse_registers_fn(_WIDTH),
    params=PULSE_PARAMS,
    examples=(  # all ours (Fludia publishes none)
        Example(
            "T1 frame, 15 min steps: 12345 pulses of 10 l",
            f_port=1,
            hex="2C 003039" + _STEPS,
            params=_WATER,
            expect={"pulse_count": 12345, "volume_m3": 123.45},
        ),
        Example(
            "T1 frame, 1 min model",
            f_port=1,
            hex="5C 003039" + " 0000" * 20,
            params=_WATER,
            expect={"pulse_count": 12345, "volume_m3": 123.45},
        ),
        Example(
            "T1 frame, adjustable step, 1 step: the 24 low bits of the uint32 index",
            f_port=1,
            hex="6B 0F 01003039 0001",
            params=_WATER,
            expect={"pulse_count": 12345, "volume_m3": 123.45},
        ),
        Example(
            "T2 frame, gas, 0.01 m³ per pulse",
            f_port=1,
            hex="29 333133 00003039 00 0F",
            params={"medium": "gas", "pulse_factor": 0.01, "pulse_unit": "m3"},
            expect={"pulse_count": 12345, "volume_m3": 123.45},
        ),
        Example(
            "T2 frame, adjustable step",
            f_port=1,
            hex="6C 030105 00003039 0F 08 01",
            params=_WATER,
            expect={"pulse_count": 12345, "volume_m3": 123.45},
        ),
        Example("start-up frame", 1, "01 0000", params=_WATER, error="start-up"),
        Example("cut T1 frame", 1, "2C 003039 0001", params=_WATER, error="expected 20"),
        Example("odd adjustable frame", 1, "6B 0F 01003039 00", params=_WATER, error="even"),
        Example("unknown header", 1, "2A 0000", params=_WATER, error="unknown frame header"),
        Example("wrong port", 0, "2C 003039" + _STEPS, params=_WATER, error="fPort"),
    ),
)
