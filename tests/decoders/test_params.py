"""Declared decoder params: validation for the registry, and no crash on any value."""

from __future__ import annotations

import ast
import math
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from decoders.core import DecodeError, Decoder, Param, ParamError, Uplink, validate_params
from decoders.registry import all_decoders, by_id
from tests.decoders.test_all_decoders import uplink_for

DECODERS = all_decoders()
DEVICES = __import__("decoders.devices", fromlist=["_"]).__path__[0]
ODD_VALUES: list[Any] = [
    None, "x", "", -1, 0, 1, 10**30, -(10**30), 1e308, math.nan, math.inf, True, [], [1, "a"],
    {"a": 1}, "ch2", "cumulative", "m3", "00" * 16,
]  # fmt: skip


def raised(call: Callable[[], object]) -> Exception | None:
    try:
        call()
    except Exception as exc:
        return exc
    return None


def test_every_param_a_decoder_reads_is_declared() -> None:
    """Decoders read params only through a declared Param (or core's pulse_values)."""
    for path in sorted(Path(DEVICES).glob("[!_]*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            target = node.value if isinstance(node, ast.Subscript) else None
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                target = node.func.value if node.func.attr == "get" else None
            name = getattr(target, "attr", getattr(target, "id", None))
            line = getattr(node, "lineno", "?")
            assert name != "params", f"{path.name}:{line} reads a param undeclared"


@pytest.mark.parametrize("decoder", DECODERS.values(), ids=list(DECODERS))
def test_examples_use_valid_declared_params(decoder: Decoder) -> None:
    names = [p.name for p in decoder.params]
    assert len(names) == len(set(names)), "a param is declared twice"
    for example in decoder.examples:
        if example.error is None:
            raw = uplink_for(example)
            checked = replace(raw, params=validate_params(decoder, example.params))
            assert decoder.readings(checked) == decoder.readings(raw)


@pytest.mark.parametrize("decoder", DECODERS.values(), ids=list(DECODERS))
def test_odd_param_values_give_decode_error_or_are_rejected(decoder: Decoder) -> None:
    """Any value in any declared param: ParamError from validation, and readings or a
    DecodeError of the decoder's own (never TypeError / OverflowError) when decoded anyway."""
    for example in decoder.examples:
        for param in decoder.params:
            for value in ODD_VALUES:
                params = {**example.params, param.name: value}
                invalid = raised(partial(validate_params, decoder, params))
                assert invalid is None or isinstance(invalid, ParamError), repr(invalid)
                assert invalid is None or "\n" not in str(invalid)
                uplink = replace(uplink_for(example), params=params)
                failed = raised(partial(decoder.readings, uplink))
                assert failed is None or isinstance(failed, DecodeError), repr(failed)
                assert failed is None or failed.__cause__ is None, f"{param.name}={value!r}"


@pytest.mark.parametrize(
    ("decoder_id", "params", "message"),
    [
        ("alpha_omega_klax", {"obis": 5}, "obis must be tuple"),
        ("alpha_omega_klax", {"measure_interval_min": "15"}, "must be float"),
        ("alpha_omega_klax", {"measure_interval_min": 1e300}, "outside"),
        ("axioma_qalcosonic_w1", {"log_interval_s": 10**20}, "outside"),
        ("axioma_qalcosonic_w1", {"frame_format": "short"}, "use one of extended, standard"),
        ("netvox_r718h", {"pulse_factor": "10"}, "pulse_factor must be float"),
        ("netvox_r718h", {"pulse_factr": 10}, "has no param 'pulse_factr'"),
        ("netvox_r718h", {"pulse_offset": math.nan}, "finite"),
        ("sensus_iperl", {"aes_key": "00"}, "32 hex digits"),
    ],
)
def test_validation_says_what_is_wrong(
    decoder_id: str, params: dict[str, Any], message: str
) -> None:
    decoder = by_id(decoder_id)
    assert decoder is not None
    with pytest.raises(ParamError, match=message):
        validate_params(decoder, params)


def test_klax_and_axioma_params_that_crashed_are_decode_errors() -> None:
    klax, axioma = by_id("alpha_omega_klax"), by_id("axioma_qalcosonic_w1")
    assert klax is not None and axioma is not None
    for decoder, params in ((klax, {"obis": 5}), (klax, {"measure_interval_min": 1e300}),
                            (axioma, {"log_interval_s": 10**20})):  # fmt: skip
        example = next(ex for ex in decoder.examples if ex.error is None)
        with pytest.raises(DecodeError, match="param") as info:
            decoder.readings(Uplink(example.f_port, example.payload, params=params))
        assert info.value.__cause__ is None


def test_validated_numbers_become_floats_and_lists_tuples() -> None:
    assert Param("f", float).check(3) == 3.0 and isinstance(Param("f", float).check(3), float)
    assert Param("o", tuple).check(["1.8.0", "2.8.0"]) == ("1.8.0", "2.8.0")
    with pytest.raises(ParamError, match="must be int"):
        Param("i", int).check(True)
