"""The device registry (``LORAMETER_DEVICES``, YAML): which decoder, medium and meter a device is.

```yaml
devices:
  - device: wm-0731                 # TTS end-device id (or omit and give dev_eui)
    dev_eui: 0004A30B00F1C0DE
    decoder: axioma_qalcosonic_w1   # else chosen by TTS version_ids
    medium: water                   # else the decoder's own medium
    meter: WM-2024-000731           # meter number, a tag on every reading
    tags: {site: plant-3}           # site tags, on every reading
    meter_timezone: Europe/Berlin   # the zone of the meter's own clock (default UTC)
    params: {pulse_factor: 10, pulse_unit: l, pulse_offset: 1234.5, aes_key: "00..."}
    alarms: {night_flow: {threshold: 0.01}, silent: {interval_s: 3600}, clock_drift: {enabled: 0}}
  - device: th-17                   # zero-code: the network server decodes, we map its output
    medium: water
    profile: {volume_m3: {path: metering.water.total, unit: l}, alarm_leak: water.leak}
```
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from decoders.core import MEDIA
from decoders.profile import FieldMapping, parse_profile
from metering.alarms import check_overrides

__all__ = ["DeviceEntry", "DeviceRegistry", "RegistryError", "load_registry", "parse_registry"]

_TAG_KEY = re.compile(r"^[a-z][a-z0-9_]*$")
_RESERVED_TAGS = {"device", "meter", "decoder"}


class RegistryError(ValueError):
    """The registry file cannot be used; the message names the entry and the problem."""


class DeviceEntry(BaseModel):
    """One device of the registry."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    device: str = ""
    dev_eui: str = ""
    decoder: str = ""
    medium: str = ""
    meter: str = ""
    tags: dict[str, str] = Field(default_factory=dict)
    meter_timezone: str = "UTC"
    params: dict[str, Any] = Field(default_factory=dict)
    profile: dict[str, Any] = Field(default_factory=dict)
    alarms: dict[str, dict[str, float]] = Field(default_factory=dict)  # metering/alarms.py

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
                raise ValueError(f"tag {key!r}: use lowercase words, not device/meter/decoder")
        return value

    @field_validator("meter_timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
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
        return UTC if self.meter_timezone == "UTC" else ZoneInfo(self.meter_timezone)

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
        for entry in self.entries:
            for key in {entry.device, entry.dev_eui} - {""}:
                if key in self._by_key:
                    raise RegistryError(f"device {key!r} is listed twice in the registry")
                self._by_key[key] = entry

    def find(self, device_id: str, dev_eui: str) -> DeviceEntry | None:
        """The entry for a device, by DevEUI first (stable across renames), then by id."""
        entry = self._by_key.get(dev_eui.lower()) if dev_eui else None
        return entry or self._by_key.get(device_id)

    def __len__(self) -> int:
        return len(self.entries)


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
