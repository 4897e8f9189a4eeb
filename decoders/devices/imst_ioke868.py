"""IMST iOKE868 (iO881A optical head): SML / IEC 62056-21 electricity meter reader.

fPort 5 = meter data, a chain of records  TT LL <LL bytes> ...  (fPort 69 = 0x40|5: one leading
segmentation byte, then the same records; fPort 3 / 67: device status, 28 bytes, no meter value)
- 00 status:  II SS [...]  I: bits 0-1 meter type (import/export), bits 2-3 input (SML/IEC);
              S: 0 ok, 1 no input, 2 input file error, 3 file incomplete, 4 meter ID mismatch
- 01 time:    uint32 BE, Unix seconds: when the meter was read (the reading's time)
- 10 meter ID: ASCII, e.g. "341200-5026871"
- 40 object with unit:   GG <OBIS groups> UU KK MM..  G: group mask, bit 7..2 = OBIS group A..F
                         present (one byte each); U: DLMS unit code (30 Wh, 27 W, ...); K: scaler,
                         int8 (value = M * 10^K); M: mantissa, signed big-endian, rest of the record
- 41 object without unit: GG <OBIS groups> KK MM..   (unit: the register's SML default, Wh/W/V/A/Hz)
- 42 object as string:    GG <OBIS groups> "000055.2815" or "0001234.5*kWh" (ASCII)
Other record types are skipped by their length. OBIS registers map through decoders.sml; a
field's first record wins. status S != 0 -> alarm_meter_error, error_flags = S. A frame must
hold a meter object or report a status error (time/ID alone carry no reading).

Source: IMST iOKE868 payload description as implemented in the vendor codec
(TheThingsNetwork/lorawan-devices vendor/imst/ioke868.js v1.1), examples in ioke868-codec.yaml.
"""

from datetime import UTC, datetime

from decoders.core import DecodeError, Decoder, Example, Output, Reading, Uplink, Values, unpack
from decoders.sml import DLMS_UNITS, OBIS_REGISTERS, obis_field, obis_value

_METER_DATA, _STATUS, _SEGMENTED = 5, 3, 0x40
_OBJECTS = (0x40, 0x41, 0x42)


def _obis(mask: int, body: bytes, offset: int) -> tuple[tuple[int, int, int] | None, int]:
    """The C.D.E groups (None if one is absent) and how many OBIS bytes the mask announces."""
    present = [bool(mask & (0x80 >> g)) for g in range(6)]  # groups A..F
    count = sum(present)
    if len(body) < 1 + count:
        raise DecodeError(f"OBIS groups need {count} bytes", offset=offset)
    groups = dict(
        zip([g for g, here in enumerate(present) if here], body[1 : 1 + count], strict=True)
    )
    cde = (groups[2], groups[3], groups[4]) if all(g in groups for g in (2, 3, 4)) else None
    return cde, count


def _object(kind: int, body: bytes, offset: int) -> tuple[str, float] | None:
    cde, n = _obis(body[0] if body else 0, body, offset)
    rest = body[1 + n :]
    if kind == 0x42:
        text = rest.decode("ascii", errors="replace")
        number, _, unit = text.partition("*")
        if cde is None or obis_field(cde) is None:
            return None
        try:
            return obis_value(cde, float(number), unit.strip() or None)
        except ValueError:
            raise DecodeError(f"OBIS value {text!r} is not a number", offset=offset) from None
    head = 2 if kind == 0x40 else 1  # unit + scaler, or scaler
    if len(rest) <= head:
        raise DecodeError("meter object without mantissa", offset=offset)
    symbol = DLMS_UNITS.get(rest[0], f"DLMS unit {rest[0]}") if kind == 0x40 else None
    scaler = int.from_bytes(rest[head - 1 : head], "big", signed=True)
    mantissa = int.from_bytes(rest[head:], "big", signed=True)
    if cde is None or obis_field(cde) is None:
        return None
    return obis_value(cde, mantissa * 10.0**scaler, symbol)


