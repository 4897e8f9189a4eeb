"""Develiot RWMR / RWMR XL: LoRaWAN reader on a water meter's pulse output (two counters).

fPort 12, 11 bytes, little-endian:  FS AAAAAAAA BBBBBBBB VV TT
- F: bits 7-4 firmware version; S: bits 3-0 the services reported: bit 0 pulse counter 1,
  bit 1 pulse counter 2, bit 2 temperature
- A: pulse counter 1, uint32     -> pulse_values(registry params)
- B: pulse counter 2, uint32     -> pulse_count_2 (when its service is on)
- V: battery, 0..255 over 0..3.3 V -> battery_v
- T: temperature, 0..255 over -30..60 °C -> temperature_c (when its service is on)
Other fPorts carry no readings (rejected).

Source: Develiot's codec and examples in the TTS Device Repository (vendor/develiot/rwmr.js,
rwmr-codec.yaml: "15 20000000 00000000 D4 9A" = counter 1 32 pulses, 2.74 V, 24.35 °C).
"""

from decoders.core import (
    PULSE_FIELDS,
    PULSE_PARAMS,
    DecodeError,
    Decoder,
    Example,
    Register,
    Uplink,
    Values,
    pulse_registers,
    pulse_registers_fn,
    pulse_values,
    unpack,
)


def decode(uplink: Uplink) -> Values:
    if uplink.f_port != 12:
        raise DecodeError(f"unexpected fPort {uplink.f_port}, expected 12")
    if len(uplink.payload) != 11:
        raise DecodeError(f"status frame is 11 bytes, got {len(uplink.payload)}", offset=0)
    head, count_1, count_2, battery, temperature = unpack("<BIIBB", uplink.payload)
    services = head & 0x0F
    if not services & 0x01:
        raise DecodeError("pulse counter 1 is not reported (service bit 0)", offset=0)
    values: Values = {
        **pulse_values(count_1, uplink.params),
        "battery_v": round(battery * 3.3 / 255, 3),
    }
    if services & 0x02:
        values["pulse_count_2"] = count_2
    if services & 0x04:
        values["temperature_c"] = round(temperature * 90 / 255 - 30, 2)
    return values


_WATER = {"medium": "water", "pulse_factor": 1, "pulse_unit": "l"}

DECODER = Decoder(
    vendor="Develiot",
    model="RWMR / RWMR XL",
    medium=None,
    lorawan_ids=("develiot/rwmr", "develiot/rwmrxl"),
    decode=decode,
    fields=(*PULSE_FIELDS, "pulse_count_2", "battery_v", "temperature_c"),
    registers={**pulse_registers(32), "pulse_count_2": Register(2.0**32)},  # uint32 counters
    registers_fn=pulse_registers_fn(32),
    params=PULSE_PARAMS,
    examples=(
        Example(  # ours: both counters and temperature, 1 l per pulse
            "both counters and temperature",
            f_port=12,
            hex="17 39300000 07000000 D4 9A",
            params=_WATER,
            expect={
                "pulse_count": 12345,
                "volume_m3": 12.345,
                "pulse_count_2": 7,
                "battery_v": 2.744,
                "temperature_c": 24.35,
            },
        ),
        Example("counter 1 off", f_port=12, hex="14 00000000 00000000 D4 9A", error="counter 1"),
        Example("wrong port", f_port=5, hex="15 20000000 00000000 D4 9A", error="fPort 5"),
        Example("cut", f_port=12, hex="15 20000000 00000000 D4", error="11 bytes"),
    ),
)
