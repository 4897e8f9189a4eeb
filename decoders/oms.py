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
- CI 0x8D extended link layer (EN 13757-4 ELL with session number; Kamstrup C1 meters):
    8D CC AA SSSSSSSS [PPPP payload-CRC] CI' ...   SN bits 31-29: encryption (0 none, 1 AES-128-CTR)
  CTR IV = M(2) A(6) of the link layer, CC with bit 4 (hop counter) cleared, SN(4), 00 00 00.
  The payload CRC (LSB first) is the EN 13757-4 CRC of everything after it: it proves the key
  (and lets a payload a bridge already decrypted through). CI' is 78 (records) or 79 (compact).
- CI 0x79 compact frame (OMS Vol. 2 / Kamstrup C1):  79 FFFF CCCC  data-only
  FFFF format signature = CRC of the full frame's DIF/VIF bytes in order, CCCC = CRC of the full
  frame's records (DIF/VIF and data). The data have no DIF/VIF: the layout comes from the
  registry, params["compact_formats"]: the DIF/VIF bytes (hex) of the meter's full frame(s); the
  one whose CRC matches the signature is used, and the rebuilt records must match CCCC. Parse
  errors inside the rebuilt records give offsets in those records.
Facts (layouts, CRC, IV, the CRC placement) as lvogt/wireless-mbus-parser implements them
(src/parser/extendedLinkLayer.ts, src/crc/crcCalc.ts, src/parser/dataRecords.ts calcHeaderCrc);
the test telegrams are that project's (test/parser/extendedLinkLayer.test.ts, KAM 63452869,
key 4E55...34A5; test/parser/malformed.test.ts "compact frame and its full telegram",
KAM 60723506, and the already-decrypted compact frame of the ELL test).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from decoders.core import DecodeError, Param, Reading, Uplink, Values
from decoders.mbus import Frame, Record

__all__ = [
    "AES_KEY",
    "COMPACT_FORMATS",
    "Telegram",
    "crc16",
    "decode_frame",
    "format_signature",
    "manufacturer_code",
    "readings",
    "status_alarms",
]


@dataclass(frozen=True)
class Telegram:
    """A parsed wM-Bus telegram: who sent it and its data records."""

    manufacturer: str  # three letters, e.g. KAM, SEN
    meter_id: str  # 8 BCD digits
    version: int
    device_type: int
    access_number: int
    status: int
    frame: Frame  # its data records

    @property
    def records(self) -> list[Record]:
        return self.frame.records

    def has_volume(self) -> bool:
        """Whether a current volume (storage 0) is among the records."""
        return self.frame.shape(_has_volume)


@functools.lru_cache(maxsize=1024)  # pure; a bridge hears a handful of manufacturers
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


def _key(params: Mapping[str, Any]) -> _Key:
    """The device's AES-128 key, checked (DecodeError) and set up once per key text."""
    text = params.get(AES_KEY.name)
    return _key_for(text if isinstance(text, str) else AES_KEY.get(params))  # get: raises


class _Key:
    """A meter's AES-128 key with one ECB decryption context, reused for every frame: cheaper
    than a cipher, mode and context set up per frame (most of the cost of decrypting one)."""

    __slots__ = ("_blocks", "_lock", "aes")

    def __init__(self, key: bytes) -> None:
        self.aes = algorithms.AES(key)
        self._blocks = Cipher(self.aes, modes.ECB()).decryptor()  # no padding: whole blocks
        self._lock = threading.Lock()  # a context is not for concurrent use

    def decrypt_cbc(self, iv: bytes, data: bytes) -> bytes:
        """AES-CBC decryption of whole 16-byte blocks. NIST SP 800-38A 6.2: plain block j =
        AES-decrypt(cipher block j) xor cipher block j-1 (block 0: the IV); so: all blocks
        decrypted at once, xor the IV and the ciphertext but its last block."""
        if len(data) % 16:  # the context would keep the rest for the next frame
            raise ValueError(f"AES-CBC needs whole 16-byte blocks, got {len(data)} bytes")
        with self._lock:
            blocks = self._blocks.update(data)
        chained = int.from_bytes(iv + data[:-16], "big")
        return (int.from_bytes(blocks, "big") ^ chained).to_bytes(len(data), "big")


@functools.lru_cache(maxsize=1024)  # a bridge hears a bounded set of meters
def _key_for(text: str) -> _Key:
    return _Key(bytes.fromhex(AES_KEY.get({AES_KEY.name: text}).replace(" ", "")))


COMPACT_FORMATS = Param(
    "compact_formats",
    tuple,
    (),
    "the DIF/VIF bytes (hex) of the meter's full frames, to read its compact frames (CI 79)",
)


