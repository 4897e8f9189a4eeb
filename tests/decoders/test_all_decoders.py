"""Every decoder against its own examples, the vendor vectors, truncation and random bytes."""

from __future__ import annotations

import ast
import json
import math
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import decoders.devices
from decoders.core import (
    UNITS,
    VOCABULARY,
    DecodeError,
    Decoder,
    Example,
    Kind,
    Register,
    Uplink,
    readings_to_json,
    registers_for,
)
from decoders.registry import all_decoders

DECODERS = all_decoders()
VECTORS = Path(__file__).parent.parent / "vectors"
DEVICES_DIR = Path(decoders.devices.__path__[0])

# What a decoder module may import: pure standard library, our core, and AES for OMS.
ALLOWED_IMPORTS = {
    "__future__", "struct", "math", "enum", "datetime", "dataclasses", "typing",
    "collections", "collections.abc", "functools", "itertools", "decoders", "cryptography",
}  # fmt: skip


def uplink_for(example: Example | dict[str, Any]) -> Uplink:
    if isinstance(example, Example):
        port, payload, params, received = (
            example.f_port,
            example.payload,
            example.params,
            example.received_at,
        )
    else:
        port = example["f_port"]
        payload = bytes.fromhex(example["hex"].replace(" ", ""))
        params, received = example.get("params", {}), example.get("received_at")
    when = datetime.fromisoformat(received.replace("Z", "+00:00")) if received else None
    return Uplink(f_port=port, payload=payload, params=params, received_at=when)


def expected(expect: dict[str, Any] | list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = [expect] if isinstance(expect, dict) else expect
    return [{"time": None, **row} for row in rows]


def rejected(decoder: Decoder, uplink: Uplink, match: str | None = None) -> DecodeError:
    """The decoder's own DecodeError, not one ``Decoder.readings``' safety net converted."""
    with pytest.raises(DecodeError, match=match) as info:
        decoder.readings(uplink)
    cause = info.value.__cause__
    assert cause is None, f"{decoder.id}: {type(cause).__name__} escaped the decoder: {cause!r}"
    return info.value


def check(decoder: Decoder, case: Example | dict[str, Any]) -> None:
    error = case.error if isinstance(case, Example) else case.get("error")
    expect = case.expect if isinstance(case, Example) else case.get("expect")
    uplink = uplink_for(case)
    if error is not None:
        rejected(decoder, uplink, error)
        return
    assert expect is not None, "an example needs expect or error"
    got = readings_to_json(decoder.readings(uplink))
    want = expected(expect)
    assert len(got) == len(want), got
    for g, w in zip(got, want, strict=True):
        assert g.keys() == w.keys(), f"fields differ: got {sorted(g)}, want {sorted(w)}"
        for key, value in w.items():
            if isinstance(value, float):
                assert g[key] == pytest.approx(value, rel=1e-9, abs=1e-9), key
            else:
                assert g[key] == value, key


EXAMPLES = [
    pytest.param(d, ex, id=f"{i}:{ex.title}") for i, d in DECODERS.items() for ex in d.examples
]


@pytest.mark.parametrize(("decoder", "example"), EXAMPLES)
def test_example(decoder: Decoder, example: Example) -> None:
    check(decoder, example)


def vector_cases() -> list[Any]:
    cases = []
    for path in sorted(VECTORS.glob("*/*.jsonl")):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if line.strip():
                case = json.loads(line)
                cases.append(pytest.param(path.parent.name, case, id=f"{path.parent.name}:{n}"))
    return cases


@pytest.mark.parametrize(("decoder_id", "case"), vector_cases())
def test_vendor_vector(decoder_id: str, case: dict[str, Any]) -> None:
    assert decoder_id in DECODERS, f"tests/vectors/{decoder_id} names no decoder"
    assert case.get("source"), "every vector says where it was published"
    check(DECODERS[decoder_id], case)


@pytest.mark.parametrize("decoder", DECODERS.values(), ids=list(DECODERS))
def test_decoder_is_complete(decoder: Decoder) -> None:
    oks = [ex for ex in decoder.examples if ex.error is None]
    errors = [ex for ex in decoder.examples if ex.error is not None]
    assert oks, "needs at least one example that decodes"
    assert errors, "needs at least one example that is rejected"
    assert decoder.vendor and decoder.model
    module = __import__(f"decoders.devices.{decoder.id}", fromlist=["_"])
    assert module.__doc__ and len(module.__doc__.splitlines()) > 2, "docstring draws the layout"
    emitted = {k for ex in oks for row in expected(ex.expect or {}) for k in row}
    emitted -= {"time", "meter", "error"}  # a reading's meter (bridges) and time, not values
    assert emitted <= set(decoder.fields)


@pytest.mark.parametrize("decoder", DECODERS.values(), ids=list(DECODERS))
def test_truncated_examples_are_rejected(decoder: Decoder) -> None:
    for example in decoder.examples:
        if example.error is not None:
            continue
        base = uplink_for(example)
        for cut in range(len(base.payload)):
            uplink = Uplink(base.f_port, base.payload[:cut], base.received_at, base.params)
            rejected(decoder, uplink)


@pytest.mark.parametrize("decoder", DECODERS.values(), ids=list(DECODERS))
def test_decoding_is_deterministic(decoder: Decoder) -> None:
    for example in decoder.examples:
        if example.error is None:
            uplink = uplink_for(example)
            assert decoder.readings(uplink) == decoder.readings(uplink)


@pytest.mark.parametrize("decoder", DECODERS.values(), ids=list(DECODERS))
def test_any_bytes_give_readings_or_decode_error(decoder: Decoder) -> None:
    params = next((ex.params for ex in decoder.examples if ex.params), {})
    ports = sorted({ex.f_port for ex in decoder.examples})

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        port=st.one_of(st.sampled_from(ports), st.integers(0, 255)),
        payload=st.one_of(
            st.binary(max_size=64),
            st.sampled_from([ex.payload for ex in decoder.examples]).flatmap(
                lambda p: st.binary(min_size=len(p), max_size=len(p))
            ),
        ),
    )
    def run(port: int, payload: bytes) -> None:
        try:
            readings = decoder.readings(Uplink(port, payload, None, params))
        except DecodeError as exc:
            cause = exc.__cause__
            assert cause is None, f"{type(cause).__name__} escaped the decoder: {cause!r}"
            return
        for reading in readings:
            for name, value in reading.values.items():
                spec = VOCABULARY[name]
                if isinstance(value, float):
                    assert math.isfinite(value)
                if isinstance(value, int | float) and not isinstance(value, bool):
                    assert spec.low <= value <= spec.high

    run()


