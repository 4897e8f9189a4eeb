"""OBIS parsing and unit conversion of decoders.sml."""

from __future__ import annotations

import pytest

from decoders.core import VOCABULARY, DecodeError
from decoders.sml import OBIS_FIELDS, obis_field, obis_value, parse_obis


@pytest.mark.parametrize(
    ("text", "groups"),
    [
        ("1-0:1.8.0*255", (1, 8, 0)),
        ("1.8.1", (1, 8, 1)),
        ("1-0:16.7.0", (16, 7, 0)),
        ("2.8", (2, 8, 0)),
        (" 1-0:32.7.0*255 ", (32, 7, 0)),
    ],
)
def test_parse_obis(text: str, groups: tuple[int, int, int]) -> None:
    assert parse_obis(text) == groups


@pytest.mark.parametrize("text", ["", "1-0:1", "x.8.0", "1.8.0.0.0", "1-0:1.8.0*"])
def test_parse_obis_rejects_junk(text: str) -> None:
    with pytest.raises(DecodeError, match="not an OBIS code"):
        parse_obis(text)


def test_every_mapped_field_is_in_the_vocabulary() -> None:
    for name, _unit in OBIS_FIELDS.values():
        assert name in VOCABULARY


def test_obis_field() -> None:
    assert obis_field((1, 8, 0)) == "energy_import_kwh"
    assert obis_field((2, 8, 2)) == "energy_export_t2_kwh"
    assert obis_field((96, 1, 0)) is None


@pytest.mark.parametrize(
    ("obis", "value", "unit", "want"),
    [
        ((1, 8, 0), 12442000, "Wh", ("energy_import_kwh", 12442.0)),
        ((1, 8, 0), 12442.5, "kWh", ("energy_import_kwh", 12442.5)),
        ((1, 8, 1), 552815, None, ("energy_import_t1_kwh", 552.815)),
        ((16, 7, 0), -230.5, "W", ("power_w", -230.5)),
        ((16, 7, 0), 1.5, "kW", ("power_w", 1500.0)),
        ((32, 7, 0), 231.2, "V", ("voltage_l1_v", 231.2)),
        ((14, 7, 0), 50.01, None, ("frequency_hz", 50.01)),
        ((3, 8, 0), 2500, "varh", ("energy_reactive_import_kvarh", 2.5)),
    ],
)
def test_obis_value_converts_units(
    obis: tuple[int, int, int], value: float, unit: str | None, want: tuple[str, float]
) -> None:
    name, got = obis_value(obis, value, unit)
    assert name == want[0]
    assert got == pytest.approx(want[1])


def test_obis_value_rejects_a_unit_that_does_not_fit() -> None:
    with pytest.raises(DecodeError, match=r"OBIS 1\.8\.0 in unit 'W', expected Wh"):
        obis_value((1, 8, 0), 5, "W")
    with pytest.raises(DecodeError, match="expected W"):
        obis_value((16, 7, 0), 5, "m3")


def test_obis_value_rejects_an_unmapped_register() -> None:
    with pytest.raises(DecodeError, match=r"OBIS 96\.1\.0 has no field"):
        obis_value((96, 1, 0), 1, None)
