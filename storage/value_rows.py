"""Rows of values, each an array in the order of a field set, decoded by msgspec into dicts.

A store reads a year of one meter as 35,040 such arrays (SQLite's ``vals``, InfluxDB's
``values``). msgspec decodes them, in C, into instances of a struct made for the field set
(``array_like``: the array's items are its fields in order), checking each value's type on the
way, and ``msgspec.structs.asdict`` turns each into a dict: about a third of the time of
building the dicts in Python (bench/queries.py).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import msgspec

__all__ = ["json_rows", "msgpack_rows"]

Rows = list[dict[str, Any]]


@lru_cache(maxsize=256)
def _row_type(names: tuple[str, ...], types: tuple[type, ...]) -> type | None:
    """A struct of these fields and types, decoded from an array; None where a name cannot be
    a struct field (not an identifier)."""
    try:
        return msgspec.defstruct("Row", list(zip(names, types, strict=True)), array_like=True)
    except (TypeError, ValueError, RuntimeError):  # RuntimeError: msgspec on "__x"
        return None


@lru_cache(maxsize=256)
def _json_decoder(names: tuple[str, ...]) -> msgspec.json.Decoder[list[Any]] | None:
    row = _row_type(names, (Any,) * len(names))
    return None if row is None else msgspec.json.Decoder(list[row])  # type: ignore[valid-type]


@lru_cache(maxsize=256)
def _msgpack_decoder(
    names: tuple[str, ...], types: tuple[type, ...]
) -> msgspec.msgpack.Decoder[list[Any]] | None:
    row = _row_type(names, types)
    return None if row is None else msgspec.msgpack.Decoder(list[row])  # type: ignore[valid-type]


def json_rows(names: tuple[str, ...], text: str | bytes) -> Rows | None:
    """A JSON array of arrays as dicts of ``names`` (values as JSON has them); None if a name
    cannot be a field, or the text is not such an array of arrays of at least that length."""
    decoder = _json_decoder(names)
    if decoder is None:
        return None
    try:
        return list(map(msgspec.structs.asdict, decoder.decode(text)))
    except msgspec.DecodeError:  # also a ValidationError: too short a row
        return None


def msgpack_rows(names: tuple[str, ...], types: tuple[type, ...], data: bytes) -> Rows | None:
    """A MessagePack array of arrays as dicts of ``names``, each value of its type in ``types``
    (an integer is taken for a float, as a float it is); None if a name cannot be a field, or
    any value is missing (nil) or of another type."""
    decoder = _msgpack_decoder(names, types)
    if decoder is None:
        return None
    try:
        return list(map(msgspec.structs.asdict, decoder.decode(data)))
    except msgspec.DecodeError:
        return None