def crc16(data: bytes) -> int:
    """The EN 13757-4 CRC: polynomial 0x3D65, initial 0, final XOR 0xFFFF, not reflected."""
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x3D65 if crc & 0x8000 else crc << 1) & 0xFFFF
    return crc ^ 0xFFFF


def _headers(layout: bytes) -> list[bytes]:
    """Split DIF/VIF bytes (no data) into one DIF..VIF(E) header per record."""
    headers, pos = [], 0
    while pos < len(layout):
        at = pos
        if layout[pos] in (0x0F, 0x1F, 0x2F):  # manufacturer data to the end, or a filler
            headers.append(layout[pos : pos + 1])
            pos += 1
            continue
        pos += 1
        while layout[pos - 1] & 0x80:  # DIFEs
            if pos >= len(layout):
                raise DecodeError(f"compact format {layout.hex()}: truncated DIF", offset=at)
            pos += 1
        if pos >= len(layout):
            raise DecodeError(f"compact format {layout.hex()}: DIF without VIF", offset=at)
        if layout[pos] & 0x7F == 0x7C:
            raise DecodeError(f"compact format {layout.hex()}: plain-text VIF", offset=pos)
        pos += 1
        while layout[pos - 1] & 0x80:  # VIFEs
            if pos >= len(layout):
                raise DecodeError(f"compact format {layout.hex()}: truncated VIF", offset=at)
            pos += 1
        headers.append(layout[at:pos])
    return headers


def format_signature(layout: bytes) -> int:
    """The compact-frame format signature of a full frame's DIF/VIF bytes (its CRC)."""
    return crc16(layout)


def _layout(params: Mapping[str, Any], signature: int, at: int) -> list[bytes]:
    """The record headers of the compact_formats entry with this signature (each entry is
    checked, so a broken one is reported even when another matches)."""
    found = None
    for text in COMPACT_FORMATS.get(params):
        try:
            layout = bytes.fromhex(text)
        except ValueError:
            raise DecodeError(f"compact_formats entry {text!r} is not hex") from None
        headers = _headers(layout)
        if crc16(layout) == signature:
            found = headers
    if found is None:
        raise DecodeError(
            f"compact frame with format signature {signature:04X}: no compact_formats entry "
            "has it (add the DIF/VIF bytes of the meter's full frame)",
            offset=at,
        )
    return found


_SIZES = {0: 0, 1: 1, 2: 2, 3: 3, 4: 4, 5: 4, 6: 6, 7: 8, 9: 1, 10: 2, 11: 3, 12: 4, 14: 6}


def _expand(frame: bytes, start: int, params: Mapping[str, Any]) -> bytes:
    """The full records of the compact frame at ``frame[start]`` (CI 79), checked by CRC."""
    if len(frame) < start + 5:
        raise DecodeError(
            f"payload length {len(frame)} bytes, need {start + 5} for a compact frame",
            offset=start,
        )
    signature = int.from_bytes(frame[start + 1 : start + 3], "little")
    full_crc = int.from_bytes(frame[start + 3 : start + 5], "little")
    records, pos = bytearray(), start + 5
    for header in _layout(params, signature, start + 1):
        if header[0] in (0x0F, 0x1F):
            records += header + frame[pos:]
            pos = len(frame)
            break
        if header[0] == 0x2F:
            records += header
            continue
        coding = header[0] & 0x0F
        if coding == 0x0D:
            if pos >= len(frame):
                raise DecodeError("compact frame truncated: missing LVAR byte", offset=pos)
            lvar = frame[pos]
            size = 1 + (lvar if lvar <= 0xBF else lvar & 0x0F if lvar < 0xE0 else lvar - 0xE0)
        elif coding in _SIZES:
            size = _SIZES[coding]
        else:
            raise DecodeError(f"compact format: unsupported DIF {header[0]:#04x}", offset=pos)
        if pos + size > len(frame):
            raise DecodeError(
                f"compact frame truncated: record {header.hex()} needs {size} bytes", offset=pos
            )
        records += header + frame[pos : pos + size]
        pos += size
    if pos != len(frame):
        raise DecodeError(f"{len(frame) - pos} bytes after the compact frame's data", offset=pos)
    if crc16(bytes(records)) != full_crc:
        raise DecodeError(
            f"compact frame: rebuilt records fail the full-frame CRC {full_crc:04X}",
            offset=start + 3,
        )
    return bytes(records)


