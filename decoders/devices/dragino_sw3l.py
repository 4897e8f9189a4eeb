"""Dragino SW3L: outdoor water flow sensor (Hall-effect pulse output) with LoRaWAN node.

All multi-byte values big-endian; times are Unix seconds of the node's clock (UTC).
fPort 2, 11 bytes:  FF PPPPPPPP MM XX TTTTTTTT
- F: bits 7..2 calculate flag = the flow sensor model: 0 = 450, 1 = 360, 2 = 60 pulses per litre;
     bit 1 = water flow alarm (flow longer than the alarm timer)  -> alarm_leak
- P: pulse count, uint32; with M = 0 the running total, with M = 1 the pulses since the last
     uplink (no register: rejected, configure MOD=0)
- M: counting mode, X: reserved, T: time of the count
fPort 3: datalog, 1..n entries of 11 bytes:  FF MM XX PPPPPPPP TTTTTTTT (fields as above),
     each a reading at its own time
fPort 5, 7 bytes: device status  SS VV VV BB XX LLLL: sensor model 0x11, firmware, band,
     sub-band, battery mV (-> battery_v)
fPort 4 (configuration) carries no readings and is rejected.

Source: Dragino SW3L LoRaWAN Flow Sensor User Manual, "Uplink Payload"; the pulses-per-litre
factors as in Dragino's codec in the TTS Device Repository (vendor/dragino/sw3l.js).
"""

from datetime import UTC, datetime

from decoders.core import DecodeError, Decoder, Example, Reading, Register, Uplink, Values, unpack

_PULSES_PER_L = {0: 450, 1: 360, 2: 60}


def _count(flags: int, mode: int, pulses: int, at: int) -> Values:
    if mode != 0:
        raise DecodeError(f"counting mode {mode}: pulses per interval, no total (want MOD=0)")
    factor = _PULSES_PER_L.get(flags >> 2)
    if factor is None:
        raise DecodeError(f"unknown calculate flag {flags >> 2}", offset=at)
    return {
        "pulse_count": pulses,
        "volume_m3": round(pulses / factor / 1000, 9),
        "alarm_leak": flags & 0x02 != 0,
    }


def decode(uplink: Uplink) -> Values | list[Reading]:
    payload, port = uplink.payload, uplink.f_port
    if port == 2:
        if len(payload) != 11:
            raise DecodeError(f"report is 11 bytes, got {len(payload)}", offset=len(payload))
        flags, pulses, mode, _, when = unpack(">BIBBI", payload)
        return [Reading(_count(flags, mode, pulses, 0), datetime.fromtimestamp(when, UTC))]
    if port == 3:
        if not payload or len(payload) % 11:
            raise DecodeError(f"datalog is n x 11 bytes, got {len(payload)}", offset=len(payload))
        readings = []
        for i in range(0, len(payload), 11):
            flags, mode, _, pulses, when = unpack(">BBBII", payload, i)
            values = _count(flags, mode, pulses, i)
            readings.append(Reading(values, datetime.fromtimestamp(when, UTC)))
        return readings
    if port == 5:
        if len(payload) != 7:
            raise DecodeError(f"status is 7 bytes, got {len(payload)}", offset=len(payload))
        model, _, _, battery_mv = unpack(">BHHH", payload)
        if model != 0x11:
            raise DecodeError(f"sensor model {model:#04x} is no SW3L (0x11)", offset=0)
        return {"battery_v": battery_mv / 1000}
    raise DecodeError(f"unexpected fPort {port}, expected 2, 3 or 5")


DECODER = Decoder(
    vendor="Dragino",
    model="SW3L",
    medium="water",
    lorawan_ids=("dragino/sw3l",),
    decode=decode,
    fields=("pulse_count", "volume_m3", "alarm_leak", "battery_v"),
    registers={
        "pulse_count": Register(2.0**32),  # uint32 running total (MOD=0)
        # the pulses-per-litre factor comes in the payload: the volume wraps with the count
        "volume_m3": Register(None),
    },
    examples=(
        Example(  # ours: 60 pulses/l sensor, 123456 pulses, 2024-03-01 15:00Z
            "total pulses",
            f_port=2,
            hex="08 0001E240 00 00 65E1ED70",
            expect=[
                {
                    "time": "2024-03-01T15:00:00Z",
                    "pulse_count": 123456,
                    "volume_m3": 2.0576,
                    "alarm_leak": False,
                }
            ],
        ),
        Example(  # ours: 450 pulses/l sensor, flow alarm
            "datalog entry with alarm",
            f_port=3,
            hex="02 00 00 0006DDD0 65E1ED70",
            expect=[
                {
                    "time": "2024-03-01T15:00:00Z",
                    "pulse_count": 450000,
                    "volume_m3": 1.0,
                    "alarm_leak": True,
                }
            ],
        ),
        Example("device status", f_port=5, hex="11 0120 01 FF 0CE4", expect={"battery_v": 3.3}),
        Example("wrong port", f_port=42, hex="0B880100250001", error="unexpected fPort"),
        Example("interval mode", f_port=2, hex="08 0000000A 01 00 65E1ED70", error="MOD=0"),
    ),
)
