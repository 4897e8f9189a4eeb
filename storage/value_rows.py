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

__all__ = ["decode_rows"]

Rows = list[dict[str, Any]]


@lru_cache(maxsize=256)
def _decoder(
    names: tuple[str, ...], types: tuple[Any, ...], msgpack: bool
) -> msgspec.json.Decoder[list[Any]] | msgspec.msgpack.Decoder[list[Any]] | None:
    """A decoder of arrays into a struct of these fields and types; None where a name cannot
    be a struct field (not an identifier)."""
    try:
        # gc=False: a row holds numbers, strings and booleans only, never a reference cycle
        fields = list(zip(names, types, strict=True))
        row = msgspec.defstruct("Row", fields, array_like=True, gc=False)
    except (TypeError, ValueError, RuntimeError):  # RuntimeError: msgspec on "__x"
        return None
    rows = list[row]  # type: ignore[valid-type]
    return msgspec.msgpack.Decoder(rows) if msgpack else msgspec.json.Decoder(rows)


def decode_rows(
    names: tuple[str, ...],
    data: str | bytes,
    *,
    types: tuple[Any, ...] | None = None,
    msgpack: bool = False,
) -> Rows | None:
    """A JSON (or MessagePack) array of arrays as dicts of ``names``, each value of its type
    in ``types`` (``float`` takes an integer as a float; default: any value as it is).

    None if a name cannot be a field, or a row is too short or has a value of another type
    (also a null, unless its type allows None): the caller then reads the rows another way.
    """
    decoder = _decoder(names, types or (Any,) * len(names), msgpack)
    if decoder is None:
        return None
    try:
        if isinstance(decoder, msgspec.msgpack.Decoder):
            found = decoder.decode(data.encode() if isinstance(data, str) else data)
        else:
            found = decoder.decode(data)
        return list(map(msgspec.structs.asdict, found))
    except msgspec.DecodeError:  # ValidationError included
        return None
