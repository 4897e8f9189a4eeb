"""Alpha-Omega Technology KLAX (SML Klax): optical head reading SML / IEC 62056-21 meters.

fPort 3, application data:  VV SS II NN { PP <payload> }...
- V: bits 7-2 payload version, bits 1-0 device type (0 SML Klax; 1 MODBUS Klax: rejected)
- S: version 0: bits 0-3 battery in 10 % steps; version >= 1: bits 0-2 battery in 20 % steps;
     bits 3-5 read mode (SML, IEC 62056-21, ...), bit 6 registers configured, bit 7 link test
- I: message index; N: message number (high nibble) / count (low nibble)
Payloads (P = id, fixed length after it):
- 01, version 0, "historic" (34): MM UU R1[4 x int32 BE] R2[4 x int32 BE]
     M: bit 0/4 register 1/2 active, bits 1-2/5-6 filter id, bit 3/7 data valid; U: unit nibbles
- 01, version >= 1, "filter" (18): FF VV 4 x float32 BE
     F: bit 0 active, bits 1-2 filter id, bits 4-7 unit; V: bits 0-3 value k valid
- 02 "now" (19): MM U01 U23 4 x value (int32 BE in version 0, float32 BE after): current value
     of filters 0..3; M: bits 0-3 filter set, bits 4-7 filter valid; U: unit nibbles
- 03 server ID (10 bytes, SML meter ID) -> meter_serial (hex); 08 device ID (4); 04/05/06/07
  MODBUS filter payloads (10/18/34/1 bytes) are skipped.
Units: 0 none, 1 Wh, 2 W, 3 V, 4 A, 5 Hz, 6 varh, 7 var, 8 VAh, 9 VA.
A register's four values are its last measurements, newest first (the vendor's sample: 12442,
12442, 12442, 12441 kWh), every `measure_interval_min` (param, default 15): newest at receive time.
Filters are the registers the KLAX reads (fPort 104): param `obis` lists them in order, default
["1.8.0"]; unlisted filters are not emitted.
Other fPorts 100-105 (config, info, register search/set) carry no meter value: no readings.

Source: KLAX payload description (docs.tesenso.com "KLAX V2", TobleMiner/ttn-klax wiki) and the
TTS Device Repository codec (vendor/alpha-omega-technology/klax.js, klax-codec.yaml).
"""

from datetime import timedelta

from decoders.core import DecodeError, Decoder, Example, Param, Reading, Uplink, Values, unpack
from decoders.sml import OBIS_FIELDS, OBIS_REGISTERS, obis_field, obis_value, parse_obis

_UNITS = (None, "Wh", "W", "V", "A", "Hz", "varh", "var", "VAh", "VA")
_SKIP = {3: 10, 4: 10, 5: 18, 6: 34, 7: 1, 8: 4}  # payload id -> length, no register values
_OBIS = Param("obis", tuple, ("1.8.0",), "OBIS code of each filter (register), in order")
_INTERVAL = Param("measure_interval_min", float, 15.0, "minutes between values", low=1, high=1440)


def _put(values: Values, uplink: Uplink, filter_id: int, unit: int, value: float) -> None:
    codes = _OBIS.get(uplink.params)
    symbol = _UNITS[unit] if unit < len(_UNITS) else None
    if filter_id < len(codes) and symbol is not None:
        obis = parse_obis(str(codes[filter_id]))
        if obis_field(obis) is not None:
            name, number = obis_value(obis, value, symbol)
            values[name] = number


