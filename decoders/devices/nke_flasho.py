"""nke Watteco Flash'O: optical reader of an electricity meter's pulse LED
(impulses per kWh as printed on the meter).

fPort 125, standard ZCL report of the Binary Input cluster's Count (decoders/nke.py):
  11 0A 000F 0402 23 CCCCCCCC     (11 bytes; 8A: the same with alarm criteria after the value,
                                   01: read attribute response with status 00 before 23)
- 11: frame control, endpoint 0 (the device's input), standard report
- C: pulses counted, uint32 big-endian, cumulative     -> pulse_values(registry params)
Batch reports, other clusters (present value, battery, configuration) and other endpoints
carry no count of this input and are rejected.

Source: nke Watteco Flash'O user guide and nke's ZCL frame documentation (cluster
0x000F Binary Input, attribute 0x0402 Count, uint32); the example nke publishes in its
integration guides, "110A000F04022300000DF5" = 3573 pulses.
"""

from decoders.nke import pulse_counter

DECODER = pulse_counter(
    "Flash'O",
    "nke-watteco/flasho-sensor",
    params={"medium": "electricity", "pulse_factor": 1, "pulse_unit": "wh"},
    register={"energy_import_kwh": 3.573},
)
