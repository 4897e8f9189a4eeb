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

from decoders.core import DecodeError, Uplink, unpack

__all__ = ["binary_input_count"]

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
