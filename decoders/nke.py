"""nke Watteco ZCL-style uplinks (fPort 125): the pulse count of the Binary Input cluster.

Standard report layout, big-endian (nke Watteco "ZCL frame" documentation):
  FC CC LLLL AAAA [SS] TT VVVVVVVV
- FC frame control: bits 7-5 endpoint (the input), bit 0 = 1 standard report (0: batch
  report, not decoded here)
- CC command: 0x0A report attributes, 0x8A report attributes with alarm (alarm criteria
  follow the value), 0x01 read attribute response (SS status 00 before the type)
- LLLL cluster 0x000F Binary Input, AAAA attribute 0x0402 Count, TT type 0x23 (uint32)
Other clusters/attributes (present value, battery, configuration) carry no count.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from decoders.core import (
    PULSE_FIELDS,
    PULSE_PARAMS,
    DecodeError,
    Decoder,
    Example,
    Uplink,
    Value,
    Values,
    pulse_registers,
    pulse_registers_fn,
    pulse_values,
    unpack,
)

__all__ = ["binary_input_count", "pulse_counter"]

_LENGTH = {0x0A: 11, 0x01: 12}


def binary_input_count(uplink: Uplink) -> tuple[int, int]:
    """(endpoint, count) of a Binary Input Count report; DecodeError for any other frame."""
    if uplink.f_port != 125:
        raise DecodeError(f"unexpected fPort {uplink.f_port}, expected 125")
    p = uplink.payload
    control, command, cluster, attribute = unpack(">BBHH", p)
    if not control & 0x01:
        raise DecodeError("batch report: not decoded (configure standard reports)", offset=0)
    if command not in (0x0A, 0x8A, 0x01):
        raise DecodeError(f"command {command:#04x} carries no attribute value", offset=1)
    if (cluster, attribute) != (0x000F, 0x0402):
        raise DecodeError(f"cluster {cluster:#06x} attribute {attribute:#06x}: no count", offset=2)
    at = 6
    if command == 0x01:
        (status,) = unpack("B", p, at)
        if status:
            raise DecodeError(f"read attribute status {status:#04x}", offset=at)
        at += 1
    kind, count = unpack(">BI", p, at)
    if kind != 0x23:
        raise DecodeError(f"count of type {kind:#04x}, expected 0x23 (uint32)", offset=at)
    if command in _LENGTH and len(p) != _LENGTH[command]:
        raise DecodeError(f"{len(p)} bytes, expected {_LENGTH[command]}", offset=len(p))
    return control >> 5, count


def _decode_input_0(uplink: Uplink) -> Values:
    """The pulse register of input 0, by the registry's pulse params."""
    endpoint, count = binary_input_count(uplink)
    if endpoint != 0:
        raise DecodeError(f"endpoint {endpoint}: the device counts on endpoint 0", offset=0)
    return pulse_values(count, uplink.params)


def pulse_counter(
    model: str, lorawan_id: str, params: Mapping[str, Any], register: Mapping[str, Value]
) -> Decoder:
    """An nke pulse counter on input 0 (Pulse Sens'O, its AtEx variant, Flash'O): one decoder,
    and the example nke publishes ("110A000F04022300000DF5" = 3573 pulses) with ``params``
    decoding to ``register`` besides our own examples and error cases."""
    expect = {"pulse_count": 3573, **register}
    return Decoder(
        vendor="nke Watteco",
        model=model,
        medium=None,
        lorawan_ids=(lorawan_id,),
        decode=_decode_input_0,
        fields=PULSE_FIELDS,
        registers=pulse_registers(32),
        registers_fn=pulse_registers_fn(32),
        params=PULSE_PARAMS,
        examples=(
            Example(  # the example nke publishes: 3573 pulses
                "count report", 125, "11 0A 000F 0402 23 00000DF5", expect, params=params
            ),
            Example(  # ours
                "read attribute response",
                125,
                "11 01 000F 0402 00 23 00000DF5",
                expect,
                params=params,
            ),
            Example("present value report", 125, "11 0A 000F 0055 10 01", error="no count"),
            Example("batch report", 125, "32 03 0019 52E10000 002E", error="batch report"),
            Example(
                "endpoint 1", 125, "31 0A 000F 0402 23 00000DF5", params=params, error="endpoint"
            ),
            Example("wrong port", 1, "11 0A 000F 0402 23 00000DF5", error="fPort"),
        ),
    )
