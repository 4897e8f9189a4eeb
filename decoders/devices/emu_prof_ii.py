"""EMU Professional II LoRaWAN: 3-phase electricity meter (EMU Electronic AG), logger uplinks.

fPort 1-99 (data ports, registers chosen by downlink), fPort 100 (meter info after join):
  TTTTTTTT { II <value> }... CC       all numbers little-endian
- T: uint32, Unix seconds: the logger's readout time (the reading's time)
- I: register id, value length and meaning:
  00 u32 logger index, 01 u32 timestamp, 02 u32 previous timestamp  (not emitted)
  03..0A u32 Wh / varh: A+ T1, A+ T2, A- T1, A- T2, R+ T1, R+ T2, R- T1, R- T2
  0B..0E i32 W: active power L123, L1, L2, L3      0F..13 i32 mA: current L123, L1, L2, L3, N
  14..16 i32 0.1 V: voltage L1-N, L2-N, L3-N       17..19 i8 0.01: power factor L1..L3
  1A i16 0.1 Hz: frequency                         1B i32 W: average active power
  1C..23 u32 kWh / kvarh: as 03..0A                24..2B u64 Wh / varh: as 03..0A
  F0 u8 error code: bit 0 time changed, 1 CT ratio, 2 VT ratio, 3 impulse width, 4 impulse
     ratio changed, 5 power fail, 7 logbook full -> error_flags (events, no alarm_* meaning)
  F1 u32 serial number (hex digits, byte-reversed) -> meter_serial; F2 u32 fabrication number
  F3..F6 u16 CT/VT primary/secondary, F7 u8 meter type, F8/F9 BCD(4) MID/factory year,
  FA..FD ASCII(4) firmware/MID version/manufacturer/HW index, FE u32 system time (not emitted)
- C: CRC-8 (polynomial 0x07, init 0) over all bytes before it
A+ / A- / R+ / R- totals are T1 + T2 when both tariffs are in the frame. Current L123, N, power
factors and average power have no field. Uplinks of 1-2 bytes are status only (no reading).

Source: EMU Electronic AG codec (MIT) and examples in the TTS Device Repository
(TheThingsNetwork/lorawan-devices vendor/emu/profii-lp-codec_generic.js, emu-prof-ii-codec.yaml).
"""

import struct
from datetime import UTC, datetime

from decoders.core import DecodeError, Decoder, Example, Reading, Register, Uplink, Values, unpack

_ENERGY = ("energy_import_t1_kwh", "energy_import_t2_kwh", "energy_export_t1_kwh",
           "energy_export_t2_kwh", "r+t1", "r+t2", "r-t1", "r-t2")  # fmt: skip
_REGISTERS: dict[int, tuple[str, str | None, float]] = {
    **{0x03 + k: ("<I", name, 1e-3) for k, name in enumerate(_ENERGY)},
    **{0x1C + k: ("<I", name, 1.0) for k, name in enumerate(_ENERGY)},
    **{0x24 + k: ("<Q", name, 1e-3) for k, name in enumerate(_ENERGY)},
    0x00: ("<I", None, 1), 0x01: ("<I", None, 1), 0x02: ("<I", None, 1),
    0x0B: ("<i", "power_w", 1), 0x0C: ("<i", "power_l1_w", 1),
    0x0D: ("<i", "power_l2_w", 1), 0x0E: ("<i", "power_l3_w", 1),
    0x0F: ("<i", None, 1), 0x10: ("<i", "current_l1_a", 1e-3),
    0x11: ("<i", "current_l2_a", 1e-3), 0x12: ("<i", "current_l3_a", 1e-3), 0x13: ("<i", None, 1),
    0x14: ("<i", "voltage_l1_v", 0.1), 0x15: ("<i", "voltage_l2_v", 0.1),
    0x16: ("<i", "voltage_l3_v", 0.1), 0x17: ("<b", None, 1), 0x18: ("<b", None, 1),
    0x19: ("<b", None, 1), 0x1A: ("<h", "frequency_hz", 0.1), 0x1B: ("<i", None, 1),
    0xF0: ("<B", "error_flags", 1), 0xF1: ("<4s", "meter_serial", 1), 0xF2: ("<4s", None, 1),
    **{0xF3 + k: ("<H", None, 1) for k in range(4)}, 0xF7: ("<B", None, 1),
    **{0xF8 + k: ("<4s", None, 1) for k in range(7)},
}  # fmt: skip
_TOTALS = {
    "energy_import_kwh": ("energy_import_t1_kwh", "energy_import_t2_kwh"),
    "energy_export_kwh": ("energy_export_t1_kwh", "energy_export_t2_kwh"),
    "energy_reactive_import_kvarh": ("r+t1", "r+t2"),
    "energy_reactive_export_kvarh": ("r-t1", "r-t2"),
}


