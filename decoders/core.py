"""Core types of the decoder layer: uplinks, readings, the closed field vocabulary, decoders.

Pure: standard library only. Every decoder module in ``decoders/devices`` builds on these.
"""

from __future__ import annotations

import enum
import functools
import math
import re
import struct
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any, Generic, NamedTuple, TypeVar

__all__ = [
    "MEDIA",
    "PULSE_FIELDS",
    "PULSE_PARAMS",
    "UNITS",
    "VOCABULARY",
    "DecodeError",
    "Decoder",
    "Example",
    "Field",
    "Kind",
    "Output",
    "Param",
    "ParamError",
    "Reading",
    "Register",
    "RegistersFn",
    "Uplink",
    "Value",
    "Values",
    "check_values",
    "meter_key",
    "pulse_registers",
    "pulse_registers_fn",
    "pulse_values",
    "readings_to_json",
    "registers_for",
    "unpack",
    "validate_params",
]

Value = float | int | bool | str
Values = dict[str, Value]

# The media a device measures; each is one measurement in the store.
MEDIA = ("electricity", "water", "heat", "gas")


class DecodeError(ValueError):
    """A payload the decoder cannot turn into readings; says where and what was expected."""

    def __init__(self, message: str, *, offset: int | None = None) -> None:
        self.offset = offset
        super().__init__(message if offset is None else f"{message} (at byte {offset})")


class Kind(enum.Enum):
    """How a field behaves over time (Home Assistant: TOTAL_INCREASING / MEASUREMENT)."""

    COUNTER = "counter"  # cumulative register; metering/ differentiates it into consumption
    GAUGE = "gauge"  # instantaneous value
    STATE = "state"  # flag, status word or identifier


# Unit suffix -> unit symbol. A field name ends in one of these, or is unitless (a state).
UNITS: dict[str, str] = {
    "kwh": "kWh",
    "kvarh": "kvarh",
    "w": "W",
    "var": "var",
    "v": "V",
    "a": "A",
    "hz": "Hz",
    "m3": "m³",
    "m3h": "m³/h",
    "l": "L",
    "c": "°C",
    "k": "K",
    "pct": "%",
    "dbm": "dBm",
    "db": "dB",
    "s": "s",
    "h": "h",
    "d": "d",
}


@dataclass(frozen=True)
class Field:
    """One entry of the closed vocabulary: name, kind, value type and physical range."""

    name: str
    kind: Kind
    type: type = float
    low: float = -math.inf
    high: float = math.inf
    description: str = ""

    @property
    def unit(self) -> str | None:
        """The unit symbol the name's suffix stands for, or None for a unitless state."""
        suffix = self.name.rsplit("_", 1)[-1]
        return UNITS.get(suffix) if "_" in self.name else None


_C, _G, _S = Kind.COUNTER, Kind.GAUGE, Kind.STATE
_ENERGY_MAX = 1e10  # kWh: 10 TWh, beyond any single meter's register
_VOLUME_MAX = 1e9  # m³

