"""Declared registers: what metering learns of a counter for one device and its params."""

from __future__ import annotations

import pytest

from decoders.core import Decoder, Register, Uplink, Values, pulse_registers_fn, registers_for
from decoders.registry import by_id

WATER_10L = {"medium": "water", "pulse_factor": 10, "pulse_unit": "l"}


def test_pulse_register_wraps_with_its_counter_in_the_field_unit() -> None:
    found = pulse_registers_fn(16)(WATER_10L)
    assert found["pulse_count"] == Register(65536.0)
    assert found["volume_m3"].rollover == pytest.approx(655.36)  # 65536 x 10 L
    gas = pulse_registers_fn(32)({"medium": "gas", "pulse_factor": 0.01, "pulse_unit": "m3"})
    assert gas["volume_m3"].rollover == pytest.approx(2**32 * 0.01)
    assert pulse_registers_fn(32)({"medium": "water"})["volume_m3"] == Register(None)


def test_netvox_r718h_counter_mode_decides_delta_or_cumulative() -> None:
    decoder = by_id("netvox_r718h")
    assert decoder is not None
    default = registers_for(decoder, WATER_10L)
    assert default["volume_m3"] == Register(None, delta=True)
    assert default["pulse_count_2"].delta
    cumulative = registers_for(decoder, {**WATER_10L, "counter_mode": "cumulative"})
    assert cumulative["pulse_count"] == Register(65536.0)
    assert cumulative["volume_m3"].rollover == pytest.approx(655.36)
    assert not cumulative["pulse_count_2"].delta


def test_bcd_register_declares_its_digits() -> None:
    decoder = by_id("zenner_edc")
    assert decoder is not None
    assert decoder.register("volume_m3") == Register(1e5)


def _nothing(uplink: Uplink) -> Values:
    return {}


def test_decoder_refuses_registers_of_gauges_and_unknown_media() -> None:
    with pytest.raises(ValueError, match="non-counter"):
        Decoder("V", "M", decode=_nothing, fields=("power_w",), examples=(),
                registers={"power_w": Register()})  # fmt: skip
    with pytest.raises(ValueError, match="unknown medium"):
        Decoder("V", "M", decode=_nothing, fields=("power_w",), examples=(), medium="steam")