def crc8(data: bytes) -> int:
    """CRC-8, polynomial 0x07, initial value 0 (the meter's frame check)."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def decode(uplink: Uplink) -> list[Reading]:
    if not 1 <= uplink.f_port <= 100:
        raise DecodeError(f"unexpected fPort {uplink.f_port}, expected 1-100")
    p = uplink.payload
    if 0 < len(p) <= 2:
        raise DecodeError(f"{len(p)}-byte status uplink carries no reading")
    (stamp,) = unpack("<I", p)
    unpack("B", p, 4)  # the CRC after the time stamp
    if crc8(p[:-1]) != p[-1]:
        raise DecodeError(f"CRC-8 {crc8(p[:-1]):#04x} does not match {p[-1]:#04x}", offset=len(p))
    raw: dict[str, float | str] = {}
    i = 4
    while i < len(p) - 1:
        if p[i] not in _REGISTERS:
            raise DecodeError(f"unknown register id {p[i]:#04x}", offset=i)
        fmt, name, scale = _REGISTERS[p[i]]
        (value,) = unpack(fmt, p[: len(p) - 1], i + 1)
        if name == "meter_serial":
            raw[name] = value[::-1].hex()
        elif name is not None:
            raw[name] = value if scale == 1 else round(value * scale, 6)
        i += 1 + struct.calcsize(fmt)
    values: Values = {k: v for k, v in raw.items() if not k.startswith("r")}
    for total, (t1, t2) in _TOTALS.items():
        if t1 in raw and t2 in raw:
            values[total] = round(float(raw[t1]) + float(raw[t2]), 6)
    if not values:
        raise DecodeError("frame holds no register with a field", offset=4)
    return [Reading(values, datetime.fromtimestamp(stamp, UTC))]


_FIELDS = (
    "energy_import_kwh", "energy_export_kwh", "energy_import_t1_kwh", "energy_import_t2_kwh",
    "energy_export_t1_kwh", "energy_export_t2_kwh", "energy_reactive_import_kvarh",
    "energy_reactive_export_kvarh", "power_w", "power_l1_w", "power_l2_w", "power_l3_w",
    "current_l1_a", "current_l2_a", "current_l3_a", "voltage_l1_v", "voltage_l2_v",
    "voltage_l3_v", "frequency_hz", "error_flags", "meter_serial",
)  # fmt: skip

_NOON = {"time": "2024-03-01T12:00:00Z", "energy_import_kwh": 777777.0}
DECODER = Decoder(
    vendor="EMU Electronic",
    model="EMU Professional II LoRaWAN",
    medium="electricity",
    lorawan_ids=("emu/emu-prof-ii",),
    description="3-phase MID electricity meter with LoRaWAN logger",
    decode=decode,
    fields=_FIELDS,
    # uint32 Wh / uint32 kWh / uint64 Wh as the downlink chose: the wrap is not known per device
    registers=dict.fromkeys(_FIELDS[:8], Register(None)),
    examples=(
        Example(
            "power, voltage, current, frequency and a power-fail event (ours)",
            f_port=1,
            hex="40c3e165 0b24faffff 140a090000 1070190000 1af401 f020 7c",
            expect=[
                {
                    "time": "2024-03-01T12:00:00Z",
                    "power_w": -1500,
                    "voltage_l1_v": 231.4,
                    "current_l1_a": 6.512,
                    "frequency_hz": 50.0,
                    "error_flags": 32,
                }
            ],
        ),
        Example(
            "both import tariffs in kWh: total is their sum (ours)",
            f_port=1,
            hex="40c3e165 1c40e20100 1df1fb0900 de",
            expect=[_NOON | {"energy_import_t1_kwh": 123456, "energy_import_t2_kwh": 654321}],
        ),
        Example("wrong port", f_port=0, hex="40c3e165 00", error="unexpected fPort"),
        Example("status uplink", f_port=1, hex="0102", error="status uplink"),
        Example("bad CRC", f_port=1, hex="40c3e165 1c40e20100 1df1fb0900 df", error="CRC-8"),
        Example("unknown register", f_port=1, hex="40c3e165 2c 00 aa", error="unknown register"),
    ),
)
