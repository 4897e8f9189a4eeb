"""B Meters IWM-LR3: LoRaWAN pulse reader clipped onto B Meters water meters (GMB, CPR-M3, WDE-K50).

fPort 1, periodic report, 13 bytes (15 with temperature enabled), least significant byte first:
  CC AAAAAAAA RRRRRRRR KK MM VV LL [TTTT]
- C: application code 44 (0x2C: the manual's numbers are decimal, as the vendor example shows)
- A: absolute register = forward minus reverse flow, uint32, in the unit VIF names
- R: reverse flow counter, uint32, litres
- K: index K (litres per count as mounted: 1, 10 or 100)
- M: medium, 0 = water, 1 = hot water
- V: unit of A, "VIF 13" l, 14 = 10 l, 15 = 100 l, 16 = m³ (the reader moves up one step when the
     8-digit counter overflows); sent as decimal 13..16 (0x0D..0x10, the vendor example), the M-Bus
     codes 0x13..0x16 are read the same
- L: alarms: bit 0 magnetic, 1 removal, 2 sensor fraud (-> alarm_tamper), 3 leakage
     (-> alarm_leak), 4 reverse flow (-> alarm_backflow), 5 low battery; the byte -> error_flags
- T: temperature (format not published in the manual: not decoded); a reader with temperature
     enabled (SET_ALARM_PAR) is marked in the registry with param temperature: true

Source: B METERS "IWM-LR3 - IWM-LR4 User Manual" v1.0, "Payload description", "Vif and management
of counters", "Alarm byte coding", GET_REVOLUTION_COUNTERS; the vendor's example in the TTS
Device Repository (vendor/b-meters/iwmlr3-codec.yaml).
"""

from decoders.core import DecodeError, Decoder, Example, Param, Register, Uplink, Values, unpack

_VIF_M3 = {13: 0.001, 14: 0.01, 15: 0.1, 16: 1.0, 0x13: 0.001, 0x14: 0.01, 0x15: 0.1, 0x16: 1.0}


_TEMPERATURE = Param("temperature", bool, False, "the reader sends temperature (SET_ALARM_PAR)")


def decode(uplink: Uplink) -> Values:
    if uplink.f_port != 1:
        raise DecodeError(f"unexpected fPort {uplink.f_port}, expected 1")
    payload = uplink.payload
    want = 15 if _TEMPERATURE.get(uplink.params) else 13
    if len(payload) != want:
        raise DecodeError(f"report is {want} bytes, got {len(payload)}", offset=len(payload))
    code, absolute, reverse_l, _, medium, vif, alarms = unpack("<BIIBBBB", payload)
    if code != 44:
        raise DecodeError(f"application code {code}, expected 44", offset=0)
    if medium not in (0, 1):
        raise DecodeError(f"medium {medium} is no water (0) or hot water (1)", offset=10)
    if vif not in _VIF_M3:
        raise DecodeError(f"VIF {vif:#04x} is no volume unit 13..16", offset=11)
    return {
        "volume_m3": round(absolute * _VIF_M3[vif], 9),
        "volume_reverse_m3": reverse_l / 1000,
        "alarm_tamper": alarms & 0x07 != 0,
        "alarm_leak": alarms & 0x08 != 0,
        "alarm_backflow": alarms & 0x10 != 0,
        "alarm_low_battery": alarms & 0x20 != 0,
        "error_flags": alarms,
    }


_OK = {
    "alarm_tamper": False,
    "alarm_leak": False,
    "alarm_backflow": False,
    "alarm_low_battery": False,
    "error_flags": 0,
}

DECODER = Decoder(
    vendor="B Meters",
    model="IWM-LR3",
    medium="water",
    lorawan_ids=("b-meters/iwm-lr3",),
    decode=decode,
    fields=("volume_m3", "volume_reverse_m3", *_OK),
    registers={
        # the reader steps A up one VIF unit when its 8 digits overflow (manual, "Vif and
        # management of counters"): the register in m³ does not wrap
        "volume_m3": Register(None),
        "volume_reverse_m3": Register(2**32 / 1000),  # uint32 litres
    },
    params=(_TEMPERATURE,),
    examples=(
        Example(  # ours: 123456 l forward, 12 l reverse, K = 1, cold water
            "periodic report",
            f_port=1,
            hex="2C 40E20100 0C000000 01 00 0D 00",
            expect={"volume_m3": 123.456, "volume_reverse_m3": 0.012, **_OK},
        ),
        Example(  # ours: decalitre register after overflow, magnet and reverse flow alarms
            "decalitre register with alarms",
            f_port=1,
            hex="2C 80969800 00000000 0A 01 0E 11",
            expect={
                "volume_m3": 100000.0,
                "volume_reverse_m3": 0.0,
                **_OK,
                "alarm_tamper": True,
                "alarm_backflow": True,
                "error_flags": 0x11,
            },
        ),
        Example(
            "other application code",
            f_port=1,
            hex="45 40E20100 0C000000 01 00 0D 00",
            error="application code",
        ),
        Example("wrong port", f_port=2, hex="2C40E201000C00000001000D00", error="unexpected fPort"),
        Example("unknown VIF", f_port=1, hex="2C 40E20100 0C000000 01 00 17 00", error="VIF"),
    ),
)
