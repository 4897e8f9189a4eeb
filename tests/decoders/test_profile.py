"""Zero-code profiles: a network server's decoded output mapped onto our vocabulary."""

from __future__ import annotations

import pytest

from decoders.core import DecodeError
from decoders.profile import map_decoded, parse_profile


def test_paths_units_scale_and_offset() -> None:
    mappings = parse_profile(
        {
            "volume_m3": {"path": "metering.water.total", "unit": "l", "offset": 100},
            "energy_heat_kwh": {"path": "values.1.e", "unit": "MWh"},
            "battery_v": {"path": "battery_mv", "unit": "mV"},
            "flow_m3h": {"path": "flow", "scale": 0.5},
            "alarm_leak": "water.leak",
            "pulse_count": "count",
            "meter_serial": "serial",
        }
    )
    decoded = {
        "metering": {"water": {"total": 123456}},
        "values": [{"e": 1}, {"e": 2.5}],
        "battery_mv": 3600,
        "flow": 3,
        "water": {"leak": 0},
        "count": 512.0,  # ChirpStack prints every number as a float
        "serial": 4711,
    }
    assert map_decoded(decoded, mappings) == {
        "volume_m3": pytest.approx(223.456),
        "energy_heat_kwh": 2500.0,
        "battery_v": pytest.approx(3.6),
        "flow_m3h": 1.5,
        "alarm_leak": False,
        "pulse_count": 512,
        "meter_serial": "4711",
    }


@pytest.mark.parametrize(
    ("profile", "words"),
    [
        ({"volume_liters": "x"}, "not in the vocabulary"),
        ({"volume_m3": {"unit": "l"}}, "give a path"),
        ({"volume_m3": {"path": "x", "unit": "gallon"}}, "cannot convert"),
        ({"volume_m3": {"path": "x", "kind": "gauge"}}, "is a counter, not a gauge"),
        ({"volume_m3": {"path": "x", "scale": "big"}}, "scale must be a number"),
        ({"volume_m3": {"path": "x", "colour": 1}}, "unknown keys"),
        ({"alarm_leak": {"path": "x", "scale": 2}}, "no unit or scale"),
        ({}, "at least one field"),
    ],
)
def test_bad_profiles_are_named(profile: dict[str, object], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        parse_profile(profile)


@pytest.mark.parametrize(
    ("decoded", "words"),
    [
        ({}, "has no metering"),
        ({"metering": {"water": []}}, "has no metering.water.total"),
        ({"metering": {"water": {"total": "lots"}}}, "not a number"),
        ({"metering": {"water": {"total": -5}}}, "outside the physical range"),
        ({"metering": {"water": {"total": float("nan")}}}, "not a finite number"),
    ],
)
def test_bad_decoded_output_is_a_decode_error(decoded: dict[str, object], words: str) -> None:
    mappings = parse_profile({"volume_m3": {"path": "metering.water.total", "unit": "l"}})
    with pytest.raises(DecodeError, match=words):
        map_decoded(decoded, mappings)
