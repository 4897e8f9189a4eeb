"""The Decentlab sensor frame shared by Decentlab's devices (fPort 1, big-endian words).

  VV IIII FFFF [sensor words...]
- V: protocol version, 0x02; I: device id; F: flags, bit n = sensor n's words follow
Source: Decentlab DL-DLR2 datasheet and the vendor codecs in the TTS Device Repository.
"""

from __future__ import annotations

from decoders.core import DecodeError, Uplink, unpack

__all__ = ["SENSORS_AT", "sensor_flags"]

SENSORS_AT = 5  # the first sensor's words start here


def sensor_flags(uplink: Uplink, known: int, model: str) -> int:
    """The flags of a Decentlab frame; DecodeError for another port, version or sensor."""
    if uplink.f_port != 1:
        raise DecodeError(f"unexpected fPort {uplink.f_port}, expected 1")
    version, _, flags = unpack(">BHH", uplink.payload)
    if version != 0x02:
        raise DecodeError(f"protocol version {version}, expected 2", offset=0)
    if flags & ~known:
        raise DecodeError(f"flags {flags:#06x} name sensors the {model} lacks", offset=3)
    return int(flags)
