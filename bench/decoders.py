"""Decodes per second per decoder family: the Elvaco CMi4110 standard M-Bus heat frame, an OMS
frame with twelve history (storage-number) records, AES mode 5 encrypted and the same frame in
plain, and the Milesight EM300-DI pulse counter; then one row per other decoder (its first OK
example), so the whole library shows. Each row times ``Decoder.readings(Uplink(...))`` — decode
plus the vocabulary check — with time.perf_counter for about a second.

    .venv/bin/python bench/decoders.py [--seconds 1.0]
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date, datetime
from pathlib import Path

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine
from decoders.core import Decoder, Example, Uplink
from decoders.registry import all_decoders, by_id

KEY = bytes(range(16))
# Kamstrup flowIQ 2200 in OMS mode: M-field KAM, ID 12345678, version 0x1B, cold water (0x16).
M_FIELD = (0x2C2D).to_bytes(2, "little")
ADDRESS = bytes.fromhex("78563412") + bytes([0x1B, 0x16])
ACCESS = 0x2A
HISTORY = 12  # monthly target values, storage numbers 1..12


def _date_g(day: date) -> bytes:
    """EN 13757-3 type G date (02 6C)."""
    year = day.year % 100
    return bytes([day.day | (year & 0x07) << 5, day.month | (year >> 3) << 4])


def _storage(dif: int, storage: int) -> bytes:
    """DIF (plus one DIFE when needed) for a data field code in a given storage number."""
    head = dif | (storage & 1) << 6
    if storage < 2:
        return bytes([head])
    return bytes([head | 0x80, (storage >> 1) & 0x0F])


def oms_records() -> bytes:
    """2F 2F, volume, info codes, flow, meter time, then HISTORY dated volumes; padded to 16."""
    records = bytearray(b"\x2f\x2f")
    records += bytes.fromhex("0413") + (123_456).to_bytes(4, "little")  # 123.456 m³
    records += bytes.fromhex("02FF20") + (0).to_bytes(2, "little")  # info codes
    records += bytes.fromhex("023B") + (10).to_bytes(2, "little")  # 10 l/h
    records += bytes.fromhex("046D 220C0F33")  # 2024-03-15 12:34
    for storage in range(1, HISTORY + 1):
        months = 2024 * 12 + 2 - storage  # the 1st of each month before 2024-03
        month = date(months // 12, months % 12 + 1, 1)
        records += (
            _storage(0x04, storage) + b"\x13" + (120_000 - 900 * storage).to_bytes(4, "little")
        )
        records += _storage(0x02, storage) + b"\x6c" + _date_g(month)
    return bytes(records) + b"\x2f" * (-len(records) % 16)


def oms_frame(*, encrypted: bool) -> bytes:
    """The wM-Bus frame (CI 7A short header) as a bridge forwards it, mode 5 or mode 0."""
    plain = oms_records()
    if encrypted:
        iv = M_FIELD + ADDRESS + bytes([ACCESS]) * 8
        encryptor = Cipher(algorithms.AES(KEY), modes.CBC(iv)).encryptor()
        data = encryptor.update(plain) + encryptor.finalize()
        word = 5 << 8 | (len(data) // 16) << 4
    else:
        data, word = plain, 0
    body = M_FIELD + ADDRESS + bytes([0x7A, ACCESS, 0x00]) + word.to_bytes(2, "little") + data
    frame = bytes([len(body) + 1, 0x44]) + body
    if len(frame) > 256:
        raise ValueError(f"frame of {len(frame)} bytes does not fit the L field")
    return frame


def uplink_for(example: Example) -> Uplink:
    received = example.received_at
    when = datetime.fromisoformat(received.replace("Z", "+00:00")) if received else None
    return Uplink(example.f_port, example.payload, when, example.params)


def first_ok(decoder: Decoder) -> Example | None:
    return next((e for e in decoder.examples if e.error is None), None)


def measure(decoder: Decoder, uplink: Uplink, seconds: float) -> tuple[int, float]:
    """Readings per decode, and decodes per second over about ``seconds``."""
    readings = len(decoder.readings(uplink))  # also fails loudly on a payload that does not decode
    n, elapsed = 1, 0.0
    while elapsed < seconds / 10:  # calibrate: grow the batch until it takes a tenth of the budget
        n *= 2
        started = time.perf_counter()
        for _ in range(n):
            decoder.readings(uplink)
        elapsed = time.perf_counter() - started
    n = max(1, round(n * seconds / elapsed))
    started = time.perf_counter()
    for _ in range(n):
        decoder.readings(uplink)
    return readings, n / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=1.0, help="time per row")
    args = parser.parse_args()

    def get(decoder_id: str) -> Decoder:
        decoder = by_id(decoder_id)
        if decoder is None:
            raise SystemExit(f"no decoder {decoder_id!r} in decoders/devices")
        return decoder

    elvaco, kamstrup, milesight = (
        get("elvaco_cmi4110"),
        get("kamstrup_flowiq2200"),
        get("milesight_em300_di"),
    )
    standard = next(e for e in elvaco.examples if e.title.startswith("standard message"))
    pulse = next(e for e in milesight.examples if e.error is None and e.params)
    key = {"aes_key": KEY.hex()}
    rows: list[tuple[str, Decoder, Uplink]] = [
        ("M-Bus heat frame: elvaco_cmi4110 standard", elvaco, uplink_for(standard)),
        (
            f"OMS + {HISTORY} history, AES mode 5: kamstrup_flowiq2200",
            kamstrup,
            Uplink(1, oms_frame(encrypted=True), params=key),
        ),
        (
            f"OMS + {HISTORY} history, plain: kamstrup_flowiq2200",
            kamstrup,
            Uplink(1, oms_frame(encrypted=False)),
        ),
        ("pulse counter: milesight_em300_di", milesight, uplink_for(pulse)),
    ]
    for decoder_id, decoder in sorted(all_decoders().items()):
        example = first_ok(decoder)
        if example is None:
            rows.append((f"other: {decoder_id} (no OK example)", decoder, Uplink(0, b"")))
            continue
        uplink = uplink_for(example)
        if any(d.id == decoder_id and u == uplink for _, d, u in rows):
            continue  # already a family row above
        rows.append((f"other: {decoder_id}", decoder, uplink))

    print(f"machine: {machine()}")
    print(f"{len(all_decoders())} decoders; Decoder.readings(Uplink(...)), ~{args.seconds:g} s/row")
    width = max(len(label) for label, _, _ in rows)
    print(f"{'family / decoder':<{width}}  {'bytes':>5}  {'readings':>8}  {'decodes/s':>10}")
    for label, decoder, uplink in rows:
        if not uplink.payload:
            print(f"{label:<{width}}  {'-':>5}  {'-':>8}  {'-':>10}")
            continue
        readings, rate = measure(decoder, uplink, args.seconds)
        print(f"{label:<{width}}  {len(uplink.payload):>5}  {readings:>8}  {rate:>10,.0f}")


if __name__ == "__main__":
    main()
