"""nke Watteco Pulse Sens'O: pulse counter on a water, gas or electricity meter's
pulse output (dry contact or open collector).

fPort 125, standard ZCL report of the Binary Input cluster's Count (decoders/nke.py):
  11 0A 000F 0402 23 CCCCCCCC     (11 bytes; 8A: the same with alarm criteria after the value,
                                   01: read attribute response with status 00 before 23)
- 11: frame control, endpoint 0 (the device's input), standard report
- C: pulses counted, uint32 big-endian, cumulative     -> pulse_values(registry params)
Batch reports, other clusters (present value, battery, configuration) and other endpoints
carry no count of this input and are rejected.

Source: nke Watteco Pulse Sens'O user guide and nke's ZCL frame documentation (cluster
0x000F Binary Input, attribute 0x0402 Count, uint32); the example nke publishes in its
integration guides, "110A000F04022300000DF5" = 3573 pulses.
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
)
from decoders.nke import binary_input_count


def decode(uplink: Uplink) -> Values:
    endpoint, count = binary_input_count(uplink)
    if endpoint != 0:
        raise DecodeError(f"endpoint {endpoint}: the Pulse Sens'O counts on endpoint 0", offset=0)
    return pulse_values(count, uplink.params)


_PARAMS = {"medium": "water", "pulse_factor": 10, "pulse_unit": "l"}

DECODER = Decoder(
    vendor="nke Watteco",
    model="Pulse Sens'O",
    medium=None,
    lorawan_ids=("nke-watteco/pulse-senso-sensor",),
    decode=decode,
    fields=PULSE_FIELDS,
    registers=pulse_registers(32),
    registers_fn=pulse_registers_fn(32),
    params=PULSE_PARAMS,
    examples=(
        Example(  # the example nke publishes: 3573 pulses
            "count report",
            f_port=125,
            hex="11 0A 000F 0402 23 00000DF5",
            params=_PARAMS,
            expect={"pulse_count": 3573, "volume_m3": 35.73},
        ),
        Example(  # ours
            "read attribute response",
            f_port=125,
            hex="11 01 000F 0402 00 23 00000DF5",
            params=_PARAMS,
            expect={"pulse_count": 3573, "volume_m3": 35.73},
        ),
        Example("present value report", 125, "11 0A 000F 0055 10 01", error="no count"),
        Example("batch report", 125, "32 03 0019 52E10000 002E", error="batch report"),
        Example("endpoint 1", 125, "31 0A 000F 0402 23 00000DF5", params=_PARAMS, error="endpoint"),
        Example("wrong port", 1, "11 0A 000F 0402 23 00000DF5", error="fPort"),
    ),
)
