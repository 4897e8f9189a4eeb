"""Decodes per second: the two decoding targets of issue 13 against anchors measured in the
same run, then one row per decoder family and per other decoder, so the whole library shows.

Targets (median of interleaved rounds; each round times every target and its anchor once):
- M-Bus heat frame, Elvaco CMi4110 standard message: >= 50,000 decodes/s per core. Timed:
  ``decoder.readings(Uplink(port, payload, None, {}))`` (building the Uplink, as ingest does per
  message, plus decode and the vocabulary check). Anchor: the same loop with a decoder whose
  decode returns no values, i.e. the fixed cost every uplink pays before a byte is read; its
  rate shows how fast the interpreter runs at that moment on a shared machine.
- OMS frame with 12 history (storage-number) records, AES-128 mode 5 encrypted (Kamstrup
  flowIQ 2200 via a wM-Bus bridge): >= 15,000 decodes/s. Timed like the M-Bus row, with the
  AES key in the Uplink's params. Anchor: the bare AES-128-CBC decryption of the same 176 bytes
  with ``cryptography`` (cipher context, update, finalize), the part a decoder cannot avoid.
Each target line prints the median decodes/s, the anchor's median rate, the median per-round
ratio "anchors per decode" (anchor rate / decode rate), the target and whether it is met.
Rates are per CPU second of this process (``time.process_time``), i.e. per core: on a shared
machine the wall clock also counts the time other processes hold the core.

The table below (one timing per row, ``decoder.readings`` on a prebuilt Uplink, about
``--seconds`` each) covers the OMS frame in plain, the pulse counter and every other decoder's
first OK example.

    .venv/bin/python bench/decoders.py [--rounds 7] [--seconds 0.2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
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


def _aes_decrypt(frame: bytes) -> Callable[[], bytes]:
    """The anchor of the OMS row: AES-128-CBC decryption of the frame's encrypted blocks."""
    iv = M_FIELD + ADDRESS + bytes([ACCESS]) * 8
    blocks = frame[15:]  # after L C M(2) A(6) CI, access number, status, word(2): the blocks

    def decrypt() -> bytes:
        decryptor = Cipher(algorithms.AES(KEY), modes.CBC(iv)).decryptor()
        return decryptor.update(blocks) + decryptor.finalize()

    if not decrypt().startswith(b"\x2f\x2f"):
        raise SystemExit("the anchor does not decrypt the bench frame")
    return decrypt


def _readings(
    decoder: Decoder, port: int, payload: bytes, params: dict[str, str]
) -> Callable[[], object]:
    """One uplink as ingest hands it on: build the Uplink, decode, check the vocabulary."""

    def run() -> object:
        return decoder.readings(Uplink(port, payload, None, params))

    run()  # fails loudly on a payload that does not decode
    return run


NULL = Decoder(vendor="bench", model="null", decode=lambda uplink: {}, fields=(), examples=())


def rate(fn: Callable[[], object], n: int) -> float:
    """Calls per CPU second (this process's CPU time: per core, whatever else the machine
    runs) over ``n`` calls."""
    started = time.process_time()
    for _ in range(n):
        fn()
    return n / (time.process_time() - started)


def calibrate(fn: Callable[[], object], seconds: float) -> int:
    """How many calls take about ``seconds`` of CPU time."""
    n, elapsed = 1, 0.0
    while elapsed < seconds / 10:
        n *= 2
        started = time.process_time()
        for _ in range(n):
            fn()
        elapsed = time.process_time() - started
    return max(1, round(n * seconds / elapsed))


def targets(elvaco: Decoder, kamstrup: Decoder, rounds: int, seconds: float) -> None:
    """Print each target's median rate against its anchor, measured in interleaved rounds."""
    standard = next(e for e in elvaco.examples if e.title.startswith("standard message"))
    frame = oms_frame(encrypted=True)
    key = {"aes_key": KEY.hex()}
    rows = [  # label, timed, anchor label, anchor, target decodes/s
        (
            "M-Bus heat frame: elvaco_cmi4110 standard",
            _readings(elvaco, standard.f_port, standard.payload, {}),
            "null decoder",
            _readings(NULL, standard.f_port, standard.payload, {}),
            50_000,
        ),
        (
            f"OMS + {HISTORY} history, AES mode 5: kamstrup_flowiq2200",
            _readings(kamstrup, 1, frame, key),
            f"AES-CBC {len(frame) - 15} B",
            _aes_decrypt(frame),
            15_000,
        ),
    ]
    plan = [
        (fn, calibrate(fn, seconds)) for _, timed, _, anchor, _ in rows for fn in (timed, anchor)
    ]
    samples: list[list[float]] = [[] for _ in plan]
    for _ in range(rounds):
        for i, (fn, n) in enumerate(plan):
            samples[i].append(rate(fn, n))
    print(f"targets: median of {rounds} interleaved rounds, ~{seconds:g} s per timing")
    width = max(len(row[0]) for row in rows)
    head = f"{'target row':<{width}}  {'decodes/s':>9}  {'anchor':>18} {'anchor/s':>9}"
    print(f"{head}  {'anchors/decode':>14}  {'target':>8}")
    for i, (label, _, anchor_label, _, target) in enumerate(rows):
        decodes, anchors = samples[2 * i], samples[2 * i + 1]
        ratio = statistics.median(a / d for d, a in zip(decodes, anchors, strict=True))
        median = statistics.median(decodes)
        verdict = "met" if median >= target else "NOT met"
        anchor_rate = statistics.median(anchors)
        print(
            f"{label:<{width}}  {median:>9,.0f}  {anchor_label:>18} {anchor_rate:>9,.0f}"
            f"  {ratio:>14.2f}  {target:>8,}  {verdict}"
        )


def first_ok(decoder: Decoder) -> Example | None:
    return next((e for e in decoder.examples if e.error is None), None)


def measure(decoder: Decoder, uplink: Uplink, seconds: float) -> tuple[int, float]:
    """Readings per decode, and decodes per second over about ``seconds``."""
    readings = len(decoder.readings(uplink))  # also fails loudly on a payload that does not decode

    def run() -> object:
        return decoder.readings(uplink)

    return readings, rate(run, calibrate(run, seconds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds of the targets")
    parser.add_argument("--seconds", type=float, default=0.2, help="time per timing")
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
    targets(elvaco, kamstrup, args.rounds, args.seconds)
    print()
    print(f"{len(all_decoders())} decoders; Decoder.readings(Uplink(...)), ~{args.seconds:g} s/row")
    width = max(len(label) for label, _, _ in rows)
    print(f"{'family / decoder':<{width}}  {'bytes':>5}  {'readings':>8}  {'decodes/s':>10}")
    for label, decoder, uplink in rows:
        if not uplink.payload:
            print(f"{label:<{width}}  {'-':>5}  {'-':>8}  {'-':>10}")
            continue
        readings, per_second = measure(decoder, uplink, args.seconds)
        print(f"{label:<{width}}  {len(uplink.payload):>5}  {readings:>8}  {per_second:>10,.0f}")


if __name__ == "__main__":
    main()
