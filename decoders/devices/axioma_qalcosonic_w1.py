"""Axioma Qalcosonic W1: ultrasonic water meter with its own clock, volume register and history.

All integers little-endian, times are Unix seconds (UTC), volumes in litres.

fPort 100, extended frame, 47 bytes:  TTTTTTTT SS VVVVVVVV LLLLLLLL WWWWWWWW [DDDD] x 15
fPort 100, standard frame, 9 bytes:   TTTTTTTT SS VVVVVVVV
fPort 100, enhanced 24 h frame (frame version 1), 51 bytes:  01 TTTTTTTT SS WWWWWWWW [E] x 23
fPort 103, alarm frame, 5 bytes:      TTTTTTTT AA
- T: meter time of the current values, uint32
- S: status code, uint8 (below)
- V: current volume, l, uint32
- L: log time, the start of the history, uint32
- W: volume at the log time, l, uint32
- D: 15 delta volumes, l, uint16: the volume of each hour after the log time (a meter
  configured to another logging interval: registry param log_interval_s)
- E: 23 delta volumes, l, 14-bit each, packed LSB first (322 bits, 6 spare bits must be 0): the
  volume of each hour; W is the volume 23 hours before the full hour at or before T, the last
  value (W + all deltas) the volume at that full hour. The frame names no log time: this
  alignment is our reading of Axioma's example (TTS vendor/axioma/qalcosonic-w1-codec.yaml).
- A: alarm bits: 0x01 leak, 0x02 burst, 0x04 freeze, 0x08 tamper, 0x10 no consumption,
  0x20 backflow
Registry param frame_format ("extended", default, "standard", "enhanced_24h") names the
meter's configured fPort 100 layout, so a cut frame is never misread.

Status code: 0x04 low battery, 0x08 permanent error, 0x10 temporary error; bits 7..5 the
condition: 000 dry, 001 leak, 011 backflow, 101 burst, 100 freeze, 110 manipulation.

Source: Axioma Metering, "Qalcosonic W1 Lora Payload (Long) Extended" V01.7/V01.8, sections
"Decoding the payload" and "Device alarms"; a real 47-byte frame and the alarm bit table as
read in ZennerIoT/element-parsers' Axioma W1 parser. Freeze and no-consumption have no field.
"""

from datetime import UTC, datetime, timedelta

from decoders.axioma import alarm_frame, enhanced_24h, history, status_values, utc
from decoders.core import DecodeError, Decoder, Example, Param, Reading, Register, Uplink, unpack

_HISTORY = 15
_LENGTHS = {"extended": 17 + 2 * _HISTORY, "standard": 9, "enhanced_24h": 51}
_FRAME = Param("frame_format", str, "extended", "the meter's frame", choices=tuple(_LENGTHS))
_LOG_INTERVAL = Param(
    "log_interval_s", int, 3600, "seconds between history values", low=1, high=86400
)


def decode(uplink: Uplink) -> list[Reading]:
    payload, port = uplink.payload, uplink.f_port
    if port == 103:
        return alarm_frame(payload)
    if port != 100:
        raise DecodeError(f"unexpected fPort {port}, expected 100 or 103")
    frame = _FRAME.get(uplink.params)
    if len(payload) != _LENGTHS[frame]:
        raise DecodeError(
            f"{frame} frame is {_LENGTHS[frame]} bytes, got {len(payload)}", offset=len(payload)
        )
    if frame == "enhanced_24h":
        return enhanced_24h(payload)
    now, status, volume_l = unpack("<IBI", payload)
    current = Reading({"volume_m3": volume_l / 1000, **status_values(status)}, utc(now))
    if frame == "standard":
        return [current]
    interval = _LOG_INTERVAL.get(uplink.params)
    log_time, log_l = unpack("<II", payload, 9)
    deltas = list(unpack(f"<{_HISTORY}H", payload, 17))
    return [*history(utc(log_time), log_l, deltas, timedelta(seconds=interval)), current]


_OK: dict[str, bool | int] = {
    **dict.fromkeys(("alarm_leak", "alarm_backflow", "alarm_burst", "alarm_tamper"), False),
    **dict.fromkeys(("alarm_dry", "alarm_low_battery", "alarm_meter_error"), False),
    "error_flags": 0,
}
# A real meter's first frame (ZennerIoT/element-parsers, Axioma W1 parser tests): no water yet
# (status 0x10, dry), 0.375 m³, log from 2020-02-04 15:00Z, no consumption since.
_REAL = "41643A5E 10 77010000 F086395E 77010000" + " 0000" * 15
_DRY = _OK | {"time": "2020-02-05T06:44:17Z", "volume_m3": 0.375, "alarm_dry": True}
_LEAK = _OK | {"time": "2024-03-01T15:00:00Z", "volume_m3": 12.345, "alarm_leak": True}
_ALARM = {"time": "2024-03-01T15:00:00Z", "alarm_leak": False, "alarm_burst": False} | {
    "alarm_tamper": True, "alarm_backflow": True}  # fmt: skip
_24H = "01 70EDE165 00 39300000 0100" + " 00" * 39  # ours: 12.345 m³, 1 l in the first hour


def _hours(start: datetime, count: int, **values: float) -> list[dict[str, object]]:
    return [
        {"time": f"{start + timedelta(hours=h):%Y-%m-%dT%H:%M:%SZ}", **values} for h in range(count)
    ]


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
                *_hours(datetime(2020, 2, 4, 15, tzinfo=UTC), 16, volume_m3=0.375),
                _DRY | {"error_flags": 0x10},
            ],
        ),
        Example(  # ours: 2024-03-01 15:00Z, 12.345 m³, leak (0x30) and low battery
            "standard frame, leak and low battery",
            f_port=100,
            hex="70EDE165 34 39300000",
            params={"frame_format": "standard"},
            expect=[_LEAK | {"alarm_low_battery": True, "error_flags": 0x34}],
        ),
        Example(  # ours: sent 2024-03-01 15:00Z: 24 hourly values up to 15:00
            "enhanced 24 h frame (version 1)",
            f_port=100,
            hex=_24H,
            params={"frame_format": "enhanced_24h"},
            expect=[
                {"time": "2024-02-29T16:00:00Z", "volume_m3": 12.345},
                *_hours(datetime(2024, 2, 29, 17, tzinfo=UTC), 22, volume_m3=12.346),
                _LEAK | {"volume_m3": 12.346, "alarm_leak": False},
            ],
        ),
        Example(
            "enhanced frame, spare bits set",
            100,
            _24H[:-2] + "FF",
            params={"frame_format": "enhanced_24h"},
            error="spare bits",
        ),
        Example("alarm frame: tamper, backflow (ours)", 103, "70EDE165 28", expect=[_ALARM]),
        Example("wrong port", f_port=2, hex="70EDE165 00 39300000", error="unexpected fPort"),
        Example("extended frame cut", f_port=100, hex="70EDE165 00 39300000", error="47 bytes"),
        Example("alarm frame too long", f_port=103, hex="70EDE165 2800", error="alarm frame"),
    ),
)