def decode(uplink: Uplink) -> Values | list[Reading]:
    if 100 <= uplink.f_port <= 105:
        unpack("4s", uplink.payload)  # configuration and search answers: no meter values
        return []
    if uplink.f_port != 3:
        raise DecodeError(f"unexpected fPort {uplink.f_port}, expected 3 (or 100-105)")
    p = uplink.payload
    head, status = unpack("BB2x", p)
    version, kind = head >> 2, head & 0x03
    if kind != 0:
        raise DecodeError(f"device type {kind} (MODBUS Klax) not supported", offset=0)
    battery = (status & 0x0F) * 10 if version == 0 else (status & 0x07) * 20
    if battery > 100:
        raise DecodeError(f"battery level {battery} %", offset=1)
    interval = timedelta(minutes=_INTERVAL.get(uplink.params))
    history: dict[int, Values] = {}  # measurements ago -> values
    now: Values = {"battery_pct": battery}
    registers = 0
    i = 4
    while i < len(p):
        pid = p[i]
        if pid in _SKIP:
            body = unpack(f"{_SKIP[pid]}s", p, i + 1)[0]
            if pid == 3:
                now["meter_serial"] = body.hex()
            i += 1 + len(body)
            continue
        if pid == 1 and version == 0:
            mask, units, *values = unpack(">BB8i", p, i + 1)
            for reg in range(2):
                bits = mask >> (4 * reg)
                if bits & 0x01 and bits & 0x08:
                    unit = (units >> (4 * reg)) & 0x0F
                    for ago, value in enumerate(values[4 * reg : 4 * reg + 4]):
                        _put(history.setdefault(ago, {}), uplink, (bits >> 1) & 3, unit, value)
            i, registers = i + 35, registers + 1
        elif pid == 1:
            flags, valid, *floats = unpack(">BB4f", p, i + 1)
            for ago, value in enumerate(floats):
                if flags & 0x01 and valid & (1 << ago):
                    _put(history.setdefault(ago, {}), uplink, (flags >> 1) & 3, flags >> 4, value)
            i, registers = i + 19, registers + 1
        elif pid == 2:
            mask, u01, u23, *current = unpack(">BBB4i" if version == 0 else ">BBB4f", p, i + 1)
            units = (u01 & 0x0F, u01 >> 4, u23 & 0x0F, u23 >> 4)
            for f in range(4):
                if mask & (0x11 << f) == 0x11 << f:
                    _put(now, uplink, f, units[f], current[f])
            i, registers = i + 20, registers + 1
        else:
            raise DecodeError(f"unknown payload id {pid:#04x}", offset=i)
    if not registers:
        raise DecodeError("frame holds no register payload (id 1 or 2)", offset=len(p))
    if not history:
        return now
    if uplink.received_at is None:
        raise DecodeError("register history needs the uplink's receive time")
    history[0], received = {**history.get(0, {}), **now}, uplink.received_at
    return [Reading(history[ago], received - ago * interval) for ago in sorted(history)[::-1]]


_FIELDS = dict.fromkeys(name for name, _ in OBIS_FIELDS.values())
_EXAMPLE_TIME = "2024-03-01T12:00:00Z"
_OLDER = (("15", 33.98), ("30", 33.99), ("45", 34.0))
_HISTORY = "04 45 C0 11 01 11 0F 4704D000 4704D000 4704C600 4704BC00"
DECODER = Decoder(
    vendor="Alpha-Omega Technology",
    model="KLAX",
    medium="electricity",
    lorawan_ids=("alpha-omega-technology/klax",),
    description="LoRaWAN optical reader for SML / IEC 62056-21 electricity meters",
    decode=decode,
    fields=(*_FIELDS, "battery_pct", "meter_serial"),
    registers=OBIS_REGISTERS,
    params=(_OBIS, _INTERVAL),
    examples=(
        Example(
            "filter 0 (1.8.0) history, 4 values newest first, every 15 min (ours)",
            f_port=3,
            hex=_HISTORY,
            received_at=_EXAMPLE_TIME,
            expect=[
                *({"time": f"2024-03-01T11:{m}:00Z", "energy_import_kwh": e} for m, e in _OLDER),
                {"time": _EXAMPLE_TIME, "energy_import_kwh": 34.0, "battery_pct": 100},
            ],
        ),
        Example(
            "current values of filters 0 (1.8.0, Wh) and 1 (16.7.0, W) (ours)",
            f_port=3,
            hex="04 45 C1 11 02 33 21 00 4704D000 437A8000 00000000 00000000",
            params={"obis": ["1.8.0", "16.7.0"]},
            expect={"energy_import_kwh": 34.0, "power_w": 250.5, "battery_pct": 100},
        ),
        Example("config frame", f_port=100, hex="04 45 000F", expect=[]),
        Example("wrong port", f_port=2, hex="04 45 C0 11", error="unexpected fPort"),
        Example("MODBUS Klax", f_port=3, hex="05 45 C0 11 07 00", error="MODBUS"),
        Example("header only", f_port=3, hex="04 45 C0 11", error="no register payload"),
        Example("unknown payload", f_port=3, hex="04 45 C0 11 0F 00", error="unknown payload"),
        Example("history without receive time", 3, _HISTORY, error="receive time"),
    ),
)