def test_vocabulary_names_carry_their_unit() -> None:
    for name, spec in VOCABULARY.items():
        suffix = name.rsplit("_", 1)[-1]
        if spec.kind is Kind.STATE or spec.type is int:
            continue  # states and counts are unitless
        assert suffix in UNITS, f"{name}: a measured quantity ends in a unit from core.UNITS"


@pytest.mark.parametrize(
    "path", sorted(DEVICES_DIR.glob("*.py")), ids=lambda p: p.name if isinstance(p, Path) else ""
)
def test_decoder_module_is_at_most_150_lines(path: Path) -> None:
    lines = len(path.read_text().splitlines())
    assert lines <= 150, f"{path.name} has {lines} lines: share helpers (decoders/<family>.py)"


@pytest.mark.parametrize(
    "path", sorted(DEVICES_DIR.glob("*.py")), ids=lambda p: p.name if isinstance(p, Path) else ""
)
def test_decoder_module_does_no_io(path: Path) -> None:
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        for name in names:
            top = name.split(".")[0]
            assert name in ALLOWED_IMPORTS or top in {"decoders", "cryptography"}, (
                f"{path.name} imports {name}: decoders are pure (stdlib, decoders, cryptography)"
            )
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            assert node.func.id not in {"open", "print", "input", "exec", "eval"}, node.func.id


@pytest.mark.parametrize("decoder", DECODERS.values(), ids=list(DECODERS))
def test_every_counter_declares_its_register(decoder: Decoder) -> None:
    counters = {n for n in decoder.fields if VOCABULARY[n].kind is Kind.COUNTER}
    missing = counters - set(decoder.registers)
    assert not missing, f"counter fields without a Register declaration: {sorted(missing)}"
    for params in [{}, *(ex.params for ex in decoder.examples if ex.error is None)]:
        found = registers_for(decoder, params)
        assert set(found) == set(decoder.registers), "registers_fn refines, never adds or drops"
        assert all(isinstance(r, Register) for r in found.values())
