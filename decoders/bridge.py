"""Wireless M-Bus meters behind a LoRaWAN bridge: one uplink, readings of several meters.

A bridge forwards the wM-Bus telegrams it hears, block CRCs removed, one after another in one
uplink:  [LL CC MMMM IIIIIIII VV TT CI ...] [LL ...] ...  (each frame: its L field, then L
bytes; decoders/oms.py parses one). Each telegram is identified by its meter's address
(``core.meter_key``: manufacturer, identification, version, device type; the long header's
address when CI = 72, else the link layer's) and decoded by the OMS layer with that meter's
own registry params from ``params["meters"][key]`` (its ``aes_key``), which ingest fills from
the registry's meters behind this bridge. Every reading names its meter. A telegram that
cannot be decoded (unknown meter with an encrypted telegram, wrong key, a device type without
readings of ours such as heat cost allocators) becomes a reading with ``error`` and no values:
the meter is seen, the others are still read. Only a broken frame sequence rejects the uplink.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from decoders.core import (
    DecodeError,
    Param,
    Reading,
    Register,
    Uplink,
    check_values,
    meter_key,
    unpack,
)
from decoders.oms import decode_frame, manufacturer_code, readings, status_alarms

__all__ = [
    "DEVICE_MEDIA",
    "DEVICE_TYPES",
    "FIELDS",
    "METERS",
    "REGISTERS",
    "frame_address",
    "meter_readings",
    "split_frames",
    "telegram_readings",
]

# wM-Bus device types (EN 13757-7 / OMS Vol. 2) -> the medium their readings belong to.
DEVICE_MEDIA = {
    0x02: "electricity", 0x03: "gas", 0x04: "heat", 0x0A: "heat", 0x0B: "heat", 0x0C: "heat",
    0x0D: "heat", 0x06: "water", 0x07: "water", 0x15: "water", 0x16: "water",
}  # fmt: skip
# wM-Bus device types by name (EN 13757-7:2018 / EN 13757-3 device type table), for people.
DEVICE_TYPES = {
    0x00: "other", 0x01: "oil", 0x02: "electricity", 0x03: "gas", 0x04: "heat (outlet)",
    0x05: "steam", 0x06: "warm water", 0x07: "water", 0x08: "heat cost allocator",
    0x09: "compressed air", 0x0A: "cooling (outlet)", 0x0B: "cooling (inlet)",
    0x0C: "heat (inlet)", 0x0D: "heat / cooling", 0x0E: "bus / system component",
    0x0F: "unknown medium", 0x15: "hot water", 0x16: "cold water", 0x17: "dual water",
    0x18: "pressure", 0x19: "A/D converter", 0x1A: "smoke detector", 0x1B: "room sensor",
    0x1C: "gas detector", 0x20: "breaker", 0x21: "valve", 0x25: "customer unit",
    0x28: "waste water", 0x29: "garbage", 0x31: "communication controller",
    0x32: "unidirectional repeater", 0x33: "bidirectional repeater",
    0x36: "radio converter (system side)", 0x37: "radio converter (meter side)",
}  # fmt: skip
FIELDS = (
    "energy_heat_kwh", "energy_import_kwh", "volume_m3", "power_w", "flow_m3h", "flow_max_m3h",
    "flow_min_m3h", "flow_temp_c", "return_temp_c", "temp_diff_k", "temperature_c",
    "operating_time_h", "meter_serial", "error_flags", "alarm_low_battery", "alarm_meter_error",
)  # fmt: skip
# The meters' registers: their widths depend on each meter (M-Bus records carry no rollover).
REGISTERS = dict.fromkeys(
    ("energy_heat_kwh", "energy_import_kwh", "volume_m3", "operating_time_h"), Register(None)
)


def split_frames(payload: bytes, head: int = 0) -> list[tuple[int, bytes]]:
    """(offset, frame) of each L-prefixed wM-Bus frame; DecodeError if the sequence is broken.

    ``head``: bytes of the bridge's own before each frame (IMST: its receive time); the offset
    is then that head's, the frame follows it."""
    frames, at = [], 0
    while at < len(payload):
        if at + head >= len(payload):
            raise DecodeError(f"{head} header bytes and an L field expected", offset=at)
        length = payload[at + head]
        if length < 10:
            raise DecodeError(f"L field {length}: a wM-Bus frame has at least 10 bytes", offset=at)
        end = at + head + 1 + length
        if end > len(payload):
            raise DecodeError(f"frame of {length} bytes runs past the payload's end", offset=at)
        frames.append((at, payload[at + head : end]))
        at = end
    if not frames:
        raise DecodeError("payload holds no wM-Bus frame", offset=0)
    return frames


def frame_address(frame: bytes) -> tuple[str, int]:
    """The meter's key and device type: the long header's address (CI 72) or the link layer's."""
    at = 11 if len(frame) >= 19 and frame[10] == 0x72 else 2
    ident, man, version, device = (11, 15, 17, 18) if at == 11 else (4, 2, 8, 9)
    serial = frame[ident : ident + 4][::-1].hex()
    if not serial.isdigit():
        raise DecodeError(f"meter ID {serial} is not BCD", offset=ident)
    maker = manufacturer_code(unpack("<H", frame, man)[0])
    return meter_key(maker, serial, frame[version], frame[device]), frame[device]


METERS = Param(
    "meters", dict, {}, "the meters behind the bridge: {MMM-IIIIIIII-VV-TT: {aes_key: ...}}"
)


def _meters(params: Mapping[str, Any]) -> Mapping[str, Mapping[str, Any]]:
    meters = METERS.get(params)
    if not all(isinstance(k, str) and isinstance(v, Mapping) for k, v in meters.items()):
        raise DecodeError("params meters must map meter keys to their params")
    return meters


def telegram_readings(uplink: Uplink, frame: bytes) -> list[Reading]:
    """The readings of one telegram (a frame of ``split_frames``), naming its meter."""
    key, device = frame_address(frame)
    medium = DEVICE_MEDIA.get(device)
    if medium is None:
        return [Reading({}, meter=key, error=f"device type {device:#04x}: no readings")]
    one = replace(uplink, payload=frame, params=_meters(uplink.params).get(key, {}))
    energy = "energy_import_kwh" if medium == "electricity" else "energy_heat_kwh"
    try:
        telegram = decode_frame(one)
        got = readings(telegram, one, status_alarms(telegram.status), energy)
        for reading in got:
            check_values(reading.values, FIELDS)
    except DecodeError as exc:
        return [Reading({}, meter=key, error=str(exc))]
    return [reading._replace(meter=key) for reading in got]


def meter_readings(uplink: Uplink) -> list[Reading]:
    """The readings of every telegram in the uplink, each naming its meter (see module doc)."""
    _meters(uplink.params)  # a broken meters param rejects the uplink before any telegram
    return [
        r for _, frame in split_frames(uplink.payload) for r in telegram_readings(uplink, frame)
    ]
