"""InfluxDB line protocol: escape and encode points, and quote InfluxQL names and strings (pure).

Line protocol (the ``POST /write`` body) and InfluxQL (``/query``) escape differently, and InfluxDB
1.x cannot represent everything: a tag value keeps a backslash as it is (``\\\\`` is not an escape
there), so a backslash right before a space, comma or equals sign, or at the end of a tag value,
cannot be written; and no tag, key or name may contain a line break. The encoder refuses those
with ``ValueError`` instead of writing something that reads back different.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from functools import lru_cache
from math import isfinite

from decoders.core import VOCABULARY, Value

__all__ = [
    "INT64_MAX",
    "check_time",
    "encode_line",
    "escape_key",
    "escape_measurement",
    "escape_string",
    "escape_tag_value",
    "quote_ident",
    "quote_literal",
    "series_key",
]

INT64_MAX = 2**63 - 1
_SPECIAL = (" ", ",", "=")


@lru_cache(maxsize=1024)
def escape_measurement(name: str) -> str:
    """A measurement name: commas and spaces escaped."""
    _check_name("measurement", name)
    return name.replace(",", "\\,").replace(" ", "\\ ")


@lru_cache(maxsize=4096)
def escape_key(key: str) -> str:
    """A tag or field key: commas, equals signs and spaces escaped."""
    _check_name("key", key)
    if key == "time":
        raise ValueError("'time' cannot be a tag or field key in InfluxDB")
    return key.replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


@lru_cache(maxsize=65536)
def escape_tag_value(value: str) -> str:
    """A tag value: commas, equals signs and spaces escaped; unrepresentable values refused."""
    if not value:
        raise ValueError("a tag value cannot be empty")
    if "\n" in value or "\r" in value:
        raise ValueError(f"tag value {value!r} contains a line break")
    if value.endswith("\\") or any(f"\\{c}" in value for c in _SPECIAL):
        raise ValueError(
            f"tag value {value!r} has a backslash before a space, comma or '=' or at its end,"
            " which InfluxDB 1.x line protocol cannot represent"
        )
    return value.replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def escape_string(value: str) -> str:
    """A string field value, quoted: backslashes and double quotes escaped."""
    if "\\" in value or '"' in value:
        value = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{value}"'


def encode_field(name: str, value: Value) -> str:
    """One ``key=value`` pair, typed by the vocabulary so a field never changes type in InfluxDB.

    InfluxDB fixes a field's type on its first write and rejects others; a float field a decoder
    happens to report as the integer ``95`` must still be written as a float.
    """
    return _value_text(name, _field_spec(name)[1], value)


def _value_text(name: str, declared: type | None, value: Value) -> str:
    """A field value as line protocol, by its declared type (else its Python type)."""
    kind: type = declared or type(value)
    if isinstance(value, str) or kind is str:
        return escape_string(str(value))
    if isinstance(value, bool) or kind is bool:
        return "true" if value else "false"
    if kind is int:
        if not float(value).is_integer():
            raise ValueError(f"integer field {name}={value} is not a whole number")
        number = int(value)
        if not -INT64_MAX - 1 <= number <= INT64_MAX:
            raise ValueError(f"field {name}={number} does not fit InfluxDB's 64-bit integers")
        return f"{number}i"
    number_f = float(value)
    if not math.isfinite(number_f):
        raise ValueError(f"field {name}={value} is not a finite number")
    return repr(number_f)


# The common case of each declared type first (a float field given a finite float, an integer
# field an int); every other combination goes the general way, ``_value_text``.
def _float_text(name: str, value: Value) -> str:
    if type(value) is float and isfinite(value):
        return repr(value)
    return _value_text(name, float, value)


def _int_text(name: str, value: Value) -> str:
    if type(value) is int and -INT64_MAX - 1 <= value <= INT64_MAX:
        return f"{value}i"
    return _value_text(name, int, value)


def _bool_text(name: str, value: Value) -> str:
    return _value_text(name, bool, value)


def _str_text(name: str, value: Value) -> str:
    return escape_string(str(value))


def _general_text(name: str, value: Value) -> str:
    return _value_text(name, None, value)


_TEXT: dict[type | None, Callable[[str, Value], str]] = {
    float: _float_text,
    int: _int_text,
    bool: _bool_text,
    str: _str_text,
}


@lru_cache(maxsize=4096)
def _field_spec(name: str) -> tuple[str, type | None]:
    spec = VOCABULARY.get(name)
    return escape_key(name), (spec.type if spec is not None else None)


# How to write a field's value: by its declared type, or None (outside the vocabulary: by the
# Python type of each value).
FieldLayout = tuple[tuple[str, str, Callable[[str, Value], str] | None], ...]


@lru_cache(maxsize=4096)
def _field_layout(names: tuple[str, ...]) -> FieldLayout:
    """A point's fields in line order: name, ``key=`` and how to write its value (points of one
    decoder share their field names, so this is worked out once per decoder)."""
    layout = []
    for name in sorted(names):
        key, declared = _field_spec(name)
        layout.append((name, f"{key}=", _TEXT.get(declared) if declared is not None else None))
    return tuple(layout)


@lru_cache(maxsize=2**17)
def series_key(measurement: str, tags: tuple[tuple[str, str], ...]) -> str:
    """Measurement and tags sorted by key, empty values left out (cached: a device's points
    share their series)."""
    head = escape_measurement(measurement)
    for key, value in sorted(tags):
        if value:
            head += f",{escape_key(key)}={escape_tag_value(value)}"
    return head


# InfluxDB's time range (models.MinNanoTime / MaxNanoTime of InfluxDB 1.x: int64 minus 2).
_MIN_NS = -(2**63) + 2
_MAX_NS = 2**63 - 2


def check_time(time_ns: int) -> None:
    """ValueError unless InfluxDB can store a point at ``time_ns``."""
    if not _MIN_NS <= time_ns <= _MAX_NS:
        raise ValueError(f"time {time_ns} ns is outside InfluxDB's range (years 1677 to 2262)")


def encode_line(
    measurement: str, tags: Mapping[str, str], fields: Mapping[str, Value], time_ns: int
) -> str:
    """One line: measurement, sorted tags (empty values left out), sorted fields, time in ns."""
    if not _MIN_NS <= time_ns <= _MAX_NS:
        check_time(time_ns)
    if not fields:
        raise ValueError(f"a {measurement} point needs at least one field")
    head = series_key(measurement, tuple(tags.items()))
    parts = []
    for name, key, text in _field_layout(tuple(fields)):
        value = fields[name]
        # the common cases inline: a float field given a finite float, an integer field an int
        if text is _float_text and type(value) is float and isfinite(value):
            parts.append(key + repr(value))
        elif text is _int_text and type(value) is int and -INT64_MAX - 1 <= value <= INT64_MAX:
            parts.append(f"{key}{value}i")
        else:
            parts.append(key + (text or _TEXT.get(type(value), _general_text))(name, value))
    return f"{head} {','.join(parts)} {time_ns}"


def quote_ident(name: str) -> str:
    """An InfluxQL identifier (measurement, field or tag key) in double quotes, escaped."""
    return '"' + _escape_query(name).replace('"', '\\"') + '"'


def quote_literal(value: str) -> str:
    """An InfluxQL string literal in single quotes, escaped: data can never become syntax."""
    return "'" + _escape_query(value).replace("'", "\\'") + "'"


def _escape_query(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _check_name(what: str, name: str) -> None:
    if not name:
        raise ValueError(f"a {what} cannot be empty")
    if "\n" in name or "\r" in name or "\\" in name:
        raise ValueError(f"{what} {name!r} contains a line break or backslash")
