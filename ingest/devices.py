"""The device registry (``LORAMETER_DEVICES``, YAML): which decoder, medium and meter a device is.

```yaml
devices:
  - device: wm-0731                 # TTS end-device id (or omit and give dev_eui)
    dev_eui: 0004A30B00F1C0DE
    decoder: axioma_qalcosonic_w1   # else chosen by TTS version_ids
    medium: water                   # else the decoder's own medium
    meter: WM-2024-000731           # meter number, a tag on every reading
    tags: {site: plant-3}           # site tags, on every reading
    meter_timezone: Europe/Berlin   # the meter's clock and its calendar (default: UTC clock,
                                    # LORAMETER_TIMEZONE calendar)
    params: {pulse_factor: 10, pulse_unit: l, pulse_offset: 1234.5, aes_key: "00..."}
    expected_interval_s: 900        # how often it reports (else learnt from its readings)
    registers: {volume_m3: {rollover: 100000}}   # overrides of the decoder's declaration
    exchanges:                      # meter exchanges, for consumption across them
      - {at: 2026-05-04T10:30:00+02:00, old_end: {volume_m3: 1234.567},
         new_start: {volume_m3: 0.012}, new_meter: WM-2026-000042}
  - device: lobaro-17               # a wireless M-Bus bridge: its uplinks carry meters' telegrams
    decoder: wmbus_bridge
  - device: wm-0815                 # a wM-Bus meter behind any bridge, by its address
    wmbus: KAM-12345678-1B-16       # manufacturer-identification-version-device type
    medium: water
    params: {aes_key: "000102..."}  # its OMS key
    alarms: {night_flow: {threshold: 0.01}, silent: {factor: 4}, clock_drift: {enabled: 0}}
  - device: th-17                   # zero-code: the network server decodes, we map its output
    medium: water
    profile: {volume_m3: {path: metering.water.total, unit: l}, alarm_leak: water.leak}
```
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from decoders import registry
from decoders.core import MEDIA, VOCABULARY, Kind, ParamError, registers_for, validate_params
from decoders.profile import FieldMapping, parse_profile
from metering.alarms import check_overrides
from metering.meter import Exchange, MeterConfig
from metering.register import RegisterModel
from storage.schema import BASE_TAGS

__all__ = [
    "DeviceEntry",
    "DeviceRegistry",
    "ExchangeEntry",
    "RegisterEntry",
    "RegistryError",
    "load_registry",
    "parse_registry",
]

_TAG_KEY = re.compile(r"^[a-z][a-z0-9_]*$")
_WMBUS = re.compile(r"^[A-Z]{3}-[0-9]{8}-[0-9A-F]{2}-[0-9A-F]{2}$")
_RESERVED_TAGS = set(BASE_TAGS)


class RegistryError(ValueError):
    """The registry file cannot be used; the message names the entry and the problem."""


def _counter(name: str) -> str:
    spec = VOCABULARY.get(name)
    if spec is None or spec.kind is not Kind.COUNTER:
        raise ValueError(f"{name!r} is not a register (a counter field of the vocabulary)")
    return name


class RegisterEntry(BaseModel):
    """Registry overrides of how one register behaves (see ``decoders.core.Register``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rollover: float | None = Field(None, gt=0)
    delta: bool | None = None
    tolerance: float | None = Field(None, ge=0)


class ExchangeEntry(BaseModel):
    """A meter exchange: when, the old meter's last registers and the new meter's first."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    at: datetime
    old_end: dict[str, float]
    new_start: dict[str, float]
    new_meter: str = ""

    @field_validator("at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("give the exchange time with its offset, e.g. 2026-05-04T10:30+02:00")
        return value

    @field_validator("old_end", "new_start")
    @classmethod
    def _registers(cls, value: dict[str, float]) -> dict[str, float]:
        for name in value:
            _counter(name)
        return value

    @model_validator(mode="after")
    def _both(self) -> ExchangeEntry:
        if set(self.old_end) != set(self.new_start):
            raise ValueError("old_end and new_start must name the same registers")
        return self


class DeviceEntry(BaseModel):
    """One device of the registry."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    device: str = ""
    dev_eui: str = ""
    decoder: str = ""
    medium: str = ""
    meter: str = ""
    tags: dict[str, str] = Field(default_factory=dict)
    meter_timezone: str = ""
    params: dict[str, Any] = Field(default_factory=dict)
    profile: dict[str, Any] = Field(default_factory=dict)
    expected_interval_s: float | None = Field(None, gt=0)
    registers: dict[str, RegisterEntry] = Field(default_factory=dict)
    exchanges: list[ExchangeEntry] = Field(default_factory=list)
    wmbus: str = ""  # the address of a wireless M-Bus meter read through bridges
    alarms: dict[str, dict[str, float]] = Field(default_factory=dict)  # metering/alarms.py

    @field_validator("wmbus")
    @classmethod
    def _wmbus(cls, value: str) -> str:
        value = value.strip().upper()
        if value and not _WMBUS.match(value):
            raise ValueError(f"wmbus {value!r} is not an address like KAM-12345678-1B-16")
        return value

    @field_validator("dev_eui")
    @classmethod
    def _eui(cls, value: str) -> str:
        value = value.replace("-", "").replace(":", "").lower()
        if value and not re.fullmatch(r"[0-9a-f]{16}", value):
            raise ValueError(f"dev_eui {value!r} is not 16 hex digits")
        return value

    @field_validator("medium")
    @classmethod
    def _medium(cls, value: str) -> str:
        if value and value not in MEDIA:
            raise ValueError(f"medium {value!r} is not one of {', '.join(MEDIA)}")
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not _TAG_KEY.match(key) or key in _RESERVED_TAGS:
                raise ValueError(
                    f"tag {key!r}: use lowercase words, not {'/'.join(sorted(_RESERVED_TAGS))}"
                )
        return value

    @field_validator("registers")
    @classmethod
    def _register_names(cls, value: dict[str, RegisterEntry]) -> dict[str, RegisterEntry]:
        for name in value:
            _counter(name)
        return value

    @field_validator("exchanges")
    @classmethod
    def _in_order(cls, value: list[ExchangeEntry]) -> list[ExchangeEntry]:
        times = [e.at for e in value]
        if times != sorted(times) or len(set(times)) != len(times):
            raise ValueError("list exchanges oldest first, each at its own time")
        return value

    @field_validator("meter_timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        if not value:
            return value
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("profile")
    @classmethod
    def _profile(cls, value: dict[str, Any]) -> dict[str, Any]:
        if value:
            parse_profile(value)
        return value

    @field_validator("alarms")
    @classmethod
    def _alarms(cls, value: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        check_overrides(value)
        return value

    @model_validator(mode="after")
    def _named(self) -> DeviceEntry:
        if not self.device and not self.dev_eui:
            raise ValueError("an entry needs a device id or a dev_eui")
        if self.profile and self.decoder:
            raise ValueError("give a decoder or a profile, not both")
        if self.profile and not self.medium:
            raise ValueError("a profile device needs its medium")
        if self.wmbus and (self.decoder or self.profile):
            raise ValueError("a wmbus meter is read through its bridge: no decoder or profile")
        decoder = registry.by_id(self.decoder) if self.decoder else None
        if decoder is not None:  # the params the decoder declares, of the declared types
            try:
                validate_params(decoder, self.params)
            except ParamError as exc:
                raise ValueError(str(exc)) from None
        return self

    @model_validator(mode="after")
    def _decoder_usable(self) -> DeviceEntry:
        # Caught here, at start, rather than as a dead letter for every uplink of the device.
        if not self.decoder:
            return self
        decoder = registry.by_id(self.decoder)
        if decoder is None:
            raise ValueError(
                f"decoder {self.decoder!r} does not exist (`lorameter decode --list` lists them)"
            )
        # A pulse counter's medium is the registry's; a bridge's meters have their own.
        if decoder.medium is None and not self.medium and "pulse_count" in decoder.fields:
            raise ValueError(
                f"decoder {self.decoder} measures no fixed medium (a pulse counter):"
                f" give the device a medium ({', '.join(MEDIA)})"
            )
        return self

    @property
    def mappings(self) -> tuple[FieldMapping, ...]:
        """The parsed zero-code profile (empty if the device has a decoder)."""
        return parse_profile(self.profile) if self.profile else ()

    @property
    def name(self) -> str:
        """The device's id in the store and API."""
        return self.device or self.dev_eui

    @property
    def timezone(self) -> tzinfo:
        """The zone of the meter's own clock (UTC unless the registry says)."""
        return UTC if self.meter_timezone in ("", "UTC") else ZoneInfo(self.meter_timezone)

    def meter_config(self) -> MeterConfig:
        """What metering needs of this device: the decoder's registers with our overrides."""
        decoder = registry.by_id(self.decoder) if self.decoder else None
        declared = registers_for(decoder, self.decoder_params()) if decoder is not None else {}
        registers = {}
        for name in {*declared, *self.registers}:
            base = declared.get(name)
            override = self.registers.get(name, RegisterEntry())
            registers[name] = RegisterModel(
                rollover=override.rollover or (base.rollover if base else None),
                delta=override.delta if override.delta is not None else bool(base and base.delta),
                tolerance=override.tolerance,
            )
        return MeterConfig(
            timezone=self.meter_timezone,
            expected_interval_s=self.expected_interval_s,
            registers=registers,
            exchanges=tuple(
                Exchange(e.at, e.old_end, e.new_start, e.new_meter) for e in self.exchanges
            ),
            meter=self.meter,
            tags=self.tags,
            wmbus=self.wmbus,
        )

    def decoder_params(self) -> dict[str, Any]:
        """Parameters handed to the decoder: the entry's params plus its medium."""
        params = dict(self.params)
        if self.medium:
            params.setdefault("medium", self.medium)
        return params


class DeviceRegistry:
    """Lookup of registry entries by TTS device id or DevEUI."""

    def __init__(self, entries: Iterable[DeviceEntry] = ()) -> None:
        self.entries = list(entries)
        self._by_key: dict[str, DeviceEntry] = {}
        self._by_wmbus: dict[str, DeviceEntry] = {}
        for entry in self.entries:
            for key in {entry.device, entry.dev_eui} - {""}:
                if key in self._by_key:
                    raise RegistryError(f"device {key!r} is listed twice in the registry")
                self._by_key[key] = entry
            if entry.wmbus:
                if entry.wmbus in self._by_wmbus:
                    raise RegistryError(f"wmbus meter {entry.wmbus} is listed twice")
                self._by_wmbus[entry.wmbus] = entry

    def find_meter(self, key: str) -> DeviceEntry | None:
        """The entry of a wireless M-Bus meter behind a bridge, by its address key."""
        return self._by_wmbus.get(key)

    def bridge_meters(self) -> dict[str, dict[str, Any]]:
        """Every wM-Bus meter's decoder params (its aes_key), by address: a bridge's ``meters``."""
        return {key: dict(entry.params) for key, entry in self._by_wmbus.items()}

    def find(self, device_id: str, dev_eui: str) -> DeviceEntry | None:
        """The entry for a device, by DevEUI first (stable across renames), then by id."""
        entry = self._by_key.get(dev_eui.lower()) if dev_eui else None
        return entry or self._by_key.get(device_id)

    def __len__(self) -> int:
        return len(self.entries)

    def meter_configs(self) -> dict[str, MeterConfig]:
        """Metering settings of every registered device, by its id in the store."""
        return {entry.name: entry.meter_config() for entry in self.entries}


def parse_registry(document: Mapping[str, Any] | None, source: str = "registry") -> DeviceRegistry:
    """Validate a registry document (the parsed YAML)."""
    if document is None:
        return DeviceRegistry()
    if not isinstance(document, Mapping) or not isinstance(document.get("devices", []), list):
        raise RegistryError(f"{source}: expected a mapping with a 'devices:' list")
    entries = []
    for n, item in enumerate(document.get("devices") or [], 1):
        try:
            entries.append(DeviceEntry.model_validate(item))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'entry'}: {e['msg']}" for e in exc.errors()
            )
            raise RegistryError(f"{source}: device #{n}: {problems}") from exc
    return DeviceRegistry(entries)


def load_registry(path: str | Path | None) -> DeviceRegistry:
    """Read the registry file; an empty path means no registry (TTS version_ids only)."""
    if not path:
        return DeviceRegistry()
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise RegistryError(f"cannot read device registry {path}: {exc.strerror}") from exc
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RegistryError(f"{path} is not valid YAML: {exc}") from exc
    return parse_registry(document, str(path))
