"""Wireless M-Bus / OMS telegrams forwarded over LoRaWAN: headers, AES mode 5, M-Bus records.

The LoRaWAN payload is the whole wM-Bus frame as bridges (Lobaro, Elvaco CMe, ...) forward it,
block CRCs removed:
  LL CC MMMM IIIIIIII VV TT  CI  [header]  data
- L length of the rest (must match), C link control, M manufacturer (LSB first, 3 letters
  packed 5 bits each), I meter ID (BCD, LSB first), V version, T device type (07 water, 04 heat).
- CI 0x7A short header:  AA SS WWWW          (access number, status, configuration word)
  CI 0x72 long header:   IIIIIIII MMMM VV TT AA SS WWWW  (the meter's own address; used for IV)
  CI 0x78 no header:     data are plain M-Bus records.
- Configuration word bits 12-8: security mode (0 none, 5 AES-128-CBC), bits 7-4: encrypted
  16-byte blocks. Mode 5 IV = M(2) ID(4) V T + 8 x access number (EN 13757-7 / OMS Vol. 2);
  the decrypted data must start with 2F 2F, else the key is wrong. Bytes after the encrypted
  blocks are plain records. The key comes from the device registry: params["aes_key"] (hex).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from decoders.core import DecodeError, Param, Reading, Uplink, Values
from decoders.mbus import Record, parse_records, to_values

__all__ = ["AES_KEY", "Telegram", "decode_frame", "manufacturer_code", "readings", "status_alarms"]


@dataclass(frozen=True)
class Telegram:
    """A parsed wM-Bus telegram: who sent it and its data records."""

    manufacturer: str  # three letters, e.g. KAM, SEN
    meter_id: str  # 8 BCD digits
    version: int
    device_type: int
    access_number: int
    status: int
    records: list[Record]


def manufacturer_code(value: int) -> str:
    """The three-letter FLAG code packed in an M-field."""
    return "".join(chr(((value >> shift) & 0x1F) + 64) for shift in (10, 5, 0))


def _address(frame: bytes, at: int) -> tuple[str, int, int]:
    digits = frame[at : at + 4][::-1].hex()
    if not digits.isdigit():
        raise DecodeError(f"meter ID {digits} is not BCD", offset=at)
    return digits, frame[at + 4], frame[at + 5]


AES_KEY = Param(
    "aes_key", str, None, "the meter's AES-128 key for encrypted telegrams", hex_bytes=16
)


def _key(params: Mapping[str, Any]) -> bytes:
    return bytes.fromhex(AES_KEY.get(params).replace(" ", ""))


def decode_frame(uplink: Uplink) -> Telegram:
    """Check the frame, decrypt mode 5 if needed, and parse its records."""
    frame = uplink.payload
    if len(frame) < 11:
        raise DecodeError(f"payload length {len(frame)} bytes, need 11 for a wM-Bus frame")
    if frame[0] != len(frame) - 1:
        raise DecodeError(f"L field {frame[0]} but {len(frame) - 1} bytes follow", offset=0)
    m_field = int.from_bytes(frame[2:4], "little")
    meter_id, version, device_type = _address(frame, 4)
    ci = frame[10]
    if ci == 0x78:
        records = parse_records(frame, 11)
        man = manufacturer_code(m_field)
        return Telegram(man, meter_id, version, device_type, 0, 0, records)
    if ci == 0x7A:
        head, iv_m, iv_a = 11, frame[2:4], frame[4:10]
    elif ci == 0x72:
        if len(frame) < 23:
            raise DecodeError(f"payload length {len(frame)} bytes, need 23 for a long header")
        meter_id = _address(frame, 11)[0]  # long header: ID(4) M(2) V T
        version, device_type = frame[17], frame[18]
        m_field = int.from_bytes(frame[15:17], "little")
        head, iv_m, iv_a = 19, frame[15:17], frame[11:15] + frame[17:19]
    else:
        raise DecodeError(f"unsupported CI field {ci:#04x}: expected 72, 78 or 7A", offset=10)
    if len(frame) < head + 4:
        raise DecodeError(f"payload length {len(frame)} bytes, need {head + 4}")
    access, status = frame[head], frame[head + 1]
    word = int.from_bytes(frame[head + 2 : head + 4], "little")
    mode, blocks, start = (word >> 8) & 0x1F, (word >> 4) & 0x0F, head + 4
    data = frame[start:]
    if mode == 5:
        size = 16 * blocks
        if blocks == 0 or len(data) < size:
            raise DecodeError(f"need {size} encrypted bytes, got {len(data)}", offset=start)
        iv = iv_m + iv_a + bytes([access]) * 8
        decryptor = Cipher(algorithms.AES(_key(uplink.params)), modes.CBC(iv)).decryptor()
        plain = decryptor.update(data[:size]) + decryptor.finalize()
        if plain[:2] != b"\x2f\x2f":
            raise DecodeError("decryption failed: wrong key?", offset=start)
        data = plain + data[size:]
    elif mode != 0:
        raise DecodeError(f"unsupported security mode {mode}", offset=head + 2)
    man = manufacturer_code(m_field)
    return Telegram(man, meter_id, version, device_type, access, status, parse_records(data))


def readings(
    telegram: Telegram,
    uplink: Uplink,
    extra: Values | None = None,
    energy_field: str = "energy_heat_kwh",
) -> list[Reading]:
    """Current values (at the meter's 04 6D time if sent) plus one reading per dated storage."""
    records = telegram.records
    current = to_values(records, energy_field=energy_field)
    values = {"meter_serial": telegram.meter_id, **current, **(extra or {})}
    now = next((r.value for r in records if r.quantity == "datetime" and r.storage == 0), None)
    result = [Reading(values, uplink.meter_time(now) if isinstance(now, datetime) else None)]
    for storage in sorted({r.storage for r in records} - {0}):
        when = next(
            (
                r.value
                for r in records
                if r.storage == storage and r.quantity in ("date", "datetime")
            ),
            None,
        )
        stored = to_values(records, storage=storage, energy_field=energy_field)
        if isinstance(when, datetime) and stored:
            result.append(Reading(stored, uplink.meter_time(when)))
    return result


def status_alarms(status: int) -> Values:
    """The application status byte (EN 13757-3 / OMS): bit 2 power low, bits 3-4 errors."""
    return {"alarm_low_battery": bool(status & 0x04), "alarm_meter_error": bool(status & 0x18)}
