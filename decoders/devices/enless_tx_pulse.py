"""Enless TX PULSE (600-036), TX PULSE ATEX (600-037), TX PULSE LED (600-038): pulse counters.

fPort 1, 22 bytes, big-endian:  IIIIII TT QQ FF AAAAAAAA BBBBBBBB CCCCCCCC LLLL SSSS
- I: radio ID (24 bit); T: device type 0x08 TX PULSE, 0x09 TX PULSE ATEX, 0x0A TX PULSE LED
- Q: sequence counter; F: bits 0-5 firmware version
- A, B, C: cumulative pulse counters of input 1, input 2 and the open-collector input, uint32
- L: alarm word: bits 0/1/2 = input 1/2/OC flow above threshold, bits 4/5/6 = flow below
     threshold, bits 8/9/10 = input 1/2/OC leak (flow never stops)
- S: status word: bit 0 alarm message, bits 2-3 battery (0 100 %, 1 75 %, 2 50 %, 3 25 %),
     bits 4-6 input 1/2/OC closed, bits 8-10 debounce on
Which input the meter is wired to is the installation's choice: registry param `pulse_input`
("ch1" default, "ch2" or "oc") picks the counter that becomes pulse_count and, with the registry's
medium / pulse_factor / pulse_unit, the gas volume or electricity energy register (a gas meter's
reed contact, or an electricity meter's LED on TX PULSE LED). That input's leak bit maps to
alarm_leak; error_flags is the whole alarm word (threshold alarms have no common alarm field).

Source: Enless Wireless codec and examples in the TTS Device Repository
(TheThingsNetwork/lorawan-devices vendor/enless-wireless/enlessdecoder.js,
tx-pulse-600-codec.yaml, tx-pulse-led-600-038-codec.yaml).
"""

from decoders.core import (
    PULSE_FIELDS,
    PULSE_PARAMS,
    DecodeError,
    Decoder,
    Example,
    Param,
    Uplink,
    Values,
    pulse_registers,
    pulse_registers_fn,
    pulse_values,
    unpack,
)

_TYPES = {0x08: "TX PULSE", 0x09: "TX PULSE ATEX", 0x0A: "TX PULSE LED"}
_INPUTS = ("ch1", "ch2", "oc")
_INPUT = Param("pulse_input", str, "ch1", "the input the meter is wired to", choices=_INPUTS)
_BATTERY = (100, 75, 50, 25)


def decode(uplink: Uplink) -> Values:
    if uplink.f_port != 1:
        raise DecodeError(f"unexpected fPort {uplink.f_port}, expected 1")
    kind, *counters, alarms, status = unpack(">3xB2x3IHH", uplink.payload)
    if kind not in _TYPES:
        raise DecodeError(f"device type {kind:#04x} is not a TX PULSE (0x08-0x0A)", offset=3)
    n = _INPUTS.index(_INPUT.get(uplink.params))
    return {
        **pulse_values(counters[n], uplink.params),
        "alarm_leak": bool(alarms & (0x100 << n)),
        "error_flags": alarms,
        "battery_pct": _BATTERY[(status >> 2) & 0x03],
    }


_GAS = {"medium": "gas", "pulse_factor": 10, "pulse_unit": "l"}
_LED = {"medium": "electricity", "pulse_factor": 1, "pulse_unit": "wh", "pulse_input": "oc"}
_FIELDS = (*PULSE_FIELDS, "alarm_leak", "error_flags", "battery_pct")
DECODER = Decoder(
    vendor="Enless Wireless",
    model="TX PULSE / TX PULSE LED",
    medium=None,
    lorawan_ids=(
        "enless-wireless/tx-pulse-600",
        "enless-wireless/tx-pulse-atex-600-037",
        "enless-wireless/tx-pulse-led-600-038",
    ),
    description="pulse counter for gas/water meter contacts or an electricity meter's LED",
    decode=decode,
    fields=_FIELDS,
    registers=pulse_registers(32),  # uint32 cumulative counters
    registers_fn=pulse_registers_fn(32),
    params=(*PULSE_PARAMS, _INPUT),
    examples=(
        Example(
            "gas meter on input 1, 10 l per pulse, battery 75 % (ours)",
            f_port=1,
            hex="000095 08 32 01 0001E240 00000000 00000000 0000 0704",
            params=_GAS,
            expect={
                "pulse_count": 123456,
                "volume_m3": 1234.56,
                "alarm_leak": False,
                "error_flags": 0,
                "battery_pct": 75,
            },
        ),
        Example(
            "LED electricity meter on the OC input, 1 Wh per pulse, leak bit set (ours)",
            f_port=1,
            hex="0000AA 0A 0E 01 00000000 00000000 000F4240 0400 0000",
            params=_LED,
            expect={
                "pulse_count": 1000000,
                "energy_import_kwh": 1000.0,
                "alarm_leak": True,
                "error_flags": 1024,
                "battery_pct": 100,
            },
        ),
        Example("wrong port", f_port=2, hex="00", error="unexpected fPort"),
        Example(
            "temperature sensor frame",
            f_port=1,
            hex="000095 04 32 01 0001E240 00000000 00000000 0000 0704",
            params=_GAS,
            error="not a TX PULSE",
        ),
        Example("truncated", f_port=1, hex="000095 08 32 01 0001", error="payload length"),
    ),
)