def _extended_link_layer(frame: bytes, params: Mapping[str, Any]) -> tuple[bytes, int]:
    """The frame with its CI 8D payload decrypted, and the offset of the payload's CI."""
    if len(frame) < 18:
        raise DecodeError(
            f"payload length {len(frame)} bytes, need 18 for an extended link layer", offset=10
        )
    session = int.from_bytes(frame[13:17], "little")
    encryption = session >> 29
    stated = int.from_bytes(frame[17:19], "little") if len(frame) >= 20 else -1
    if stated == crc16(frame[19:]):
        return frame, 19  # plain, or decrypted already by the bridge
    if encryption == 0:
        return frame, 17  # no payload CRC
    if encryption != 1:
        raise DecodeError(f"unsupported ELL encryption {encryption}", offset=13)
    iv = frame[2:10] + bytes([frame[11] & 0xEF]) + frame[13:17] + bytes(3)
    decryptor = Cipher(_key(params).aes, modes.CTR(iv)).decryptor()
    plain = frame[:17] + decryptor.update(frame[17:]) + decryptor.finalize()
    if len(plain) < 20 or int.from_bytes(plain[17:19], "little") != crc16(plain[19:]):
        raise DecodeError("decryption failed: wrong key? (payload CRC mismatch)", offset=17)
    return plain, 19


def decode_frame(uplink: Uplink) -> Telegram:
    """Check the frame, decrypt mode 5 or the ELL if needed, and parse its records."""
    frame = uplink.payload
    if len(frame) < 11:
        raise DecodeError(f"payload length {len(frame)} bytes, need 11 for a wM-Bus frame")
    if frame[0] != len(frame) - 1:
        raise DecodeError(f"L field {frame[0]} but {len(frame) - 1} bytes follow", offset=0)
    m_field = int.from_bytes(frame[2:4], "little")
    meter_id, version, device_type = _address(frame, 4)
    ci_at = 10
    access = 0
    if frame[ci_at] == 0x8D:
        frame, ci_at = _extended_link_layer(frame, uplink.params)
        access = frame[12]
        if ci_at >= len(frame):
            raise DecodeError("extended link layer without payload", offset=ci_at)
    ci = frame[ci_at]
    man = manufacturer_code(m_field)
    if ci == 0x78:
        records = Frame(frame, ci_at + 1)
        return Telegram(man, meter_id, version, device_type, access, 0, records)
    if ci == 0x79:
        records = Frame(_expand(frame, ci_at, uplink.params))
        return Telegram(man, meter_id, version, device_type, access, 0, records)
    if ci_at != 10:
        raise DecodeError(
            f"unsupported CI field {ci:#04x} after the ELL: expected 78 or 79", offset=ci_at
        )
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
        raise DecodeError(
            f"unsupported CI field {ci:#04x}: expected 72, 78, 79, 7A or 8D", offset=10
        )
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
        plain = _key(uplink.params).decrypt_cbc(iv, data[:size])
        if plain[:2] != b"\x2f\x2f":
            raise DecodeError("decryption failed: wrong key?", offset=start)
        data = plain + data[size:]
    elif mode != 0:
        raise DecodeError(f"unsupported security mode {mode}", offset=head + 2)
    man = manufacturer_code(m_field)
    return Telegram(man, meter_id, version, device_type, access, status, Frame(data))


def readings(
    telegram: Telegram,
    uplink: Uplink,
    extra: Values | None = None,
    energy_field: str = "energy_heat_kwh",
) -> list[Reading]:
    """Current values (at the meter's 04 6D time if sent) plus one reading per dated storage."""
    frame = telegram.frame
    by_storage = frame.values_by_storage(energy_field)
    values = {"meter_serial": telegram.meter_id, **by_storage.get(0, {}), **(extra or {})}
    now_at, stored = frame.shape(_dated)
    now = None if now_at is None else frame.value(now_at)
    result = [Reading(values, uplink.meter_time(now) if isinstance(now, datetime) else None)]
    for storage, date_at in stored:
        when = None if date_at is None else frame.value(date_at)
        found = by_storage[storage]
        if isinstance(when, datetime) and found:
            result.append(Reading(found, uplink.meter_time(when)))
    return result


def _dated(records: Sequence[Record]) -> tuple[int | None, tuple[tuple[int, int | None], ...]]:
    """For ``Frame.shape``: the index of the first date/time record of storage 0, and each other
    storage number (ascending) with the index of its first date or date/time record."""
    now = next(
        (i for i, r in enumerate(records) if r.quantity == "datetime" and r.storage == 0), None
    )
    first: dict[int, int | None] = {}
    for i, r in enumerate(records):
        if r.storage and first.get(r.storage) is None:
            first[r.storage] = i if r.quantity in _DATES else None
    return now, tuple(sorted(first.items()))


_DATES = ("date", "datetime")


def _has_volume(records: Sequence[Record]) -> bool:
    return any(r.quantity == "volume" and r.storage == 0 for r in records)


def status_alarms(status: int) -> Values:
    """The application status byte (EN 13757-3 / OMS): bit 2 power low, bits 3-4 errors."""
    return {"alarm_low_battery": bool(status & 0x04), "alarm_meter_error": bool(status & 0x18)}