# The closed vocabulary. A decoder may only emit these names; adding a quantity means adding it
# here, with its kind and the range a real meter can report (values outside are rejected).
_FIELDS = (
    # electricity
    Field("energy_import_kwh", _C, float, 0, _ENERGY_MAX, "active energy drawn from the grid (A+)"),
    Field("energy_export_kwh", _C, float, 0, _ENERGY_MAX, "active energy fed into the grid (A-)"),
    Field("energy_import_t1_kwh", _C, float, 0, _ENERGY_MAX, "A+ in tariff 1"),
    Field("energy_import_t2_kwh", _C, float, 0, _ENERGY_MAX, "A+ in tariff 2"),
    Field("energy_export_t1_kwh", _C, float, 0, _ENERGY_MAX, "A- in tariff 1"),
    Field("energy_export_t2_kwh", _C, float, 0, _ENERGY_MAX, "A- in tariff 2"),
    Field("energy_reactive_import_kvarh", _C, float, 0, _ENERGY_MAX, "reactive energy R+"),
    Field("energy_reactive_export_kvarh", _C, float, 0, _ENERGY_MAX, "reactive energy R-"),
    Field("power_w", _G, float, -1e8, 1e8, "active power (negative: export)"),
    Field("power_l1_w", _G, float, -1e8, 1e8, "active power, phase L1"),
    Field("power_l2_w", _G, float, -1e8, 1e8, "active power, phase L2"),
    Field("power_l3_w", _G, float, -1e8, 1e8, "active power, phase L3"),
    Field("power_reactive_var", _G, float, -1e8, 1e8, "reactive power"),
    Field("voltage_l1_v", _G, float, 0, 1e6, "voltage L1-N"),
    Field("voltage_l2_v", _G, float, 0, 1e6, "voltage L2-N"),
    Field("voltage_l3_v", _G, float, 0, 1e6, "voltage L3-N"),
    Field("current_l1_a", _G, float, -1e5, 1e5, "current L1"),
    Field("current_l2_a", _G, float, -1e5, 1e5, "current L2"),
    Field("current_l3_a", _G, float, -1e5, 1e5, "current L3"),
    Field("frequency_hz", _G, float, 0, 1000, "grid frequency"),
    # heat and cooling
    Field("energy_heat_kwh", _C, float, 0, _ENERGY_MAX, "heat energy delivered"),
    Field("energy_cooling_kwh", _C, float, 0, _ENERGY_MAX, "cooling energy delivered"),
    Field("flow_temp_c", _G, float, -50, 250, "flow (supply) temperature"),
    Field("return_temp_c", _G, float, -50, 250, "return temperature"),
    Field("temp_diff_k", _G, float, -300, 300, "flow minus return temperature"),
    # water, gas, and the volume registers of heat meters
    Field("volume_m3", _C, float, 0, _VOLUME_MAX, "volume register (forward)"),
    Field("volume_reverse_m3", _C, float, 0, _VOLUME_MAX, "volume that flowed backwards"),
    Field("flow_m3h", _G, float, -1e6, 1e6, "volume flow (negative: backwards)"),
    Field("flow_max_m3h", _G, float, -1e6, 1e6, "highest flow in the reporting period"),
    Field("flow_min_m3h", _G, float, -1e6, 1e6, "lowest flow in the reporting period"),
    # pulse inputs, before the device registry's factor turns them into a medium's register
    Field("pulse_count", _C, int, 0, 2**64, "pulses counted on input 1"),
    Field("pulse_count_2", _C, int, 0, 2**64, "pulses counted on input 2"),
    # ambient and device
    Field("temperature_c", _G, float, -60, 150, "ambient or medium temperature"),
    Field("battery_pct", _G, float, 0, 100, "battery level"),
    Field("battery_v", _G, float, 0, 50, "battery voltage"),
    Field("battery_life_d", _G, float, 0, 1e5, "remaining battery life"),
    Field("operating_time_h", _C, float, 0, 1e7, "meter operating hours"),
    Field("error_time_h", _C, float, 0, 1e7, "hours the meter spent in an error state"),
    # states: the common alarm set every decoder maps its device's flags onto
    Field("alarm_leak", _S, bool, description="continuous flow / leak detected"),
    Field("alarm_burst", _S, bool, description="burst pipe: flow far above nominal"),
    Field("alarm_backflow", _S, bool, description="water flowing backwards"),
    Field("alarm_tamper", _S, bool, description="magnetic or mechanical tampering, removal"),
    Field("alarm_dry", _S, bool, description="meter runs dry (air in the pipe)"),
    Field("alarm_low_battery", _S, bool, description="battery low"),
    Field("alarm_meter_error", _S, bool, description="the meter reports an internal error"),
    Field("error_flags", _S, int, 0, 2**64, "the meter's own status/error word (M-Bus FD 17)"),
    Field("valve_open", _S, bool, description="valve state"),
    Field("meter_serial", _S, str, description="meter serial / fabrication number"),
    # radio link, written by ingest (not by decoders) into the `radio` measurement
    Field("rssi_dbm", _G, float, -200, 50, "best gateway RSSI"),
    Field("snr_db", _G, float, -50, 50, "best gateway SNR"),
    Field("spreading_factor", _G, int, 5, 12, "LoRa spreading factor"),
    Field("gateway_count", _G, int, 0, 1000, "gateways that received the frame"),
    Field("f_cnt", _S, int, 0, 2**32, "LoRaWAN uplink frame counter"),
    Field("channel_frequency_hz", _G, float, 0, 1e10, "uplink radio frequency"),
    Field("airtime_s", _G, float, 0, 60, "air time consumed by the frame"),
)

