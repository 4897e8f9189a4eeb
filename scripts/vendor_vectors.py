"""Report: every decoder against the vendor examples of the TTN Device Repository.

Usage: python scripts/vendor_vectors.py [VECTORS_JSONL]   (make vectors)

A vendor example belongs to a decoder when its TTS ``devices`` meet the decoder's
``lorawan_ids``, or when ``tests/vectors/<decoder>/vendor.jsonl`` holds its payload (a codec
shared by several devices). Per decoder it prints: the vendor examples, how many of them
``vendor.jsonl`` maps onto our vocabulary, how many decode and how many are rejected as the
mapping says, and how many decode to exactly the mapped values. Exit 1 if a vendor example
is unmapped or a mapped one disagrees, so CI can run it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from decoders.core import DecodeError, Decoder, Uplink, readings_to_json  # noqa: E402
from decoders.registry import all_decoders  # noqa: E402

DEFAULT = Path("/work/shared/vectors/ttn-metering.jsonl")


def say(text: str = "") -> None:
    """One line of the report on stdout."""
    sys.stdout.write(text + "\n")


def _key(port: int, hex_text: str) -> tuple[int, str]:
    return port, hex_text.replace(" ", "").lower()


def _outcome(decoder: Decoder, case: dict[str, Any]) -> tuple[str, bool]:
    """("decoded" | "rejected" | "wrong", whether the result is what the mapping says)."""
    received = case.get("received_at")
    uplink = Uplink(
        case["f_port"],
        bytes.fromhex(case["hex"].replace(" ", "")),
        None if received is None else __import__("datetime").datetime.fromisoformat(received),
        case.get("params", {}),
    )
    try:
        got = readings_to_json(decoder.readings(uplink))
    except DecodeError as exc:
        expected = case.get("error")
        return "rejected", expected is not None and expected in str(exc)
    if "expect" not in case:
        return "wrong", False
    want = case["expect"] if isinstance(case["expect"], list) else [case["expect"]]
    want = [{"time": None, **row} for row in want]
    same = len(got) == len(want) and all(
        g.keys() == w.keys()
        and all(
            abs(g[k] - w[k]) <= 1e-9 * max(1.0, abs(w[k]))
            if isinstance(w[k], float)
            else g[k] == w[k]
            for k in w
        )
        for g, w in zip(got, want, strict=True)
    )
    return "decoded", same


def main(argv: list[str]) -> int:
    source = Path(argv[1]) if len(argv) > 1 else DEFAULT
    vendor = [json.loads(line) for line in source.read_text().splitlines() if line.strip()]
    by_payload = {_key(v["fport"], v["hex"]): v for v in vendor}
    claimed: set[tuple[int, str]] = set()
    failed = 0
    header = (
        f"{'decoder':26} {'vendor':>6} {'mapped':>6} {'decoded':>7} {'rejected':>8} {'match':>5}"
    )
    say(header)
    say("-" * len(header))
    totals = [0, 0, 0, 0, 0]
    for decoder_id, decoder in all_decoders().items():
        ids = {i.lower() for i in decoder.lorawan_ids}
        mine = {
            _key(v["fport"], v["hex"]) for v in vendor if ids & {d.lower() for d in v["devices"]}
        }
        path = ROOT / "tests" / "vectors" / decoder_id / "vendor.jsonl"
        cases = (
            [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
            if path.exists()
            else []
        )
        vendor_cases = [c for c in cases if _key(c["f_port"], c["hex"]) in by_payload]
        mine |= {_key(c["f_port"], c["hex"]) for c in vendor_cases}
        if not mine:
            continue
        claimed |= mine
        mapped = {_key(c["f_port"], c["hex"]) for c in vendor_cases}
        counts = {"decoded": 0, "rejected": 0, "wrong": 0}
        matching = 0
        for case in vendor_cases:
            kind, ok = _outcome(decoder, case)
            counts[kind] += 1
            matching += ok
        row = [len(mine), len(mapped), counts["decoded"], counts["rejected"], matching]
        totals = [a + b for a, b in zip(totals, row, strict=True)]
        say(f"{decoder_id:26} {row[0]:>6} {row[1]:>6} {row[2]:>7} {row[3]:>8} {row[4]:>5}")
        for missing in sorted(mine - mapped):
            v = by_payload[missing]
            say(f"    not mapped: {v['codec_file']} #{v['example_index']} {v['description']}")
        failed += len(mine - mapped) + (len(vendor_cases) - matching)
    say("-" * len(header))
    say(f"{'total':26} {totals[0]:>6} {totals[1]:>6} {totals[2]:>7} {totals[3]:>8} {totals[4]:>5}")
    core = [v for v in vendor if v["relevance"] == "core"]
    left = sorted(
        {(v["vendor"], v["device"]) for v in core if _key(v["fport"], v["hex"]) not in claimed}
    )
    unclaimed = sum(_key(v["fport"], v["hex"]) not in claimed for v in core)
    names = ", ".join(f"{a}/{b}" for a, b in left)
    say(f"\ncore vendor examples (of {len(vendor)}) with no decoder of ours: {unclaimed} ({names})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
