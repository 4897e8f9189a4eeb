"""Rows of values decoded by msgspec into dicts, and when it declines (the caller's other way)."""

from __future__ import annotations

import msgspec

from storage.value_rows import decode_rows


def test_json_rows_become_dicts_in_field_set_order_with_values_as_json_has_them() -> None:
    names = ("volume_m3", "flow_m3h", "meter_serial", "valve_open")
    rows = decode_rows(names, '[[1.5,0,"A,1",true],[2.0,null,"B",false]]')
    assert rows == [
        {"volume_m3": 1.5, "flow_m3h": 0, "meter_serial": "A,1", "valve_open": True},
        {"volume_m3": 2.0, "flow_m3h": None, "meter_serial": "B", "valve_open": False},
    ]
    assert rows is not None and list(rows[0]) == list(names)
    assert [type(v) for v in rows[0].values()] == [float, int, str, bool]
    assert decode_rows(names, "[]") == []


def test_typed_rows_take_integers_as_floats_and_decline_anything_else() -> None:
    names, types = ("time", "power_w", "error_flags"), (int, float, int)
    packed = msgspec.msgpack.encode([[1, 95, 3], [2, 95.5, 4]])
    rows = decode_rows(names, packed, types=types, msgpack=True)
    assert rows == [
        {"time": 1, "power_w": 95.0, "error_flags": 3},
        {"time": 2, "power_w": 95.5, "error_flags": 4},
    ]
    assert rows is not None and type(rows[0]["power_w"]) is float
    for odd in ([[1, None, 3]], [[1, 95.0, 3.5]], [[1, "95", 3]], [[1, 95.0]]):
        assert decode_rows(names, msgspec.msgpack.encode(odd), types=types, msgpack=True) is None
    assert decode_rows(names, "[[1,95,3]]", types=types) == [
        {"time": 1, "power_w": 95.0, "error_flags": 3}
    ]


def test_names_that_cannot_be_fields_and_bodies_that_are_not_arrays_are_declined() -> None:
    assert decode_rows(("2nd_tariff_kwh",), "[[1.0]]") is None
    assert decode_rows(("__x",), "[[1.0]]") is None
    assert decode_rows(("a b",), "[[1.0]]") is None
    assert decode_rows(("volume_m3",), "[[1.0]") is None
    assert decode_rows(("volume_m3",), '{"volume_m3": 1}') is None
