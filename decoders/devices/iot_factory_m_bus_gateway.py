"""IoT-Factory M-BUS LoRaWAN gateway: wired M-Bus meters' data records, one per frame.

fPort 10. The gateway reads wired M-Bus meters (RSP_UD answers) and forwards single records:
  PP FF [GGGGGGGG] [ZZZZ]  HHHH <frame> [HHHH <frame>] ...
- P: bit 0 power (0 battery, 1 external), bits 1-7 battery charge in % (the gateway's own:
  skipped, a bridge's readings belong to its meters)
- F: bit 0 gateway serial G present (uint32 LE), bits 1-3 protocol version, bit 4 payload
  size Z present (uint16 LE); both skipped
- H: uint16 LE; bits 0-11 frame type, bits 12-15 reason (0 regular, 1 alarm)
  type 000 device info: TTTTTTTT model(uint16) firmware(u8), 7 bytes, skipped
  type 016 M-Bus:       TTTTTTTT RR IIIIIIII DD SS <one data record>
    T uint32 LE Unix seconds (UTC), when the gateway read the meter: the reading's time
    R the RSP_UD C field (skipped); I identification (BCD, LE); D medium = device type (as
    wM-Bus: 02 electricity -> energy_import_kwh, else energy_heat_kwh; DEVICE_MEDIA);
    S bits 0-1: 0 ok, 1 busy, 2 application error -> alarm_meter_error
    record: DIF [DIFE..] VIF [VIFE..] data per EN 13757-3 (decoders/mbus.py)
Frames of one meter at one time form one reading (a register given twice: the last stands).
The gateway drops the meters' manufacturer and version: a meter is the registry's ``wmbus:``
entry (params ``meters``, filled by ingest) with that identification; a meter not listed is
named ``@@@-IIIIIIII-00-DD`` (manufacturer unknown) in the unregistered list. One byte left
after the last frame is padding (IoT-Factory's example ends so). Other frame types, other
fPorts and frames cut short are rejected.

Source: IoT-Factory's codec (TheThingsNetwork/lorawan-devices vendor/iot-factory/
m-bus-gateway-decoder.js: header bits, frame types, M-Bus frame fields) and its example in
m-bus-gateway-codec.yaml; EN 13757-3 (records, device types).
"""

from datetime import UTC, datetime

from decoders.bridge import DEVICE_MEDIA, FIELDS, METERS, REGISTERS
from decoders.core import (
    DecodeError,
    Decoder,
    Example,
    Reading,
    Uplink,
    Values,
    check_values,
    meter_key,
    unpack,
)
from decoders.mbus import Record, parse_record, to_values
from decoders.oms import manufacturer_code

_PORT, _INFO, _MBUS = 10, 0x000, 0x016
_UNKNOWN_MAKER = manufacturer_code(0)  # "@@@": the M field 0
# ours: meter 21211208 (electricity), read 2023-12-12 10:50:03 UTC, 0C 04: 540 Wh (BCD)
_ONE = "A0E305BD01051600 DB3A7865 00 08122121 02 00 0C04 54000000"


def _meter(known: dict[str, object], serial: str, medium: int) -> str:
    listed = sorted(key for key in known if key.split("-")[1:2] == [serial])
    return listed[0] if len(listed) == 1 else meter_key(_UNKNOWN_MAKER, serial, 0, medium)


def _reading(key: str, when: datetime, medium: int, records: list[Record], bad: bool) -> Reading:
    values: Values = {"meter_serial": key.split("-")[1], "alarm_meter_error": bad}
    measured = [r for r in records if r.value is not None]
    if measured and medium not in DEVICE_MEDIA:
        return Reading({}, when, key, f"device type {medium:#04x}: no readings")
    energy = "energy_import_kwh" if DEVICE_MEDIA.get(medium) == "electricity" else "energy_heat_kwh"
    values.update(to_values(measured, energy_field=energy))
    check_values(values, FIELDS)
    return Reading(values, when, key)


def decode(uplink: Uplink) -> list[Reading]:
    if uplink.f_port != _PORT:
        raise DecodeError(f"unexpected fPort {uplink.f_port}: expected 10")
    data, known = uplink.payload, METERS.get(uplink.params)
    flags = unpack("<BB", data)[1]
    at = 2 + 4 * (flags & 1) + 2 * (flags >> 4 & 1)
    groups: dict[tuple[str, datetime], tuple[int, list[Record], bool]] = {}
    frames = 0
    while len(data) - at >= 2 or not frames:  # a last lone byte: padding
        header = unpack("<H", data, at)[0]
        kind, at, frames = header & 0x0FFF, at + 2, frames + 1
        if kind == _INFO:
            unpack("<IHB", data, at)  # time, model, firmware: no meter value
            at += 7
            continue
        if kind != _MBUS:
            raise DecodeError(f"unknown frame type {kind:#05x}: expected 000 or 016", offset=at - 2)
        seconds, _, ident, medium, status = unpack("<IB4sBB", data, at)
        serial = ident[::-1].hex()
        if not serial.isdigit():
            raise DecodeError(f"meter ID {serial} is not BCD", offset=at + 5)
        record, at = parse_record(data, at + 11)
        key, when = _meter(known, serial, medium), datetime.fromtimestamp(seconds, UTC)
        _, records, bad = groups.get((key, when), (medium, [], False))
        groups[key, when] = (
            medium,
            [*records, *([record] if record else [])],
            bad or status & 3 == 2,
        )
    return [_reading(k, when, *rest) for (k, when), rest in groups.items()]


DECODER = Decoder(
    vendor="IoT-Factory",
    model="M-BUS LoRaWAN gateway",
    medium=None,
    lorawan_ids=("iot-factory/m-bus-gateway",),
    decode=decode,
    fields=FIELDS,
    registers=REGISTERS,
    params=(METERS,),
    examples=(
        Example(
            "one energy record of an unlisted meter",
            f_port=10,
            hex=_ONE,
            expect=[
                {
                    "meter": "@@@-21211208-00-02",
                    "time": "2023-12-12T10:50:03Z",
                    "meter_serial": "21211208",
                    "energy_import_kwh": 0.54,
                    "alarm_meter_error": False,
                }
            ],
        ),
        Example(
            "the registry's meter with that identification",
            f_port=10,
            hex=_ONE,
            params={"meters": {"ABB-21211208-02-02": {}}},
            expect=[
                {
                    "meter": "ABB-21211208-02-02",
                    "time": "2023-12-12T10:50:03Z",
                    "meter_serial": "21211208",
                    "energy_import_kwh": 0.54,
                    "alarm_meter_error": False,
                }
            ],
        ),
        Example("header only", 10, "A0E305BD0105", error="need 8"),
        Example("unknown frame type", 10, "A0E305BD01051700", error="unknown frame type"),
        Example("wrong port", 2, _ONE, error="unexpected fPort"),
    ),
)
