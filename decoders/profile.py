"""Zero-code devices: map a network server's own decoded output onto our vocabulary.

For a device a utility already decodes upstream (TTS ``decoded_payload``, ChirpStack
``object``), the device registry gives a mapping profile instead of a decoder:

```yaml
profile:
  volume_m3: {path: metering.water.total, unit: l}   # TTS normalized-style litres -> m³
  battery_pct: battery                              # shorthand: just the path
  alarm_leak: {path: water.leak, kind: state}         # kind, if given, must match the vocabulary
```

A path is dot-separated keys and list indices (``values.0.energy``). The value is converted from
``unit`` to the field's unit, multiplied by ``scale`` and shifted by ``offset``. The result is
checked like any decoder's output (declared field, type, finite, physical range).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from decoders.core import VOCABULARY, DecodeError, Kind, Values, check_values

__all__ = ["FieldMapping", "map_decoded", "parse_profile"]

# (source unit, our unit suffix) -> factor; units as they appear in vendor codecs' output.
_CONVERSIONS: dict[tuple[str, str], float] = {
    ("l", "m3"): 1e-3,
    ("m3", "m3"): 1.0,
    ("wh", "kwh"): 1e-3,
    ("kwh", "kwh"): 1.0,
    ("mwh", "kwh"): 1e3,
    ("gj", "kwh"): 1e9 / 3.6e6,
    ("mj", "kwh"): 1e6 / 3.6e6,
    ("w", "w"): 1.0,
    ("kw", "w"): 1e3,
    ("mv", "v"): 1e-3,
    ("v", "v"): 1.0,
    ("ma", "a"): 1e-3,
    ("lh", "m3h"): 1e-3,
    ("l/h", "m3h"): 1e-3,
    ("m3h", "m3h"): 1.0,
    ("c", "c"): 1.0,
    ("pct", "pct"): 1.0,
    ("%", "pct"): 1.0,
}


@dataclass(frozen=True)
class FieldMapping:
    """Where one of our fields is in the decoded output, and how to convert it."""

    field: str
    path: tuple[str, ...]
    factor: float = 1.0
    offset: float = 0.0


def parse_profile(profile: Mapping[str, Any]) -> tuple[FieldMapping, ...]:
    """Validate a registry profile; ValueError names the field and the problem."""
    mappings = []
    for name, spec in profile.items():
        if name not in VOCABULARY:
            raise ValueError(f"profile field {name!r} is not in the vocabulary")
        field = VOCABULARY[name]
        if isinstance(spec, str):
            spec = {"path": spec}
        if not isinstance(spec, Mapping) or not isinstance(spec.get("path"), str):
            raise ValueError(f"profile field {name}: give a path (e.g. metering.water.total)")
        unknown = set(spec) - {"path", "unit", "scale", "offset", "kind"}
        if unknown:
            raise ValueError(f"profile field {name}: unknown keys {sorted(unknown)}")
        kind = spec.get("kind")
        if kind is not None and kind != field.kind.value:
            raise ValueError(f"profile field {name} is a {field.kind.value}, not a {kind}")
        factor = 1.0
        if "unit" in spec:
            target = name.rsplit("_", 1)[-1]
            key = (str(spec["unit"]).lower().replace("³", "3"), target)
            if key not in _CONVERSIONS:
                raise ValueError(
                    f"profile field {name}: cannot convert {spec['unit']!r} to {target}"
                )
            factor = _CONVERSIONS[key]
        scale, offset = spec.get("scale", 1.0), spec.get("offset", 0.0)
        for what, number in (("scale", scale), ("offset", offset)):
            if isinstance(number, bool) or not isinstance(number, int | float):
                raise ValueError(f"profile field {name}: {what} must be a number")
        if field.type in (bool, str) and (factor, scale, offset) != (1.0, 1.0, 0.0):
            raise ValueError(f"profile field {name} is a {field.type.__name__}: no unit or scale")
        mappings.append(FieldMapping(name, tuple(spec["path"].split(".")), factor * scale, offset))
    if not mappings:
        raise ValueError("a profile maps at least one field")
    return tuple(mappings)


def map_decoded(decoded: Mapping[str, Any], mappings: tuple[FieldMapping, ...]) -> Values:
    """Our values from a network server's decoded output; DecodeError names what is missing."""
    values: Values = {}
    for mapping in mappings:
        value = _lookup(decoded, mapping.path)
        field = VOCABULARY[mapping.field]
        if field.type is bool:
            if isinstance(value, bool):
                values[mapping.field] = value
            elif isinstance(value, int | float) and value in (0, 1):
                values[mapping.field] = bool(value)
            else:
                raise DecodeError(f"{'.'.join(mapping.path)} is {value!r}, not true/false")
        elif field.type is str:
            values[mapping.field] = str(value)
        else:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise DecodeError(f"{'.'.join(mapping.path)} is {value!r}, not a number")
            number = value * mapping.factor + mapping.offset
            # ChirpStack sends every number as a float (512.0): counts are integers again
            values[mapping.field] = round(number) if field.type is int else float(number)
            if field.kind is Kind.COUNTER and field.type is int and number != round(number):
                raise DecodeError(f"{'.'.join(mapping.path)} = {value} is not a whole count")
    check_values(values, [m.field for m in mappings])
    return values


def _lookup(document: Any, path: tuple[str, ...]) -> Any:
    node = document
    for depth, key in enumerate(path):
        where = ".".join(path[: depth + 1])
        if isinstance(node, Mapping) and key in node:
            node = node[key]
        elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        else:
            raise DecodeError(f"the decoded payload has no {where}")
    return node
