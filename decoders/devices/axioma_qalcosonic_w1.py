"""Axioma Qalcosonic W1: ultrasonic water meter with its own clock, volume register and history.

All integers little-endian, times are Unix seconds (UTC), volumes in litres.

fPort 100, extended frame, 47 bytes:  TTTTTTTT SS VVVVVVVV LLLLLLLL WWWWWWWW [DDDD] x 15
fPort 100, standard frame, 9 bytes:   TTTTTTTT SS VVVVVVVV
fPort 103, alarm frame, 5 bytes:      TTTTTTTT AA
- T: meter time of the current values, uint32
- S: status code, uint8 (below)
- V: current volume, l, uint32
- L: log time, the start of the history, uint32
- W: volume at the log time, l, uint32
- D: 15 delta volumes, l, uint16: the volume of each hour after the log time (a meter
  configured to another logging interval: registry param log_interval_s)
- A: alarm bits: 0x01 leak, 0x02 burst, 0x04 freeze, 0x08 tamper, 0x10 no consumption,
  0x20 backflow
A meter sends one of the fPort 100 layouts, as configured: registry param frame_format
("extended", the default, or "standard") says which, so a cut frame is never misread.

Status code: 0x04 low battery, 0x08 permanent error, 0x10 temporary error. Bits 7..5 name the
temporary condition: 000 dry (no water in the tube), 001 leak, 011 backflow, 101 burst,
100 freeze, 110 manipulation (0x10 dry, 0x30 leak, 0x70 backflow, 0xB0 burst, 0x90 freeze).

Source: Axioma Metering, "Qalcosonic W1 Lora Payload (Long) Extended" V01.7/V01.8, sections
"Decoding the payload" and "Device alarms"; a real 47-byte frame and the alarm bit table as
read in ZennerIoT/element-parsers' Axioma W1 parser. Freeze and no-consumption have no field.
"""

from datetime import UTC, datetime, timedelta

from decoders.core import (
    DecodeError,
    Decoder,
    Example,
    Param,
    Reading,
    Register,
    Uplink,
    Values,
    unpack,
)

_HISTORY = 15
_LENGTHS = {"extended": 17 + 2 * _HISTORY, "standard": 9}
_CONDITIONS = {1: "alarm_leak", 3: "alarm_backflow", 5: "alarm_burst", 6: "alarm_tamper"}
_ALARM_BITS = {0x01: "alarm_leak", 0x02: "alarm_burst", 0x08: "alarm_tamper"}


_FRAME = Param(
    "frame_format", str, "extended", "the meter's frame", choices=("extended", "standard")
)
_LOG_INTERVAL = Param(
    "log_interval_s", int, 3600, "seconds between history values", low=1, high=86400
)


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


def _time(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def decode(uplink: Uplink) -> list[Reading]:
    payload, port = uplink.payload, uplink.f_port
    if port == 103:
        if len(payload) != 5:
            raise DecodeError(f"alarm frame is 5 bytes, got {len(payload)}", offset=len(payload))
        now, bits = unpack("<IB", payload)
        alarms: Values = {name: bits & mask != 0 for mask, name in _ALARM_BITS.items()}
        alarms["alarm_backflow"] = bits & 0x20 != 0
        return [Reading(alarms, _time(now))]
    if port != 100:
        raise DecodeError(f"unexpected fPort {port}, expected 100 or 103")
    frame = _FRAME.get(uplink.params)
    if len(payload) != _LENGTHS[frame]:
        raise DecodeError(
            f"{frame} frame is {_LENGTHS[frame]} bytes, got {len(payload)}", offset=len(payload)
        )
    now, status, volume_l = unpack("<IBI", payload)
    current = Reading({"volume_m3": volume_l / 1000, **status_values(status)}, _time(now))
    if frame == "standard":
        return [current]
    interval = _LOG_INTERVAL.get(uplink.params)
    log_time, log_l = unpack("<II", payload, 9)
    history = [Reading({"volume_m3": log_l / 1000}, _time(log_time))]
    for i, delta in enumerate(unpack(f"<{_HISTORY}H", payload, 17), 1):
        log_l += delta
        when = _time(log_time) + timedelta(seconds=i * interval)
        history.append(Reading({"volume_m3": log_l / 1000}, when))
    return [*history, current]


_OK = {
    "alarm_leak": False,
    "alarm_backflow": False,
    "alarm_burst": False,
    "alarm_tamper": False,
    "alarm_dry": False,
    "alarm_low_battery": False,
    "alarm_meter_error": False,
    "error_flags": 0,
}
# A real meter's first frame (ZennerIoT/element-parsers, Axioma W1 parser tests): no water yet
# (status 0x10, dry), 0.375 m³, log from 2020-02-04 15:00Z, no consumption since.
_REAL = "41643A5E 10 77010000 F086395E 77010000" + " 0000" * 15
_REAL_HISTORY = [
    {"time": f"{(datetime(2020, 2, 4, 15, tzinfo=UTC) + timedelta(hours=h)):%Y-%m-%dT%H:%M:%SZ}"}
    for h in range(16)
]
_NO_ALARM = dict.fromkeys(_ALARM_BITS.values(), False)

DECODER = Decoder(
    vendor="Axioma",
    model="Qalcosonic W1",
    medium="water",
    lorawan_ids=("axioma/qalcosonic-w1",),
    decode=decode,
    fields=("volume_m3", *_OK),
    registers={"volume_m3": Register(2**32 / 1000)},  # uint32 litres
    params=(_FRAME, _LOG_INTERVAL),
    examples=(
        Example(
            "extended frame of a dry meter: 15 hourly values after the log time, then now",
            f_port=100,
            hex=_REAL,
            expect=[
                *({**h, "volume_m3": 0.375} for h in _REAL_HISTORY),
                {
                    "time": "2020-02-05T06:44:17Z",
                    "volume_m3": 0.375,
                    **_OK,
                    "alarm_dry": True,
                    "error_flags": 0x10,
                },
            ],
        ),
        Example(  # ours: 2024-03-01 15:00Z, 12.345 m³, leak (0x30) and low battery
            "standard frame, leak and low battery",
            f_port=100,
            hex="70EDE165 34 39300000",
            params={"frame_format": "standard"},
            expect=[
                {
                    "time": "2024-03-01T15:00:00Z",
                    "volume_m3": 12.345,
                    **_OK,
                    "alarm_leak": True,
                    "alarm_low_battery": True,
                    "error_flags": 0x34,
                }
            ],
        ),
        Example(  # ours: 2024-03-01 15:00Z, tamper and backflow
            "alarm frame",
            f_port=103,
            hex="70EDE165 28",
            expect=[
                {
                    "time": "2024-03-01T15:00:00Z",
                    **_NO_ALARM,
                    "alarm_tamper": True,
                    "alarm_backflow": True,
                }
            ],
        ),
        Example("wrong port", f_port=2, hex="70EDE165 00 39300000", error="unexpected fPort"),
        Example("extended frame cut", f_port=100, hex="70EDE165 00 39300000", error="47 bytes"),
        Example("alarm frame too long", f_port=103, hex="70EDE165 2800", error="alarm frame"),
    ),
)
