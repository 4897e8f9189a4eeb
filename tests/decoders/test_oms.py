"""OMS / wM-Bus frames: headers, AES-128-CBC mode 5 built here with a known key, errors."""

from __future__ import annotations

import threading

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from decoders.core import DecodeError, Uplink
from decoders.oms import _key, crc16, decode_frame, format_signature, manufacturer_code

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


def cbc_decrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    return decryptor.update(data) + decryptor.finalize()


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([KEY, bytes(16), b"\xff" * 16]),
            st.binary(min_size=16, max_size=16),
            st.integers(1, 15).flatmap(lambda n: st.binary(min_size=16 * n, max_size=16 * n)),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_the_reused_key_context_decrypts_as_aes_cbc(
    frames: list[tuple[bytes, bytes, bytes]],
) -> None:
    """Each key's ECB context is reused from frame to frame: every frame still decrypts as a
    fresh AES-128-CBC cipher would, whatever was decrypted before with that key or another."""
    for key, iv, data in frames:
        assert _key({"aes_key": key.hex()}).decrypt_cbc(iv, data) == cbc_decrypt(key, iv, data)
        with pytest.raises(ValueError, match="whole 16-byte blocks"):  # nothing kept back
            _key({"aes_key": key.hex()}).decrypt_cbc(iv, data[:-1])


def test_one_key_decrypts_for_several_threads_at_once() -> None:
    key = _key({"aes_key": KEY.hex()})
    jobs = [(bytes([n]) * 16, bytes(range(n, n + 16)) * (1 + n % 15)) for n in range(64)]
    want = [cbc_decrypt(KEY, iv, data) for iv, data in jobs]
    got: list[list[bytes]] = [[] for _ in range(4)]

    def work(out: list[bytes]) -> None:
        for _ in range(50):
            out[:] = [key.decrypt_cbc(iv, data) for iv, data in jobs]

    threads = [threading.Thread(target=work, args=(out,)) for out in got]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert got == [want] * 4


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (M + ADDRESS + bytes([0x7A, 1, 0]) + (0x0710).to_bytes(2, "little"), "security mode 7"),
        (M + ADDRESS + bytes([0x8D, 1, 0, 0]), "need 18 for an extended link layer"),
        (M + ADDRESS + bytes([0x7B, 1, 0, 0]), "unsupported CI field 0x7b"),
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


# Published Kamstrup C1 telegrams (lvogt/wireless-mbus-parser tests): an AES-CTR ELL frame
# (test/parser/extendedLinkLayer.test.ts, MULTICAL 21 63452869) and a heat meter's full frame
# (test/parser/malformed.test.ts) with its compact frame one access number later (ELL test
# "already decrypted"): ELL header with the encryption bit set, the payload sent in clear.
ELL_KEY = "4E5508544202058100DFEFA06B0934A5"
ELL = bytes.fromhex("24442D2C692845631B168D3050209CD621B006B1140AEF4953AE5B86FAFC0B00E70705B846")
FULL = bytes.fromhex(
    "5C442D2C06357260190C8D207B70032F21271D7802F9FF15011104061765000004EEFF07BFA8000004EEFF08"
    "D24F00000414B1FB000002FD170000026CE919426CFF184406F76400004414E8FA0000043B0B0000000259DB11"
    "025D1C0B"
)
COMPACT = bytes.fromhex(
    "3F442D2C06357260190C8D207C71032F21255C79DD829283011117650000BFA80000D24F0000B1FB00000000E9"
    "19FF18F7640000E8FA00000B000000DB111C0B"
)
LAYOUT = "02F9FF15 0406 04EEFF07 04EEFF08 0414 02FD17 026C 426C 4406 4414 043B 0259 025D"


def test_extended_link_layer_aes_ctr() -> None:
    telegram = decode_frame(Uplink(1, ELL, params={"aes_key": ELL_KEY}))
    assert (telegram.manufacturer, telegram.meter_id, telegram.device_type) == (
        "KAM",
        "63452869",
        0x16,
    )
    assert telegram.access_number == 0x50
    assert [(r.quantity, r.storage, r.value) for r in telegram.records[1:]] == [
        ("volume", 0, 474.24),
        ("volume", 1, 473.247),
    ]


