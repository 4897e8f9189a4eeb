"""A device's readings in InfluxDB (pure): the InfluxQL statement, and its result as columns.

The result comes as InfluxDB answers ``/query``: a series per measurement, ``columns`` and
``values`` row by row, in MessagePack (or JSON, from servers that answer only that), the rows
still encoded (``InfluxTarget.query_series``). A year of one meter's 15-minute readings is
35,040 rows, so the usual series (every value of its declared type, one row per instant) is
decoded by msgspec straight into typed dicts (``storage/value_rows.py``); any other is decoded
as it is, then typed value by value and merged.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from operator import methodcaller
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from decoders.core import MEDIA, Value
from storage.base import ReadingTable
from storage.influx_http import RawSeries
from storage.influx_schema import FieldTypes
from storage.line_protocol import quote_ident, quote_literal
from storage.value_rows import decode_rows

__all__ = ["reading_statement", "reading_table", "result_columns"]

_MEDIA_REGEX = f"/^({'|'.join(MEDIA)})$/"
# InfluxDB's field types, and the Python type its values decode to
_TYPES: dict[str, type] = {"float": float, "integer": int, "boolean": bool, "string": str}
_TYPED: dict[str, Callable[[Any], Value]] = {"float": float, "integer": int, "boolean": bool}


def reading_statement(
    device: str, start_ns: int, end_ns: int, fields: Sequence[str], limit: int
) -> str:
    """The statement for a device's readings in [start, end): every medium at once (a series
    per medium, each up to ``limit`` rows)."""
    columns = ", ".join(quote_ident(f) for f in fields) if fields else "*::field"
    where = f" WHERE device = {quote_literal(device)} AND time >= {start_ns} AND time < {end_ns}"
    return f"SELECT {columns} FROM {_MEDIA_REGEX}{where} ORDER BY time ASC LIMIT {int(limit)}"


def result_columns(series: Sequence[RawSeries]) -> dict[str, set[str]]:
    """The columns of each measurement in query results (to see whether field types are known)."""
    out: dict[str, set[str]] = {}
    for one in series:
        out.setdefault(one.name, set()).update(one.columns)
    return out


_Part = tuple[npt.NDArray[np.int64], str, list[dict[str, Value]]]


def reading_table(
    series: Sequence[RawSeries], msgpack: bool, types: FieldTypes, limit: int
) -> ReadingTable:
    """Rows of ``reading_statement`` (MessagePack, else JSON), merged per (time, measurement),
    oldest first.

    Without GROUP BY, each measurement is one series in time order, and a live and a history
    point at the same instant are neighbouring rows: merging those is a look at the last row.
    """
    parts: list[_Part] = []
    for one in series:
        if not one.values:  # no rows
            continue
        known = types.get(one.name, {})
        part = _plain(one, msgpack, known)
        if part is None:
            rows = (msgspec.msgpack.decode if msgpack else msgspec.json.decode)(one.values)
            part = _merged(one.name, one.columns, rows, known)
        if len(part[0]):
            parts.append(part)
    if not parts:
        return ReadingTable.empty()
    if len(parts) == 1:
        times, measurement, values = parts[0]
        values = values[:limit]
        return ReadingTable(times[:limit], [measurement] * len(values), values)
    all_times = np.concatenate([times for times, _, _ in parts])
    names = [m for times, m, _ in parts for _ in range(len(times))]
    all_values = [v for _, _, values in parts for v in values]
    ranks = {m: rank for rank, m in enumerate(sorted({m for _, m, _ in parts}))}
    order = np.lexsort((np.array([ranks[m] for m in names]), all_times))[:limit]
    picked = order.tolist()
    return ReadingTable(
        all_times[order], [names[i] for i in picked], [all_values[i] for i in picked]
    )


def _plain(one: RawSeries, msgpack: bool, known: Mapping[str, str]) -> _Part | None:
    """The usual series, row by row as it came: ``time`` first, then fields in name order,
    each of its declared type in every row (none missing; JSON's 95 for the float 95.0 is
    taken as a float), one row per instant. None for any other series."""
    columns = one.columns
    fields = columns[1:]
    if columns[0] != "time" or fields != sorted(fields):
        return None
    if not all(known.get(f) in _TYPES for f in fields):
        return None
    kinds = (int, *(_TYPES[known[f]] for f in fields))
    rows = decode_rows(tuple(columns), one.values, types=kinds, msgpack=msgpack)
    if rows is None:
        return None
    times = np.fromiter(map(methodcaller("pop", "time"), rows), np.int64, len(rows))
    if (np.diff(times) <= 0).any():
        return None
    return times, one.name, rows


def _merged(
    measurement: str, columns: list[str], rows: Sequence[Sequence[Any]], known: Mapping[str, str]
) -> _Part:
    """Any series: values typed as declared, nulls left out, rows of one instant merged."""
    table = list(zip(*rows, strict=True))  # column by column
    fields = [n for n in columns if n in known]
    typed = [_typed_column(known[n], table[columns.index(n)]) for n in fields]
    in_order = fields == sorted(fields)
    times: list[int] = []
    values: list[dict[str, Value]] = []
    for time_ns, row in zip(table[columns.index("time")], zip(*typed, strict=True), strict=True):
        found = {name: v for name, v in zip(fields, row, strict=True) if v is not None}
        if not found:
            continue
        if times and time_ns == times[-1]:
            values[-1] = _sorted({**values[-1], **found})
        else:
            times.append(time_ns)
            values.append(found if in_order else _sorted(found))
    return np.array(times, np.int64), measurement, values


def _typed_column(kind: str, column: Sequence[Any]) -> Sequence[Value | None]:
    """A column's values with their type back: JSON prints the float 95.0 as 95; strings,
    booleans and integers arrive as such."""
    if kind == "float":
        return [None if v is None else float(v) for v in column]
    typed = _TYPED.get(kind, str)
    if all(v is None or type(v) is typed for v in column):
        return column
    return [None if v is None else typed(v) for v in column]


def _sorted(values: dict[str, Value]) -> dict[str, Value]:
    return dict(sorted(values.items()))