VOCABULARY: dict[str, Field] = {f.name: f for f in _FIELDS}

_NAME = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
_HEX = re.compile(r"[0-9a-fA-F]*")


@dataclass(frozen=True)
class Uplink:
    """What a decoder sees of one uplink: port, payload bytes and the device's parameters.

    ``received_at`` is the network server's receive time (for payloads that carry relative
    times); ``params`` come from the device registry (pulse factor, AES key, ...).
    """

    f_port: int
    payload: bytes
    received_at: datetime | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    meter_tz: tzinfo = UTC  # the zone a meter's own clock runs in (registry: meter_timezone)

    def meter_time(self, local: datetime) -> datetime:
        """A meter's zone-less clock reading as an aware UTC time."""
        if local.tzinfo is None:
            return _zoned_as_utc(local, local.fold, self.meter_tz)
        return local.astimezone(UTC)


@functools.lru_cache(maxsize=4096)
def _zoned_as_utc(local: datetime, fold: int, zone: tzinfo) -> datetime:
    """A naive wall-clock time in ``zone`` as UTC: a memo of ``Uplink.meter_time`` (pure; a
    meter's history repeats the same dates frame after frame, and ``replace`` costs as much as
    a whole record). ``fold`` is in the key because naive datetimes compare equal across it."""
    aware = local.replace(tzinfo=zone)
    return aware if zone is UTC else aware.astimezone(UTC)  # UTC: already (astimezone: same)


class Reading(NamedTuple):
    """Values measured at one instant; ``time`` None means the uplink's receive time.

    A bridge decoder (wireless M-Bus over LoRaWAN) returns readings of several meters: each
    names its meter's wM-Bus address (``meter``, see ``meter_key``); a telegram it could not
    decode (no key for that meter, wrong key) is a reading without values and with ``error``,
    so the meter is still seen. Readings of a device's own decoder leave both None.

    Immutable (a named tuple, like ``mbus.Record``: a frame with history gives a reading per
    stored value, and a tuple is built about three times faster than a frozen dataclass);
    ``reading._replace(time=...)`` makes a changed copy.
    """

    values: Values
    time: datetime | None = None
    meter: str | None = None
    error: str | None = None


def meter_key(manufacturer: str, serial: str, version: int, device_type: int) -> str:
    """A wM-Bus meter's address as one key: ``KAM-12345678-1B-16`` (manufacturer, 8-digit
    identification, version and device type in hex), as the device registry lists meters."""
    return f"{manufacturer.upper()}-{serial}-{version:02X}-{device_type:02X}"


Output = Values | Sequence[Reading]


@dataclass(frozen=True)
class Register:
    """What metering needs to know of a counter field to turn its values into consumption.

    ``rollover``: the value at which the register wraps back to 0, in the field's unit (an
    8-digit BCD volume register with 3 decimals wraps at 100,000 m³; a 32-bit pulse counter at
    2**32), or None when it does not wrap in practice (64-bit counters, IEEE floats).
    ``delta``: the value counts only since the device's previous report (the device clears its
    counter after each report) and is summed, not differenced.
    """

    rollover: float | None = None
    delta: bool = False

    def __post_init__(self) -> None:
        if self.rollover is not None and not (math.isfinite(self.rollover) and self.rollover > 0):
            raise ValueError(f"register rollover must be a positive number, got {self.rollover}")


T = TypeVar("T", str, int, float, bool, tuple[str, ...], dict[str, Any])


class ParamError(ValueError):
    """A device parameter the decoder does not know, or of the wrong type or range (one line)."""


