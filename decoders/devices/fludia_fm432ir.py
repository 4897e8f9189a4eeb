"""Fludia FM432ir: infrared reader on a German electronic meter's (mME) optical port, SML.

Any application fPort, big-endian. The index I is the meter's register in 0.1 Wh, int64 where
the frame's signed flag S is set, else uint64 (-> kWh: I / 10 000); R are the per-step
increments (0.1 Wh each, uint16/int16, not emitted: the frame does not say when its last
step ended). T (measure): 0 = E-POS (OBIS 1.8.0, -> energy_import_kwh), 1 = E-SUM (16.8.0,
A+ minus A-: no register of ours, rejected), 2 = E-NEG (2.8.0, -> energy_export_kwh).
- F0 HH PP SS IIIIIIIIIIIIIIII [RRRR] x 8 (28 bytes), or x 15 (42) when P = 1: T1 frame,
  H 2E = E-SUM, 2F = E-POS, 30 = E-NEG; P step in minutes (1 min model: P = 1)
- HH PP SS IIIIIIIIIIIIIIII [RRRR] x n (13..51 bytes): T1 frame with adjustable step,
  H 71 = E-SUM, 72 = E-POS, 73 = E-NEG
- 74 PP SS IIIIIIIIIIIIIIII [RRRR] x n  JJJJJJJJJJJJJJJJ [RRRR] x n (23..51 bytes): double
  mode, I = E-POS and J = E-NEG; S bit 0: I signed, bit 1: J signed
- F0 2A PP TT xx vv ss aa bb cc IIIIIIIIIIIIIIII (18 bytes): T2 (status) frame, the index of
  measure T (unsigned, signed for E-SUM); v firmware, s sensitivity, a/b/c the meter's
  scalers (information: the sensor sends 0.1 Wh whatever the meter's scaler)
- F0 3A PP nn rr TT xx vv ss BB aa bb cc IIIIIIIIIIIIIIII (21 bytes): T2 frame with
  adjustable step; B bit 0 low battery (-> alarm_low_battery); T = 3 (both registers)
  carries no index
n is not in the frame (the index comes first, so a register is right whatever n). Start-up
frames (01, 5F) and frames of Ferraris meters (position A: 48-4B, 5B, 6F, 70, 12, 13: disc
turns, not registers) are rejected.

Source: Fludia's codecs in the TTS Device Repository (vendor/fludia/fm432ir-10-15mn-decode.js
and fm432ir-1mn-decode.js): frame headers and lengths, the index at bytes 4-11 (F0 frames),
3-10 (71-74) and 10-17 / 13-20 (T2), divided by 10 with powers = increment / 10 x 60 / step,
i.e. 0.1 Wh; measure codes 0/1/2/3 = OBIS 1.8.0 / 16.8.0 / 2.8.0 / both.
"""

from decoders.core import DecodeError, Decoder, Example, Register, Uplink, Values, unpack

_T1 = {0x2E: 1, 0x2F: 0, 0x30: 2}  # F0 frames: header -> measure
_T1_ADJUSTABLE = {0x71: 1, 0x72: 0, 0x73: 2}
_FIELD = {0: "energy_import_kwh", 2: "energy_export_kwh"}
_MECA = {0x48, 0x49, 0x4A, 0x4B, 0x5B, 0x6F, 0x70, 0x12, 0x13}


def _index(payload: bytes, at: int, signed: bool) -> float:
    return int(unpack(">q" if signed else ">Q", payload, at)[0]) / 10_000


def _register(measure: int, kwh: float, offset: int) -> Values:
    if measure == 1:
        raise DecodeError(
            "E-SUM (OBIS 16.8.0, A+ minus A-) is no register of ours: set the sensor to E-POS,"
            " E-NEG or double mode",
            offset=offset,
        )
    if measure not in _FIELD:
        raise DecodeError(f"unknown measure {measure} (0 E-POS, 1 E-SUM, 2 E-NEG)", offset=offset)
    return {_FIELD[measure]: kwh}


def _length(p: bytes, ok: bool, expected: str) -> None:
    if not ok:
        raise DecodeError(f"frame of {len(p)} bytes, expected {expected}", offset=0)