def decode(uplink: Uplink) -> Output:
    port, payload = uplink.f_port, uplink.payload
    if port & _SEGMENTED and port & ~_SEGMENTED in (_METER_DATA, _STATUS):
        port, payload = port & ~_SEGMENTED, payload[1:] if payload else payload
    if port == _STATUS:
        unpack("28s", payload)  # time, firmware, sync time, counters: no meter value
        return []
    if port != _METER_DATA:
        raise DecodeError(f"unexpected fPort {uplink.f_port}, expected 5, 69, 3 or 67")
    values: Values = {}
    when: datetime | None = None
    has_reading = False
    i = 0
    while i < len(payload):
        kind, length = unpack("BB", payload, i)
        body = payload[i + 2 : i + 2 + length]
        if len(body) < length:
            raise DecodeError(f"record {kind:#04x} needs {length} bytes", offset=i)
        if kind == 0x00:
            status = unpack("BB", body, 0)[1] if length >= 2 else -1
            if status < 0:
                raise DecodeError("status record shorter than 2 bytes", offset=i)
            values.setdefault("alarm_meter_error", status != 0)
            values.setdefault("error_flags", status)
            has_reading = has_reading or status != 0
        elif kind == 0x01:
            if length != 4:
                raise DecodeError(f"time record of {length} bytes, expected 4", offset=i)
            when = datetime.fromtimestamp(int.from_bytes(body, "big"), UTC)
        elif kind == 0x10:
            text = body.decode("ascii", errors="replace")
            values.setdefault("meter_serial", text if text.isprintable() else body.hex())
        elif kind in _OBJECTS:
            if length < 2:
                raise DecodeError(f"meter object of {length} bytes", offset=i)
            found = _object(kind, body, i + 2)
            if found is not None:
                values.setdefault(found[0], found[1])
            has_reading = True
        i += 2 + length
    if not has_reading:
        raise DecodeError("frame holds no meter object and no status error", offset=len(payload))
    return [Reading(values, when)] if when is not None else values


_FIELDS = (
    "energy_import_kwh", "energy_export_kwh", "energy_import_t1_kwh", "energy_import_t2_kwh",
    "energy_export_t1_kwh", "energy_export_t2_kwh", "energy_reactive_import_kvarh",
    "energy_reactive_export_kvarh", "power_w", "power_l1_w", "power_l2_w", "power_l3_w",
    "voltage_l1_v", "voltage_l2_v", "voltage_l3_v", "current_l1_a", "current_l2_a",
    "current_l3_a", "frequency_hz", "alarm_meter_error", "error_flags", "meter_serial",
)  # fmt: skip

_OK: dict[str, object] = {"alarm_meter_error": False, "error_flags": 0}
DECODER = Decoder(
    vendor="IMST",
    model="iOKE868",
    medium="electricity",
    lorawan_ids=("imst/ioke868",),
    description="LoRaWAN optical reader for SML / IEC 62056-21 electricity meters (iO881A head)",
    decode=decode,
    fields=_FIELDS,
    registers=OBIS_REGISTERS,
    examples=(
        Example(
            "status ok, time, 1.8.0 = 12345.6789 kWh in Wh with scaler -1 (ours)",
            f_port=5,
            hex="00 02 05 00 01 04 5FD75721 "
            "40 11 FC 01 00 01 08 00 FF 1E FF 00 00 00 00 07 5B CD 15",
            expect=[_OK | {"time": "2020-12-14T12:14:25Z", "energy_import_kwh": 12345.6789}],
        ),
        Example(
            "meter ID, then 16.7.0 power without unit, negative (ours)",
            f_port=5,
            hex="10 03 41 42 43 41 0C FC 01 00 10 07 00 FF 00 FF FF FC 18",
            expect={"meter_serial": "ABC", "power_w": -1000.0},
        ),
        Example("status frame", 3, "F9EDD95F000180FCD75F05000000260040E201001100000040E20100", []),
        Example("wrong port", f_port=2, hex="00 02 00 00", error="unexpected fPort"),
        Example("time only", f_port=5, hex="01 04 5FD75721", error="no meter object"),
        Example("cut record", f_port=5, hex="40 11 FC 01 00", error="needs 17 bytes"),
        Example("bad unit", f_port=5, hex="40 0A 38 01 08 00 1B 00 00 00 00 01", error="unit 'W'"),
    ),
)
