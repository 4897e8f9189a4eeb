"""Talkpool OY1320: LoRaWAN reader mounted on B Meters' GMDM-RFM mechanical water meters.

Any fPort (the vendor's examples use 2), 6 bytes, big-endian:  01 21 CCCCCCCC
- 01 21: report header (the only frame this decoder knows; 9-byte frames are rejected: no
  published layout)
- C: the meter's counter, uint32   -> pulse_values(registry params: the counter's unit per
  count, e.g. pulse_factor 1, pulse_unit l)

Source: Talkpool's example in the TTS Device Repository (vendor/talkpool/oy1320-codec.yaml:
"012100001738" = meter reading 5944); Talkpool OY1410 manual (same IWM family), "IWM data":
counter uint32 big-endian. The vendor codec reads only the low 16 bits of the counter.
"""

from decoders.core import (
    PULSE_FIELDS,
    PULSE_PARAMS,
    DecodeError,
    Decoder,
    Example,
    Uplink,
    Values,
    pulse_registers,
    pulse_registers_fn,
    pulse_values,
    unpack,
)


def decode(uplink: Uplink) -> Values:
    if not 1 <= uplink.f_port <= 223:
        raise DecodeError(f"unexpected fPort {uplink.f_port}: expected an application port")
    if len(uplink.payload) != 6:
        raise DecodeError(f"report is 6 bytes, got {len(uplink.payload)}", offset=0)
    head, count = unpack(">HI", uplink.payload)
    if head != 0x0121:
        raise DecodeError(f"unknown report header {head:#06x}, expected 0x0121", offset=0)
    return pulse_values(count, uplink.params)


_LITRES = {"medium": "water", "pulse_factor": 1, "pulse_unit": "l"}

DECODER = Decoder(
    vendor="Talkpool",
    model="OY1320",
    medium=None,
    lorawan_ids=("talkpool/oy1320",),
    decode=decode,
    fields=PULSE_FIELDS,
    registers=pulse_registers(32),
    registers_fn=pulse_registers_fn(32),
    params=PULSE_PARAMS,
    examples=(
        Example(  # ours: above 65535, where the vendor codec's 16-bit read would wrap
            "counter above 16 bits",
            f_port=2,
            hex="0121 0001E240",
            params=_LITRES,
            expect={"pulse_count": 123456, "volume_m3": 123.456},
        ),
        Example("9-byte frame", f_port=2, hex="0121 00001738 000000", error="6 bytes"),
        Example("other header", f_port=2, hex="0122 00001738", error="header"),
        Example("no registry medium", f_port=2, hex="0121 00001738", error="gives no medium"),
    ),
)
