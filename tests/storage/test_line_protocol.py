"""Line-protocol encoding and InfluxQL quoting, exactly and against a real influxd."""

from __future__ import annotations

import math
import random

import httpx
import pytest

from storage.line_protocol import (
    encode_line,
    escape_string,
    escape_tag_value,
    quote_ident,
    quote_literal,
)
from tests.influxd import Influxd


def test_encodes_a_point_with_sorted_tags_typed_fields_and_ns_time() -> None:
    line = encode_line(
        "electricity",
        {"meter": "M 1", "device": "em,1", "decoder": "acme", "site": ""},
        {"power_w": 95, "f_cnt": 7, "valve_open": False, "meter_serial": 'a"b\\c', "x": 1.5},
        1_700_000_000_123_456_789,
    )
    assert line == (
        "electricity,decoder=acme,device=em\\,1,meter=M\\ 1 "
        'f_cnt=7i,meter_serial="a\\"b\\\\c",power_w=95.0,valve_open=false,x=1.5 '
        "1700000000123456789"
    )


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        ("a b", "a\\ b"),
        ("a,b", "a\\,b"),
        ("k=v", "k\\=v"),
        ('q"uote', 'q"uote'),  # quotes are literal in tag values
        ("it's", "it's"),
        ("zähler-日本", "zähler-日本"),
        ("bs\\x", "bs\\x"),  # a backslash before an ordinary character stays as it is
    ],
)
def test_escapes_tag_values(value: str, encoded: str) -> None:
    assert escape_tag_value(value) == encoded


@pytest.mark.parametrize("value", ["", "a\nb", "a\rb", "end\\", "a\\ b", "a\\,b", "a\\=b"])
def test_refuses_tag_values_line_protocol_cannot_carry(value: str) -> None:
    with pytest.raises(ValueError, match="tag value"):
        escape_tag_value(value)


def test_field_types_follow_the_vocabulary() -> None:
    def fields(**values: object) -> str:
        return encode_line("m", {}, values, 1).split(" ")[1]  # type: ignore[arg-type]

    assert fields(battery_pct=95) == "battery_pct=95.0"  # float field: never 95i
    assert fields(error_flags=3.0) == "error_flags=3i"  # integer field
    assert fields(alarm_leak=1) == "alarm_leak=true"
    assert fields(custom=3) == "custom=3i"  # not in the vocabulary: its Python type
    with pytest.raises(ValueError, match="finite"):
        fields(power_w=math.nan)
    with pytest.raises(ValueError, match="64-bit"):
        fields(error_flags=2**64 - 1)
    with pytest.raises(ValueError, match="whole number"):
        fields(f_cnt=1.5)
    with pytest.raises(ValueError, match="time"):
        encode_line("m", {}, {"time": 1.0}, 1)
    with pytest.raises(ValueError, match="at least one field"):
        encode_line("m", {"device": "a"}, {}, 1)


def test_strings_and_queries_are_quoted() -> None:
    assert escape_string('say "hi"\\') == '"say \\"hi\\"\\\\"'
    assert quote_literal("x' OR 1=1 --") == "'x\\' OR 1=1 --'"
    assert quote_literal("a\\'b\nc") == "'a\\\\\\'b\\nc'"
    assert quote_ident('power_w" FROM "water') == '"power_w\\" FROM \\"water"'


def _random_texts(count: int) -> list[str]:
    alphabet = [*"ab z,=\"'\\\t{}()#;:/.-_*|", "ü", "€", "日", "🙂", "\u00a0", "\n"]
    rng = random.Random(13)
    return ["".join(rng.choices(alphabet, k=rng.randint(1, 12))) for _ in range(count)]


@pytest.mark.integration
def test_round_trip_through_influxd(influxd: Influxd) -> None:
    """Whatever the encoder accepts reads back identical, as tag, as string field, and by query."""
    db = influxd.new_database_url().rsplit("/", 1)[1]
    influxd.query(f"CREATE DATABASE {quote_ident(db)}")
    values: list[str] = []
    lines = []
    for text in dict.fromkeys(_random_texts(400)):
        try:
            tag = escape_tag_value(text)
        except ValueError:
            assert "\n" in text or "\r" in text or "\\" in text
            continue
        values.append(text)
        lines.append(f"m,device={tag} s={escape_string(text)},n={len(values)}i {len(values)}")
    assert len(values) > 200
    response = httpx.post(
        f"{influxd.base_url}/write",
        params={"db": db, "precision": "ns"},
        content="\n".join(lines).encode(),
    )
    assert response.status_code == 204, response.text
    result = influxd.query("SELECT * FROM m", db=db).json()["results"][0]
    rows = result["series"][0]["values"]  # columns: time, device, n, s
    assert [(row[1], row[3]) for row in rows] == [(v, v) for v in values]
    probes = values[::7]
    statements = ";".join(f"SELECT n FROM m WHERE device = {quote_literal(v)}" for v in probes)
    results = influxd.query(statements, db=db).json()["results"]
    assert [r["series"][0]["values"] for r in results] == [
        [[values.index(v) + 1, values.index(v) + 1]] for v in probes
    ]
