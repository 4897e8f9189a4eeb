"""Axioma Qalcosonic W1 frame parts: status code, alarm frame, history (decoders/devices/...w1).

The layouts are drawn in decoders/devices/axioma_qalcosonic_w1.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from decoders.core import DecodeError, Reading, Values, unpack

__all__ = ["alarm_frame", "enhanced_24h", "history", "status_values", "utc"]

_CONDITIONS = {1: "alarm_leak", 3: "alarm_backflow", 5: "alarm_burst", 6: "alarm_tamper"}
_ALARM_BITS = {
    0x01: "alarm_leak",
    0x02: "alarm_burst",
    0x08: "alarm_tamper",
    0x20: "alarm_backflow",
}


def status_values(status: int) -> Values:
    """The common alarm set and the raw code from a W1 status code (fPort 100)."""
    temporary = status & 0x10 != 0
    condition = status >> 5 if temporary else -1
    return {
        **{name: condition == code for code, name in _CONDITIONS.items()},
        "alarm_dry": temporary and condition == 0,
        "alarm_low_battery": status & 0x04 != 0,
        "alarm_meter_error": status & 0x08 != 0,
        "error_flags": status,
    }


def utc(seconds: int) -> datetime:
    """A W1 time stamp (Unix seconds)."""
    return datetime.fromtimestamp(seconds, UTC)


def alarm_frame(payload: bytes) -> list[Reading]:
    """fPort 103: TTTTTTTT AA."""
    if len(payload) != 5:
        raise DecodeError(f"alarm frame is 5 bytes, got {len(payload)}", offset=len(payload))
    now, bits = unpack("<IB", payload)
    return [Reading({name: bits & mask != 0 for mask, name in _ALARM_BITS.items()}, utc(now))]


def history(start: datetime, litres: int, deltas: list[int], step: timedelta) -> list[Reading]:
    """The register at ``start`` and after each delta, ``step`` apart."""
    values = [litres := litres + d for d in [0, *deltas]]
    return [Reading({"volume_m3": v / 1000}, start + i * step) for i, v in enumerate(values)]


def enhanced_24h(payload: bytes) -> list[Reading]:
    """The 51-byte frame version 1: 01 TTTTTTTT SS WWWWWWWW + 23 packed 14-bit deltas."""
    version, now, status, log_l = unpack("<BIBI", payload)
    if version != 1:
        raise DecodeError(f"enhanced frame version {version}, expected 1", offset=0)
    bits = int.from_bytes(payload[10:], "little")
    if bits >> 322:
        raise DecodeError("enhanced frame: spare bits after the 23 deltas are set", offset=50)
    deltas = [(bits >> (14 * i)) & 0x3FFF for i in range(23)]
    hour = utc(now - now % 3600)
    values = history(hour - timedelta(hours=23), log_l, deltas, timedelta(hours=1))
    return [*values[:-1], Reading({**values[-1].values, **status_values(status)}, hour)]