@dataclass(frozen=True)
class Param(Generic[T]):
    """A registry parameter a decoder reads: name, type, default (None: required when used).

    Numbers are checked against ``low``..``high``, text against ``choices`` or, with
    ``hex_bytes``, as that many bytes in hex digits (spaces allowed); ``tuple`` is a list of text,
    ``dict`` a mapping (its structure is the decoder's to check).
    """

    name: str
    type: type[T]
    default: T | None = None
    description: str = ""
    _: KW_ONLY
    choices: tuple[str, ...] = ()
    low: float = -math.inf
    high: float = math.inf
    hex_bytes: int = 0

    def check(self, value: object) -> T:
        """The value in this parameter's type; ParamError (one line) if it is not usable."""
        want, name = self.type, self.name
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if want is dict and isinstance(value, Mapping):
            value = dict(value)
        if want is tuple and isinstance(value, list | tuple):
            value = tuple(str(v) if isinstance(v, int | float | str) else v for v in value)
            if not all(isinstance(v, str) for v in value):
                raise ParamError(f"param {name} must be a list of text, got {value!r}")
        if not isinstance(value, want) or (want is not bool and isinstance(value, bool)):
            raise ParamError(f"param {name} must be {want.__name__}, got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ParamError(f"param {name} must be a finite number, got {value}")
        if isinstance(value, int | float) and not self.low <= value <= self.high:
            raise ParamError(f"param {name}={value} outside [{self.low}, {self.high}]")
        if isinstance(value, str) and self.choices and value not in self.choices:
            raise ParamError(f"param {name}={value!r}: use one of {', '.join(self.choices)}")
        if isinstance(value, str) and self.hex_bytes:
            digits = value.replace(" ", "")
            if len(digits) != 2 * self.hex_bytes or not _HEX.fullmatch(digits):
                raise ParamError(f"param {name} must be {2 * self.hex_bytes} hex digits")
        return value  # checked against self.type above

    def get(self, params: Mapping[str, Any]) -> T:
        """The device's value (or the default), checked; DecodeError when missing or unusable."""
        value = params.get(self.name, self.default)
        if value is None:
            raise DecodeError(f"the device registry gives no {self.name} ({self.description})")
        try:
            return self.check(value)
        except ParamError as exc:
            raise DecodeError(str(exc)) from None


# A device's parameters (registry ``params``) -> the counters whose behaviour they decide.
RegistersFn = Callable[[Mapping[str, Any]], Mapping[str, Register]]


@dataclass(frozen=True)
class Example:
    """A payload and what it must decode to (``expect``) or the error it must raise."""

    title: str
    f_port: int
    hex: str
    expect: Values | list[dict[str, Any]] | None = None
    error: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    received_at: str | None = None

    @property
    def payload(self) -> bytes:
        return bytes.fromhex(self.hex.replace(" ", ""))


@dataclass(frozen=True)
class Decoder:
    """A device decoder: the pure ``decode`` function plus what it emits and its examples."""

    vendor: str
    model: str
    decode: Callable[[Uplink], Output]
    fields: tuple[str, ...]
    examples: tuple[Example, ...]
    medium: str | None = None  # None: the device registry says (pulse counters)
    lorawan_ids: tuple[str, ...] = ()  # TTS Device Repository "brand_id/model_id"
    description: str = ""
    # Counter fields -> how the device's register behaves (width/rollover, cumulative or delta).
    # Every counter field is declared here; what the device's params decide (a pulse register's
    # rollover in m³ from the pulse factor, a counter mode) ``registers_fn`` refines: see
    # ``registers_for``.
    registers: Mapping[str, Register] = field(default_factory=dict)
    registers_fn: RegistersFn | None = None
    params: tuple[Param[Any], ...] = ()  # the registry params the decoder reads
    id: str = ""  # set by the registry from the module name

    def __post_init__(self) -> None:
        unknown = [name for name in self.fields if name not in VOCABULARY]
        if unknown:
            raise ValueError(f"{self.vendor} {self.model}: fields not in the vocabulary: {unknown}")
        stray = [name for name in self.registers if name not in self.fields]
        stray += [
            n for n in self.registers if n in VOCABULARY and VOCABULARY[n].kind != Kind.COUNTER
        ]
        if stray:
            raise ValueError(
                f"{self.vendor} {self.model}: registers for non-counter fields: {stray}"
            )
        if self.medium is not None and self.medium not in MEDIA:
            raise ValueError(f"{self.vendor} {self.model}: unknown medium {self.medium!r}")

    def register(self, name: str) -> Register:
        """How the counter ``name`` behaves for any device (params: see ``registers_for``)."""
        return self.registers.get(name, _CUMULATIVE)

    def readings(self, uplink: Uplink) -> list[Reading]:
        """Decode and check: declared fields only, right types, finite and in physical range."""
        try:
            output = self.decode(uplink)
        except DecodeError:
            raise
        except (struct.error, IndexError, KeyError, ValueError, ZeroDivisionError) as exc:
            raise DecodeError(f"malformed payload: {type(exc).__name__}: {exc}") from exc
        readings = [Reading(output)] if isinstance(output, dict) else list(output)
        allowed = self.allowed
        for reading in readings:
            check_values(reading.values, allowed)
        return readings

    @functools.cached_property
    def allowed(self) -> frozenset[str]:
        """``fields`` as a set, for ``check_values`` on every reading."""
        return frozenset(self.fields)


_CUMULATIVE = Register()


def validate_params(decoder: Decoder, params: Mapping[str, Any]) -> dict[str, Any]:
    """A device's registry params checked against what the decoder declares: the same params,
    numbers as floats where a float is declared; ParamError (one line) for an unknown name or a
    value of the wrong type or range."""
    declared = {p.name: p for p in decoder.params}
    checked: dict[str, Any] = {}
    for name, value in params.items():
        if name not in declared:
            known = ", ".join(sorted(declared)) or "none"
            raise ParamError(f"decoder {decoder.id or decoder.model} has no param {name!r} "
                             f"(it takes: {known})")  # fmt: skip
        checked[name] = declared[name].check(value)
    return checked


def registers_for(decoder: Decoder, params: Mapping[str, Any]) -> dict[str, Register]:
    """How each counter field behaves for one device: the decoder's declarations, refined by
    ``registers_fn`` with the device's registry params (e.g. Netvox R718H ``counter_mode``).

    A field missing here is a plain cumulative register without known rollover.
    """
    found = dict(decoder.registers)
    if decoder.registers_fn is not None:
        found.update(decoder.registers_fn(params))
    return found


def check_values(values: Values, allowed: Collection[str]) -> None:
    """Raise DecodeError unless every value is an allowed field of the right type and range."""
    for name, value in values.items():
        if name not in allowed:
            raise DecodeError(f"decoder emitted undeclared field {name!r}")
        kind, low, high = _CHECKS[name]
        # the usual cases first: an int or float (not a bool), finite and in range; a flag
        if kind is float:
            if (
                (type(value) is float or type(value) is int)
                and low <= value <= high
                and math.isfinite(value)
            ):
                continue
        elif type(value) is kind:  # bool or str
            continue
        _check_value(name, value, VOCABULARY[name])


def _check_value(name: str, value: Value, spec: Field) -> None:
    if spec.type is bool:
        if not isinstance(value, bool):
            raise DecodeError(f"{name} must be true/false, got {value!r}")
        return
    if spec.type is str:
        if not isinstance(value, str):
            raise DecodeError(f"{name} must be text, got {value!r}")
        return
    if isinstance(value, bool) or not isinstance(value, _NUMBERS):
        raise DecodeError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise DecodeError(f"{name} is not a finite number ({value})")
    if not spec.low <= value <= spec.high:
        raise DecodeError(f"{name}={value} outside the physical range [{spec.low}, {spec.high}]")


# Per field: float for the numeric types (int or float), else the type; and the range.
_CHECKS = {f.name: (float if f.type in (int, float) else f.type, f.low, f.high) for f in _FIELDS}
_NUMBERS = (int, float)


def readings_to_json(readings: Sequence[Reading]) -> list[dict[str, Any]]:
    """Readings as JSON-ready dicts: ``time`` (RFC 3339 or None) plus the values."""
    return [
        {
            "time": None
            if r.time is None
            else r.time.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            **({} if r.meter is None else {"meter": r.meter}),
            **({} if r.error is None else {"error": r.error}),
            **r.values,
        }
        for r in readings
    ]


def unpack(fmt: str, payload: bytes, offset: int = 0) -> tuple[Any, ...]:
    """``struct.unpack_from`` that raises DecodeError naming the length needed."""
    need = struct.calcsize(fmt)
    if len(payload) < offset + need:
        raise DecodeError(
            f"payload length {len(payload)} bytes, need {offset + need}", offset=len(payload)
        )
    return struct.unpack_from(fmt, payload, offset)


_PULSE_TARGETS = {
    # medium -> (field, base unit the factor is expressed in -> register unit divisor)
    "water": ("volume_m3", {"l": 1000.0, "m3": 1.0}),
    "gas": ("volume_m3", {"l": 1000.0, "m3": 1.0}),
    "heat": ("energy_heat_kwh", {"wh": 1000.0, "kwh": 1.0}),
    "electricity": ("energy_import_kwh", {"wh": 1000.0, "kwh": 1.0}),
}


_DEFAULT_UNIT = {"volume_m3": "l", "energy_heat_kwh": "wh", "energy_import_kwh": "wh"}
# What a pulse counter reads from the registry (pulse_values).
PULSE_PARAMS: tuple[Param[Any], ...] = (
    Param("medium", str, None, "what the pulses count", choices=tuple(_PULSE_TARGETS)),
    Param("pulse_factor", float, None, "register units per pulse (pulse_unit)", low=1e-9, high=1e9),
    Param(
        "pulse_unit",
        str,
        None,
        "unit of pulse_factor: l or m3 (water, gas), wh or kwh",
        choices=("l", "m3", "wh", "kwh", "L", "Wh", "kWh"),
    ),
    Param(
        "pulse_offset", float, 0.0, "the register's reading at pulse count 0", low=-1e12, high=1e12
    ),
)

# What a pulse counter may emit through pulse_values: the count and every medium's register.
PULSE_FIELDS = ("pulse_count", *dict.fromkeys(target for target, _ in _PULSE_TARGETS.values()))


def pulse_values(count: int, params: Mapping[str, Any], *, delta: bool = False) -> Values:
    """Turn a pulse count into the medium's register with the registry's factor and offset.

    ``params``: ``medium``, ``pulse_factor`` (units per pulse), ``pulse_unit`` (l, m3, wh, kwh)
    and ``pulse_offset`` (the register's reading at pulse count 0, in register units). With
    ``delta`` (a count since the last report) the offset does not apply.
    """
    medium_p, factor_p, unit_p, offset_p = PULSE_PARAMS
    medium = medium_p.get(params)
    target, units = _PULSE_TARGETS[medium]
    unit = unit_p.get(params).lower() if unit_p.name in params else _DEFAULT_UNIT[target]
    if unit not in units:
        raise DecodeError(f"pulse_unit {unit!r} does not fit medium {medium}: use {sorted(units)}")
    factor, offset = factor_p.get(params), offset_p.get(params)
    register = round((0 if delta else offset) + count * factor / units[unit], 9)
    return {"pulse_count": count, target: register}


def pulse_registers(bits: int | None, *, delta: bool = False) -> dict[str, Register]:
    """Declarations of ``pulse_values``' fields for a ``bits``-wide counter (None: no wrap).

    The medium registers' rollover depends on the device's pulse factor: ``pulse_registers_fn``.
    """
    count = Register(None if bits is None or delta else float(2**bits), delta)
    return {
        name: count if name == "pulse_count" else Register(None, delta) for name in PULSE_FIELDS
    }


def pulse_registers_fn(bits: int | None, *, delta: bool = False) -> RegistersFn:
    """``registers_fn`` for a pulse counter: the register wraps when its ``bits``-wide count
    does, at 2**bits x pulse_factor in the register's unit (10 L/pulse, 16 bits: 655.36 m³)."""

    def registers(params: Mapping[str, Any]) -> Mapping[str, Register]:
        found = pulse_registers(bits, delta=delta)
        target, units = _PULSE_TARGETS.get(str(params.get("medium")), ("", {}))
        factor = params.get("pulse_factor")
        unit = str(params.get("pulse_unit", "l" if target == "volume_m3" else "wh")).lower()
        if bits is None or delta or not target or unit not in units:
            return found
        if isinstance(factor, int | float) and not isinstance(factor, bool) and factor > 0:
            found[target] = Register(2**bits * factor / units[unit])
        return found

    return registers


def is_field_name(name: str) -> bool:
    """Whether a name has the vocabulary's shape (lowercase words joined by underscores)."""
    return bool(_NAME.match(name))