def decode(uplink: Uplink) -> Values:
    if not 1 <= uplink.f_port <= 223:
        raise DecodeError(f"unexpected fPort {uplink.f_port}: expected an application port")
    p, n = uplink.payload, len(uplink.payload)
    header = unpack("B", p)[0]
    if header == 0xF0:
        kind = unpack("B", p, 1)[0]
        if kind in _T1:
            _length(p, n == (42 if unpack("B", p, 2)[0] == 1 else 28), "28 (42 at 1 min step)")
            return _register(_T1[kind], _index(p, 4, p[3] != 0), 1)
        if kind == 0x2A:
            _length(p, n == 18, "18")
            return _register(p[3], _index(p, 10, p[3] == 1), 3)
        if kind == 0x3A:
            _length(p, n == 21, "21")
            low: Values = {"alarm_low_battery": bool(p[9] & 1)}
            return low if p[5] == 3 else {**_register(p[5], _index(p, 13, p[5] == 1), 5), **low}
        raise DecodeError(f"frame F0 {kind:02X}: no mME frame", offset=1)
    if header in _T1_ADJUSTABLE:
        _length(p, 13 <= n <= 51 and n % 2 == 1, "11 + 2 per step (13..51)")
        return _register(_T1_ADJUSTABLE[header], _index(p, 3, p[2] != 0), 0)
    if header == 0x74:
        _length(p, 23 <= n <= 51 and (n - 19) % 4 == 0, "19 + 4 per step (23..51)")
        export = _index(p, 11 + (n - 19) // 2, bool(p[2] & 2))
        return {"energy_import_kwh": _index(p, 3, bool(p[2] & 1)), "energy_export_kwh": export}
    if header in (0x01, 0x5F):
        raise DecodeError("start-up frame: no index", offset=0)
    if header in _MECA:
        raise DecodeError(f"frame {header:#04x}: electromechanical (Ferraris) meter", offset=0)
    raise DecodeError(f"unknown frame header {header:#04x}", offset=0)


_STEPS = " 0010" * 8  # ours: eight 15-min steps of 1.6 Wh

DECODER = Decoder(
    vendor="Fludia",
    model="FM432ir (mME infrared reader, 10/15 min and 1 min)",
    medium="electricity",
    lorawan_ids=("fludia/fm432ir-10-15mn", "fludia/fm432ir-1mn"),
    decode=decode,
    fields=("energy_import_kwh", "energy_export_kwh", "alarm_low_battery"),
    registers={
        "energy_import_kwh": Register(None),  # uint64 of 0.1 Wh: does not wrap
        "energy_export_kwh": Register(None),
    },
    examples=(  # all ours (Fludia publishes none)
        Example(
            "T1 E-POS, 15 min: 12 345.6789 kWh",
            f_port=1,
            hex="F0 2F 0F 00 00000000075BCD15" + _STEPS,
            expect={"energy_import_kwh": 12345.6789},
        ),
        Example(
            "T1 E-NEG, 1 min model (15 steps)",
            f_port=1,
            hex="F0 30 01 00 0000000000002710" + " 0001" * 15,
            expect={"energy_export_kwh": 1.0},
        ),
        Example(
            "adjustable step, E-POS, signed, 1 step",
            f_port=1,
            hex="72 0F 01 00000000075BCD15 0010",
            expect={"energy_import_kwh": 12345.6789},
        ),
        Example(
            "double mode, 1 step: import and export",
            f_port=1,
            hex="74 0F 00 00000000075BCD15 0010 00000000000186A0 0002",
            expect={"energy_import_kwh": 12345.6789, "energy_export_kwh": 10.0},
        ),
        Example(
            "T2 frame, E-NEG",
            f_port=1,
            hex="F0 2A 0F 02 00 1F 02 FF 7F FF 00000000075BCD15",
            expect={"energy_export_kwh": 12345.6789},
        ),
        Example(
            "T2 adjustable frame, both registers, low battery",
            f_port=1,
            hex="F0 3A 0F 08 01 03 00 1F 02 01 FF 7F FF 0000000000000000",
            expect={"alarm_low_battery": True},
        ),
        Example("E-SUM frame", 1, "F0 2E 0F 01 0000000000000001" + _STEPS, error="16.8.0"),
        Example("cut T1 frame", 1, "F0 2F 0F 00 00000000075BCD15 0010", error="28 \\(42"),
        Example("double mode, odd length", 1, "74 0F 00" + "00" * 22, error="19 \\+ 4"),
        Example("Ferraris meter frame", 1, "49" + "00" * 20, error="electromechanical"),
        Example("wrong port", 0, "F0 2F 0F 00 00000000075BCD15" + _STEPS, error="fPort"),
    ),
)
