"""Milesight EM300-DI: pulse counter (dry contact input) with temperature, channel/type records.

fPort 85. The payload is a run of records  II TT <data>  (channel id, type), little-endian:
- 01 75  1 B  battery, %, uint8
- 03 67  2 B  temperature, 0.1 °C, int16
- 04 68  1 B  humidity, 0.5 %RH (not in our vocabulary: skipped)
- 05 00  1 B  input level (digital mode: skipped)
- 05 C8  4 B  pulse count, uint32                             -> pulse_values(registry params)
- 05|06 E1  8 B  water conversion (fw 1.3+): WWWW PPPP FFFFFFFF  water per pulse, 0.1, uint16;
               pulses, 0.1, uint16; water, float32 in the configured unit (registry water_unit,
               "m3" default, or "l")                            -> volume_m3
- 85 00  2 B  input level + input alarm (skipped)
- 85|86 E1  9 B  water conversion as above + alarm: 3 water flow timeout (continuous flow,
               alarm_leak true), 4 its release (false); 1/2 water outage timeout (no field)
- 20 CE  13 B history: TTTTTTTT tttt hh MM gg PPPPPPPP  Unix time, temperature, humidity,
               mode (1 digital, 2 counter), level, pulse count  -> a Reading at its own time
- 21 CE  18 B history v2: TTTTTTTT tttt hh AA MM gg WWWW PPPP FFFFFFFF  (A alarm as above,
               water as in 05 E1 when mode 2)
- FF xx  device information (versions, serial, class, reset, status): skipped
A frame without a pulse count, water register or history record carries no meter value and is
rejected (it is also what a cut frame looks like).

Source: Milesight-IoT/SensorDecoders EM_Series/EM300_Series/EM300-DI (README payload table and
decoder); EM300-DI user guide, "Uplink packets".
"""

import math
from datetime import UTC, datetime

from decoders.core import (
    PULSE_FIELDS,
    PULSE_PARAMS,
    DecodeError,
    Decoder,
    Example,
    Param,
    Reading,
    Uplink,
    Values,
    pulse_registers,
    pulse_registers_fn,
    pulse_values,
    unpack,
)

_SKIP = {(0x04, 0x68): 1, (0x05, 0x00): 1, (0x85, 0x00): 2}
_INFO = {0x01: 1, 0x09: 2, 0x0A: 2, 0x0B: 1, 0x0F: 1, 0x16: 8, 0xFE: 1, 0xFF: 2}
_WATER_UNITS = {"m3": 1.0, "l": 1000.0}
_FLOW_ALARM = {3: True, 4: False}


_WATER_UNIT = Param("water_unit", str, "m3", "water conversion unit", choices=("m3", "l", "L"))


def _water(uplink: Uplink, payload: bytes, i: int) -> Values:
    water_per, pulses, water = unpack("<HHf", payload, i)
    if not math.isfinite(water) or water < 0 or water_per == 0 or pulses == 0:
        raise DecodeError(f"implausible water register {water!r}", offset=i)
    unit = _WATER_UNIT.get(uplink.params).lower()
    return {"volume_m3": round(water / _WATER_UNITS[unit], 6)}


def decode(uplink: Uplink) -> list[Reading]:
    if uplink.f_port != 85:
        raise DecodeError(f"unexpected fPort {uplink.f_port}, expected 85")
    payload, i = uplink.payload, 0
    now: Values = {}
    history: list[Reading] = []
    metered = False
    while i < len(payload):
        channel, kind = unpack("<BB", payload, i)
        i += 2
        if (channel, kind) in _SKIP:
            unpack(f"<{_SKIP[channel, kind]}s", payload, i)
            i += _SKIP[channel, kind]
        elif channel == 0xFF and kind in _INFO:
            unpack(f"<{_INFO[kind]}s", payload, i)
            i += _INFO[kind]
        elif (channel, kind) == (0x01, 0x75):
            now["battery_pct"] = min(unpack("<B", payload, i)[0], 100)
            i += 1
        elif (channel, kind) == (0x03, 0x67):
            now["temperature_c"] = unpack("<h", payload, i)[0] / 10
            i += 2
        elif (channel, kind) == (0x05, 0xC8):
            now.update(pulse_values(unpack("<I", payload, i)[0], uplink.params))
            metered, i = True, i + 4
        elif kind == 0xE1 and channel in (0x05, 0x06, 0x85, 0x86):
            now.update(_water(uplink, payload, i))
            metered, i = True, i + 8
            if channel & 0x80:
                alarm = unpack("<B", payload, i)[0]
                if alarm in _FLOW_ALARM:
                    now["alarm_leak"] = _FLOW_ALARM[alarm]
                i += 1
        elif kind == 0xCE and channel in (0x20, 0x21):
            v2 = channel == 0x21
            unpack(f"<{18 if v2 else 13}s", payload, i)  # the whole record is there
            when, temp_dc, _, *rest = unpack("<IhBBB" + "B" * v2, payload, i)
            values: Values = {"temperature_c": temp_dc / 10}
            alarm, mode = rest[:2] if v2 else (0, rest[0])
            if alarm in _FLOW_ALARM:
                values["alarm_leak"] = _FLOW_ALARM[alarm]
            if mode == 2 and v2:
                values.update(_water(uplink, payload, i + 10))
            elif mode == 2:
                values.update(pulse_values(unpack("<I", payload, i + 9)[0], uplink.params))
            history.append(Reading(values, datetime.fromtimestamp(when, UTC)))
            metered, i = True, i + (18 if v2 else 13)
        else:
            raise DecodeError(f"unknown record {channel:#04x} {kind:#04x}", offset=i - 2)
    if not metered:
        raise DecodeError("no pulse count, water register or history record", offset=len(payload))
    return ([Reading(now)] if now else []) + history


_PARAMS = {"medium": "water", "pulse_factor": 10, "pulse_unit": "l"}
_PULSES: Values = {"pulse_count": 12345, "volume_m3": 123.45}

DECODER = Decoder(
    vendor="Milesight",
    model="EM300-DI",
    medium=None,
    lorawan_ids=("milesight-iot/em300-di",),
    decode=decode,
    fields=(*PULSE_FIELDS, "temperature_c", "battery_pct", "alarm_leak"),
    registers=pulse_registers(32),  # uint32 pulse count; the water conversion is a float32
    registers_fn=pulse_registers_fn(32),
    params=(*PULSE_PARAMS, _WATER_UNIT),
    examples=(
        Example(  # ours: 12345 pulses of 10 l
            "battery, temperature, pulse count",
            f_port=85,
            hex="01 75 5C 03 67 0E01 05 C8 39300000",
            params=_PARAMS,
            expect={"battery_pct": 92, "temperature_c": 27.0, **_PULSES},
        ),
        Example(  # ours: 0.1 l per pulse conversion, 12.5 m³, continuous-flow alarm
            "water conversion with flow timeout alarm",
            f_port=85,
            hex="85 E1 0100 0A00 00004841 03",
            expect={"volume_m3": 12.5, "alarm_leak": True},
        ),
        Example("wrong port", f_port=10, hex="01755C05C800010000", error="unexpected fPort"),
        Example("battery only", f_port=85, hex="01755C", params=_PARAMS, error="no pulse count"),
        Example("unknown record", f_port=85, hex="0999 00", params=_PARAMS, error="unknown record"),
        Example("no registry medium", f_port=85, hex="05C800010000", error="gives no medium"),
    ),
)
