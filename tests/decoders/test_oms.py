"""OMS / wM-Bus frames: headers, AES-128-CBC mode 5 built here with a known key, errors."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from decoders.core import DecodeError, Uplink
from decoders.oms import decode_frame, manufacturer_code

KEY = bytes(range(16))
M = (0x2C2D).to_bytes(2, "little")  # KAM
ADDRESS = bytes.fromhex("78563412") + bytes([0x1B, 0x16])  # ID 12345678, version, cold water


def encrypt(plain: bytes, iv: bytes) -> bytes:
    padded = plain + b"\x2f" * (-len(plain) % 16)
    encryptor = Cipher(algorithms.AES(KEY), modes.CBC(iv)).encryptor()
    return encryptor.update(padded) + encryptor.finalize()


def framed(body: bytes) -> Uplink:
    frame = bytes([len(body) + 1, 0x44]) + body
    return Uplink(1, frame, params={"aes_key": KEY.hex()})


RECORDS = bytes.fromhex("2F2F 0413 39300000 023B 0A00".replace(" ", ""))


def test_short_header_mode5() -> None:
    access = 0x2A
    data = encrypt(RECORDS, M + ADDRESS + bytes([access]) * 8)
    word = (5 << 8 | (len(data) // 16) << 4).to_bytes(2, "little")
    telegram = decode_frame(framed(M + ADDRESS + bytes([0x7A, access, 0x04]) + word + data))
    assert (telegram.manufacturer, telegram.meter_id, telegram.access_number) == (
        "KAM",
        "12345678",
        access,
    )
    assert telegram.status == 0x04
    assert [(r.quantity, r.value) for r in telegram.records] == [
        ("volume", 12.345),
        ("volume_flow", 0.01),
    ]


def test_long_header_uses_the_meter_address_for_the_iv() -> None:
    bridge = (0x0CAE).to_bytes(2, "little") + bytes.fromhex("11111111") + bytes([1, 0x31])
    access = 0x07
    data = encrypt(RECORDS, M + ADDRESS + bytes([access]) * 8)
    word = (5 << 8 | (len(data) // 16) << 4).to_bytes(2, "little")
    header = ADDRESS[:4] + M + ADDRESS[4:] + bytes([access, 0])
    telegram = decode_frame(framed(bridge + bytes([0x72]) + header + word + data))
    assert (telegram.manufacturer, telegram.meter_id, telegram.device_type) == (
        "KAM",
        "12345678",
        0x16,
    )
    assert telegram.records[0].value == 12.345


def test_plain_records_after_encrypted_blocks_and_no_header() -> None:
    access = 0x01
    data = encrypt(RECORDS, M + ADDRESS + bytes([access]) * 8) + bytes.fromhex("01FD1703")
    word = (5 << 8 | 1 << 4).to_bytes(2, "little")
    telegram = decode_frame(framed(M + ADDRESS + bytes([0x7A, access, 0]) + word + data))
    assert telegram.records[-1].quantity == "error_flags"
    plain = decode_frame(framed(M + ADDRESS + bytes([0x78]) + RECORDS))
    assert [r.quantity for r in plain.records] == ["volume", "volume_flow"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"aes_key": "FF" * 16}, "decryption failed: wrong key"),
        ({}, "no aes_key"),
        ({"aes_key": "0011"}, "32 hex digits"),
        ({"aes_key": "zz" * 16}, "32 hex digits"),
        ({"aes_key": 1234}, "must be str"),
    ],
)
def test_key_problems(params: dict[str, str], message: str) -> None:
    data = encrypt(RECORDS, M + ADDRESS + bytes([9]) * 8)
    body = M + ADDRESS + bytes([0x7A, 9, 0]) + (0x0510).to_bytes(2, "little") + data
    uplink = framed(body)
    with pytest.raises(DecodeError, match=message):
        decode_frame(Uplink(1, uplink.payload, params=params))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (M + ADDRESS + bytes([0x7A, 1, 0]) + (0x0710).to_bytes(2, "little"), "security mode 7"),
        (M + ADDRESS + bytes([0x8D, 1, 0, 0]), "unsupported CI field 0x8d"),
        (M + ADDRESS + bytes([0x7A, 1, 0]) + (0x0520).to_bytes(2, "little"), "encrypted bytes"),
        (M + bytes.fromhex("7856341A") + bytes([1, 7, 0x78]), "not BCD"),
    ],
)
def test_frame_errors(body: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        decode_frame(framed(body))


def test_length_field_must_match() -> None:
    with pytest.raises(DecodeError, match="L field"):
        decode_frame(Uplink(1, bytes([0x20]) + bytes(15)))


def test_manufacturer_code() -> None:
    assert manufacturer_code(0x2C2D) == "KAM"
    assert manufacturer_code(0x4CAE) == "SEN"
