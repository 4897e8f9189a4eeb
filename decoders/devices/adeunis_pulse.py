"""Adeunis Pulse (Pulse 3 / Pulse 4, LoRaWAN): two pulse inputs, channel A and channel B.

fPort 1, big-endian. Every frame starts with  CC SS
- C: frame code (below)
- S: status byte: bits 7..5 frame counter, bit 2 timestamp appended (Pulse 4 only),
  bit 1 low battery -> alarm_low_battery, bit 0 configuration done

0x46 data, 10 bytes (14 with timestamp):  CC SS AAAAAAAA BBBBBBBB [TTTTTTTT]
- A: channel A counter, pulses, uint32 -> pulse_values (registry medium/factor)
- B: channel B counter, pulses, uint32 -> pulse_count_2 (raw)
- T: Pulse 4 timestamp, seconds since 2013-01-01T00:00Z, uint32 (present when S bit 2 is set)
0x5A channel A / 0x5B channel B history (Pulse 3 and Pulse 4):
  CC SS NNNNNNNN [DDDD] x (k-1) [TTTTTTTT]
- N: the channel's counter now (t=0), pulses, uint32
- D: pulses counted in each earlier sampling period, uint16: value(t-i) = value(t-i+1) - D(i)
- T: timestamp of t=0 as above; without it t=0 is the uplink's receive time
  k (registry param history_values: the number of counter values the device is set to send
  per frame) fixes the frame length, so a cut frame is never misread. history_interval_s (the
  device's sampling period) spaces the values; needed when k > 1. One Reading per value.

Frames without counters are rejected, naming what they are: 0x10/0x11/0x12 configuration,
0x20 network configuration, 0x30 keep-alive (daily flow min/max, tamper and leak flags
per channel), 0x33 register-write answer, 0x47 flow alarm (flow values only), and 0x48,
the first Pulse firmware's history frame (its layout depends on the device configuration:
not supported).

Source: Adeunis "PULSE / PULSE ATEX V4 LoRaWAN EU863-870 user guide" (frame codes, status
byte); frame layouts as in Adeunis' codec examples (TTS Device Repository
vendor/adeunis/pulse-codec.yaml, 0x5A with timestamp) and the Adeunis codec tests for 0x46.
"""

from datetime import UTC, datetime, timedelta

from decoders.core import (
    PULSE_FIELDS,
    PULSE_PARAMS,
    DecodeError,
    Decoder,
    Example,
    Param,
    Reading,
    Register,
    Uplink,
    Values,
    pulse_registers,
    pulse_registers_fn,
    pulse_values,
    unpack,
)

_EPOCH = datetime(2013, 1, 1, tzinfo=UTC)
_NO_COUNTERS = dict.fromkeys((0x10, 0x11, 0x12), "configuration frame") | {
    0x20: "network configuration frame", 0x30: "keep-alive frame", 0x33: "register-write answer",
    0x47: "flow alarm frame (flow values only)",
    0x48: "first-generation history frame (layout depends on the device configuration)",
}  # fmt: skip
_HISTORY_VALUES = Param("history_values", int, None, "values per history frame", low=1, high=64)
_HISTORY_STEP = Param("history_interval_s", int, None, "seconds between values", low=1, high=86400)


def _time(payload: bytes, stamped: bool) -> datetime | None:
    stamp = unpack(">I", payload, len(payload) - 4)[0] if stamped else None
    return None if stamp is None else _EPOCH + timedelta(seconds=stamp)


