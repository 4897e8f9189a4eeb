"""Zenner EDC: inductive LoRaWAN communication module on Zenner water meters (volume register).

Zenner packet format, any application fPort (1..223). Byte 0 = packet type (high nibble) and
subtype (low nibble); registers are litres, 4 bytes: subtype 0 = 8-digit BCD
(most significant digit first), subtypes 1 and 2 =
uint32 little-endian (the two differ only in the channel they read; both are volume here).

SP1 0x1s, 5 bytes:   TS VVVVVVVV         day value: the volume register, at receive time
SP2 0x2s, 7 bytes:   TS DDDD VVVVVVVV    month value: register at the due date D
SP9.1 0x91, 11 bytes: 91 FFFFFFFF SSSS RRRRRRRR  status packet
- V: volume, l -> volume_m3
- D: due date, M-Bus type G (uint16 LE: day bits 0-4, month bits 8-11, year bits 5-7 and
  12-15, 2000 + year), at 00:00 meter time (registry meter_timezone) -> one Reading of its own
- F: meter date/time, M-Bus type F (uint32 LE: minute bits 0-5, hour 8-12, day 16-20,
  month 24-27, year bits 21-23 and 28-31)
- S: status summary, uint16 LE -> error_flags (raw). Its bits are not mapped onto the alarm
  set: we found no published bit table for this packet. R: reserved.
Other packets carry no register (SP9.2 firmware/device information, SP12 hourly values of
a channel with the channel/hour header this decoder does not model, AP asynchronous event
packets): rejected, naming the packet.

Source: packet type/subtype split, SP1/SP2 layouts and value encodings as in ZENNER IoT
Solutions' ELEMENT parser "ZENNER Water Meters" (ZennerIoT/element-parsers,
lib/zenner_water-meter.ex, "according to documentation provided by ZENNER International"),
with its SP1 test vectors; the SP9.1 frame from the same file. The date layouts (M-Bus types
F and G) and the SP9.1 field split are our reading, not a published table.
"""

from datetime import datetime

from decoders.core import DecodeError, Decoder, Example, Reading, Register, Uplink, Values, unpack

_LENGTH = {0x1: 5, 0x2: 7}
_NO_REGISTER = {0x92: "SP9.2 device information packet"}


def _litres(subtype: int, raw: bytes, offset: int) -> int:
    if subtype in (1, 2):
        return int(unpack("<I", raw, offset)[0])
    if subtype != 0:
        raise DecodeError(f"unknown value encoding (subtype {subtype})", offset=0)
    digits = raw[offset : offset + 4].hex()  # most significant digits first, as in the source
    if not digits.isdigit():
        raise DecodeError(f"BCD volume has a non-decimal digit: {digits}", offset=offset)
    return int(digits)


def _date(raw: int, offset: int) -> datetime:
    day, month = raw & 0x1F, (raw >> 8) & 0x0F
    year = 2000 + ((raw >> 5) & 0x07 | (raw >> 9) & 0x78)
    try:
        return datetime(year, month, day)
    except ValueError:
        raise DecodeError(f"invalid due date {year}-{month}-{day}", offset=offset) from None


def _date_time(raw: int) -> datetime:
    minute, hour = raw & 0x3F, (raw >> 8) & 0x1F
    if hour > 23 or minute > 59:
        raise DecodeError(f"invalid time {hour}:{minute} in meter time", offset=1)
    return _date(raw >> 16, 1).replace(hour=hour, minute=minute)


def decode(uplink: Uplink) -> Values | list[Reading]:
    if not 1 <= uplink.f_port <= 223:
        raise DecodeError(f"unexpected fPort {uplink.f_port}, expected an application port")
    payload = uplink.payload
    head = unpack("<B", payload)[0]
    kind, subtype = head >> 4, head & 0x0F
    if head == 0x91:
        if len(payload) != 11:
            raise DecodeError(f"SP9.1 is 11 bytes, got {len(payload)}", offset=0)
        when, status = unpack("<IH", payload, 1)
        return [Reading({"error_flags": status}, uplink.meter_time(_date_time(when)))]
    if head in _NO_REGISTER:
        raise DecodeError(f"{_NO_REGISTER[head]}: no meter reading", offset=0)
    if kind not in _LENGTH:
        raise DecodeError(f"packet {head:#04x} (type {kind}) carries no supported register")
    if len(payload) != _LENGTH[kind]:
        raise DecodeError(f"SP{kind} is {_LENGTH[kind]} bytes, got {len(payload)}", offset=0)
    if kind == 1:
        return {"volume_m3": _litres(subtype, payload, 1) / 1000}
    due = _date(unpack("<H", payload, 1)[0], 1)
    volume = _litres(subtype, payload, 3) / 1000
    return [Reading({"volume_m3": volume}, uplink.meter_time(due))]


DECODER = Decoder(
    vendor="Zenner",
    model="EDC",
    medium="water",
    lorawan_ids=("minol-zenner/edc",),
    decode=decode,
    fields=("volume_m3", "error_flags"),
    registers={"volume_m3": Register(1e5)},  # the meter's 8-digit register, 3 decimals in m³
    examples=(
        Example("SP1 day value (BCD)", f_port=1, hex="10 00012345", expect={"volume_m3": 12.345}),
        Example(  # ours: month value 123.456 m³ due 2024-02-29, meter clock UTC
            "SP2 month value with due date",
            f_port=1,
            hex="21 1D32 40E20100",
            expect=[{"time": "2024-02-29T00:00:00Z", "volume_m3": 123.456}],
        ),
        Example(  # payload from ZennerIoT/element-parsers zenner_water-meter.ex (no output there)
            "SP9.1 status packet: meter time 2018-04-22 01:50, status 0",
            f_port=1,
            hex="9132015624000000000000",
            expect=[{"time": "2018-04-22T01:50:00Z", "error_flags": 0}],
        ),
        Example("wrong port", f_port=0, hex="112C000000", error="unexpected fPort"),
        Example("SP9.2", f_port=1, hex="9219001701010001100005CE4B92000000", error="SP9.2"),
        Example("SP12", f_port=1, hex="C000167B0000007B0000007B0000000000", error="packet 0xc0"),
        Example("bad BCD", f_port=1, hex="10 0001234A", error="non-decimal"),
        Example("SP1 too long", f_port=1, hex="112C00000000", error="5 bytes"),
    ),
)