def test_extended_link_layer_key_problems() -> None:
    with pytest.raises(DecodeError, match="payload CRC mismatch") as wrong:
        decode_frame(Uplink(1, ELL, params={"aes_key": "4E11" + ELL_KEY[4:]}))
    assert wrong.value.offset == 17
    with pytest.raises(DecodeError, match="no aes_key"):
        decode_frame(Uplink(1, ELL))


def test_compact_frame_rebuilds_the_full_frame_records() -> None:
    full = decode_frame(Uplink(1, FULL))
    compact = decode_frame(Uplink(1, COMPACT, params={"compact_formats": [LAYOUT]}))
    assert (compact.meter_id, compact.device_type, compact.access_number) == (
        "60723506",
        0x0C,
        0x7C,
    )
    pairs = [(r.quantity, r.storage, r.value) for r in compact.records]
    assert pairs == [(r.quantity, r.storage, r.value) for r in full.records]
    assert ("energy", 0, 25879000) in pairs and ("volume", 0, 644.33) in pairs
    assert ("flow_temp", 0, 45.71) in pairs and ("return_temp", 0, 28.44) in pairs
    assert format_signature(bytes.fromhex(LAYOUT)) == 0x82DD  # the frame's DD 82
    other = "0413 " + LAYOUT  # a second, non-matching layout is skipped
    again = decode_frame(Uplink(1, COMPACT, params={"compact_formats": [other, LAYOUT]}))
    assert again.records == compact.records


@pytest.mark.parametrize(
    ("payload", "params", "message", "offset"),
    [
        (COMPACT, {}, "format signature 82DD: no compact_formats entry", 20),
        (COMPACT, {"compact_formats": ["0413"]}, "no compact_formats entry", 20),
        (COMPACT, {"compact_formats": ["zz"]}, "not hex", None),
        (COMPACT, {"compact_formats": ["04"]}, "DIF without VIF", 0),
        (COMPACT[:-1], {"compact_formats": [LAYOUT]}, "no aes_key", None),  # ELL CRC broken
        # the compact frame without the ELL (CI 79 right after the link layer), truncated
        (COMPACT[:10] + COMPACT[19:-1], {"compact_formats": [LAYOUT]}, "025d needs 2", 53),
        (COMPACT[:10] + COMPACT[19:23], {"compact_formats": [LAYOUT]}, "need 15", 10),
        (COMPACT[:10] + COMPACT[19:] + b"\0", {"compact_formats": [LAYOUT]}, "1 bytes after", 55),
    ],
)
def test_compact_frame_errors(
    payload: bytes, params: dict[str, object], message: str, offset: int | None
) -> None:
    frame = bytes([len(payload) - 1]) + payload[1:]
    with pytest.raises(DecodeError, match=message) as error:
        decode_frame(Uplink(1, frame, params=params))
    assert error.value.offset == offset
    assert error.value.__cause__ is None


def test_compact_frame_crc_guards_the_rebuilt_records() -> None:
    """A layout with the right signature but different lengths cannot pass: the full-frame CRC
    (or the data length) rejects it; changed data fail the CRC too."""
    tampered = bytearray(COMPACT)
    tampered[30] ^= 0x01  # a data byte; the ELL CRC is recomputed so only the full CRC sees it
    tampered[17:19] = crc16(bytes(tampered[19:])).to_bytes(2, "little")
    with pytest.raises(DecodeError, match="full-frame CRC 8392") as error:
        decode_frame(Uplink(1, bytes(tampered), params={"compact_formats": [LAYOUT]}))
    assert error.value.offset == 22


def test_crc16_check_value() -> None:
    # EN 13757-4 CRC ("CRC-16/EN-13757" in the CRC catalogue): check value of "123456789"
    assert crc16(b"123456789") == 0xC2B7