def decode(uplink: Uplink) -> Values | list[Reading]:
    if uplink.f_port != 1:
        raise DecodeError(f"unexpected fPort {uplink.f_port}, expected 1")
    payload = uplink.payload
    code, status = unpack(">BB", payload)
    if code in _NO_COUNTERS:
        raise DecodeError(f"frame {code:#04x} is a {_NO_COUNTERS[code]}: no counter values")
    stamped = status & 0x04 != 0
    battery: Values = {"alarm_low_battery": status & 0x02 != 0}
    if code == 0x46:
        need = 14 if stamped else 10
        if len(payload) != need:
            raise DecodeError(f"data frame is {need} bytes, got {len(payload)}", offset=0)
        count_a, count_b = unpack(">II", payload, 2)
        values = {**pulse_values(count_a, uplink.params), "pulse_count_2": count_b, **battery}
        return [Reading(values, _time(payload, stamped))] if stamped else values
    if code not in (0x5A, 0x5B):
        raise DecodeError(f"unknown frame code {code:#04x}", offset=0)
    k = _HISTORY_VALUES.get(uplink.params)
    need = 6 + 2 * (k - 1) + 4 * stamped
    if len(payload) != need:
        raise DecodeError(
            f"history frame of {k} values is {need} bytes, not {len(payload)}", offset=0
        )
    counts = [unpack(">I", payload, 2)[0]]
    for i in range(k - 1):
        counts.append(counts[-1] - unpack(">H", payload, 6 + 2 * i)[0])
        if counts[-1] < 0:
            raise DecodeError("history delta larger than the counter", offset=6 + 2 * i)
    now = _time(payload, stamped) or uplink.received_at
    if k > 1 and now is None:
        raise DecodeError("history without timestamp needs the uplink's receive time")
    step = timedelta(seconds=_HISTORY_STEP.get(uplink.params) if k > 1 else 0)
    channel = [
        pulse_values(n, uplink.params) if code == 0x5A else {"pulse_count_2": n} for n in counts
    ]
    channel[0] = {**channel[0], **battery}
    return [Reading(values, now and now - i * step) for i, values in enumerate(channel)]


_PARAMS = {"medium": "water", "pulse_factor": 10, "pulse_unit": "l"}
_HISTORY = {**_PARAMS, "history_values": 3, "history_interval_s": 3600}

_AT_15: dict[str, object] = {"time": "2024-03-01T15:00:00Z", "alarm_low_battery": True}
# Channel counters are uint32 and cumulative (Adeunis Pulse 4 manual, 0x46 frame).
_COUNTER = Register(2.0**32)

DECODER = Decoder(
    vendor="Adeunis",
    model="Pulse",
    medium=None,
    lorawan_ids=("adeunis/pulse", "adeunis/pulse-4"),
    decode=decode,
    fields=(*PULSE_FIELDS, "pulse_count_2", "alarm_low_battery"),
    registers={**pulse_registers(32), "pulse_count_2": _COUNTER},
    registers_fn=pulse_registers_fn(32),
    params=(*PULSE_PARAMS, _HISTORY_VALUES, _HISTORY_STEP),
    examples=(
        Example(  # ours: Pulse 4 data frame, low battery, timestamp 2024-03-01T15:00Z
            "data frame with timestamp",
            f_port=1,
            hex="46 27 00003039 00000007 14FFC670",
            params=_PARAMS,
            expect=[_AT_15 | {"pulse_count": 12345, "volume_m3": 123.45, "pulse_count_2": 7}],
        ),
        Example(  # ours: channel B, three hourly values, no timestamp
            "channel B history at receive time",
            f_port=1,
            hex="5B 20 00000100 0010 0020",
            params=_HISTORY,
            received_at="2024-03-01T15:00:00Z",
            expect=[
                {"time": "2024-03-01T15:00:00Z", "pulse_count_2": 256, "alarm_low_battery": False},
                {"time": "2024-03-01T14:00:00Z", "pulse_count_2": 240},
                {"time": "2024-03-01T13:00:00Z", "pulse_count_2": 208},
            ],
        ),
        Example("wrong port", f_port=2, hex="46800000009f00000002", error="unexpected fPort"),
        Example("keep-alive", f_port=1, hex="3021000000000000000000", error="keep-alive"),
        Example("configuration", f_port=1, hex="1021" + "00" * 26, error="configuration frame"),
        Example("unknown code", f_port=1, hex="9920", error="unknown frame code"),
        Example("no history_values", f_port=1, hex="5A200000012700010002", error="history_values"),
    ),
)
