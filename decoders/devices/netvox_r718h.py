"""Netvox R718H / R718H2: one / two pulse counter inputs (dry contact), status reports.

fPort 6, 11 bytes, big-endian:  VV DD RR BB PPPP QQQQ XXXXXX
- V: protocol version
- D: device type, 0x1F = R718H (one input), 0x3F = R718H2 (two inputs)
- R: report type, 0x01 = status report (0x00 = startup version report: no readings, rejected)
- B: battery, 0.1 V in bits 6..0; bit 7 set = low battery
- P: pulse count of input 1, uint16 (wraps at 65535)
- Q: pulse count of input 2, uint16 (R718H2 only; reserved on the R718H)
- X: reserved
fPort 7 carries configuration responses (no readings, rejected).

Counter mode: by default the device clears its counters after each report, so a count is the
pulses since the previous report (a delta, summed by metering); configured not to clear, it is
a running uint16 total that wraps at 65536. Registry param `counter_mode`: "delta" (default, as
the device ships) or "cumulative". In delta mode the medium register is the period's volume or
energy (pulse_offset does not apply).

Source: Netvox R718H / R718H2 user manuals, "Data Report"; the report layout as in the
TTS Device Repository codec examples (vendor/netvox/r718h-codec.yaml, r718h2-codec.yaml).
"""

from collections.abc import Mapping
from typing import Any

from decoders.core import (
    PULSE_FIELDS,
    PULSE_PARAMS,
    DecodeError,
    Decoder,
    Example,
    Param,
    Register,
    Uplink,
    Values,
    pulse_registers,
    pulse_registers_fn,
    pulse_values,
    unpack,
)

_TWO_INPUTS = {0x1F: False, 0x3F: True}
_MODES = {"delta": True, "cumulative": False}


_MODE = Param(
    "counter_mode",
    str,
    "delta",
    "delta: cleared after each report",
    choices=("delta", "cumulative"),
)


def _mode(params: Mapping[str, Any]) -> bool:
    return _MODES[_MODE.get(params)]


def registers(params: Mapping[str, Any]) -> Mapping[str, Register]:
    """Delta counts, or uint16 running totals: as the device's counter_mode says."""
    delta = _mode(params)
    found = dict(pulse_registers_fn(16, delta=delta)(params))
    found["pulse_count_2"] = found["pulse_count"]
    return found


def decode(uplink: Uplink) -> Values:
    if uplink.f_port != 6:
        raise DecodeError(f"unexpected fPort {uplink.f_port}, expected 6")
    if len(uplink.payload) != 11:
        raise DecodeError(f"report is 11 bytes, got {len(uplink.payload)}", offset=0)
    _, device, report, battery, count_1, count_2 = unpack(">BBBBHH", uplink.payload)
    if device not in _TWO_INPUTS:
        raise DecodeError(
            f"device type {device:#04x} is no R718H (0x1f) or R718H2 (0x3f)", offset=1
        )
    if report != 0x01:
        raise DecodeError(f"report type {report:#04x} carries no readings (want 0x01)", offset=2)
    delta = _mode(uplink.params)
    values: Values = {
        **pulse_values(count_1, uplink.params, delta=delta),
        "battery_v": (battery & 0x7F) / 10,
        "alarm_low_battery": battery & 0x80 != 0,
    }
    if _TWO_INPUTS[device]:
        values["pulse_count_2"] = count_2
    return values


_PARAMS = {"medium": "water", "pulse_factor": 10, "pulse_unit": "l", "counter_mode": "cumulative"}

DECODER = Decoder(
    vendor="Netvox",
    model="R718H / R718H2",
    medium=None,
    lorawan_ids=("netvox/r718h", "netvox/r718h2"),
    decode=decode,
    fields=(
        *PULSE_FIELDS,
        "pulse_count_2",
        "battery_v",
        "alarm_low_battery",
    ),
    registers={**pulse_registers(None, delta=True), "pulse_count_2": Register(None, delta=True)},
    registers_fn=registers,
    params=(*PULSE_PARAMS, _MODE),
    examples=(
        Example(  # ours: R718H2, low battery 2.9 V
            "R718H2 status report, low battery",
            f_port=6,
            hex="01 3F 01 9D 3039 0007 000000",
            params=_PARAMS,
            expect={
                "pulse_count": 12345,
                "volume_m3": 123.45,
                "pulse_count_2": 7,
                "battery_v": 2.9,
                "alarm_low_battery": True,
            },
        ),
        Example("wrong port", f_port=7, hex="811F0000000000000000 00", error="unexpected fPort"),
        Example(
            "startup version report",
            f_port=6,
            hex="011F0064022020100900 00",
            params=_PARAMS,
            error="carries no readings",
        ),
        Example(
            "R718H delta mode (the default): the offset does not apply",
            f_port=6,
            hex="01 1F 01 24 0064 0000 000000",
            params={"medium": "gas", "pulse_factor": 0.01, "pulse_unit": "m3", "pulse_offset": 5},
            expect={
                "pulse_count": 100,
                "volume_m3": 1.0,
                "battery_v": 3.6,
                "alarm_low_battery": False,
            },
        ),
        Example(
            "unknown counter mode",
            f_port=6,
            hex="01 1F 01 24 0064 0000 000000",
            params={**_PARAMS, "counter_mode": "sometimes"},
            error="counter_mode",
        ),
        Example("other device", f_port=6, hex="01 05 01 24 0064 0000 000000", error="device type"),
    ),
)
