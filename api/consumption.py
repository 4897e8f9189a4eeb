"""Consumption and key-date reads of stored registers: the store's series through ``metering/``.

One place computes what the routes, the CLI and the web view show, so they always agree.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

import numpy as np

from decoders import registry as decoder_registry
from decoders.core import MEDIA, VOCABULARY, Kind
from metering.calendar import interval_bounds, to_ns
from metering.consumption import Intervals, register_at
from metering.fleet import FleetSeries, fleet_consumption
from metering.meter import PRIMARY_REGISTER, MeterConfig, device_consumption
from metering.register import Curve, RegisterModel, build_curve
from storage.base import DeviceSummary, Series, Store
from storage.schema import from_ns

__all__ = [
    "DEFAULT_SPAN",
    "DeviceReport",
    "MeteringError",
    "Window",
    "config_for",
    "device_report",
    "fleet_reports",
    "register_read",
    "unit_of",
]

# The window shown when a request gives no ``from``: enough intervals to be useful.
DEFAULT_SPAN = {
    "15min": timedelta(days=1),
    "hour": timedelta(days=2),
    "day": timedelta(days=31),
    "month": timedelta(days=366),
    "year": timedelta(days=5 * 366),
}


class MeteringError(ValueError):
    """A request metering cannot answer; ``status`` is the HTTP status that says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Window:
    """The local calendar intervals asked for."""

    start: datetime
    end: datetime
    interval: str
    tz: tzinfo

    def bounds(self) -> np.ndarray[Any, np.dtype[np.int64]]:
        try:
            return interval_bounds(self.start, self.end, self.interval, self.tz)
        except ValueError as exc:
            raise MeteringError(422, str(exc)) from None


def unit_of(field: str) -> str:
    """The field's unit in plain ASCII (``m3``, ``kWh``), as the JSON carries it."""
    unit = VOCABULARY[field].unit
    return (unit or "").replace("³", "3")


def _check_register(field: str) -> None:
    spec = VOCABULARY.get(field)
    if spec is None or spec.kind is not Kind.COUNTER:
        counters = ", ".join(n for n, s in VOCABULARY.items() if s.kind is Kind.COUNTER)
        raise MeteringError(422, f"field {field!r} is not a register; use one of {counters}")


def config_for(device: str, decoder: str, meters: Mapping[str, MeterConfig]) -> MeterConfig:
    """The registry's settings for a device, else its decoder's register declarations."""
    if device in meters:
        return meters[device]
    found = decoder_registry.by_id(decoder)
    if found is None:
        return MeterConfig()
    return MeterConfig(
        registers={
            name: RegisterModel(rollover=r.rollover, delta=r.delta)
            for name, r in found.registers.items()
        }
    )


def _round(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 9)


def _local(ns: int, tz: tzinfo) -> str:
    return from_ns(ns).astimezone(tz).isoformat()


@dataclass(frozen=True)
class DeviceReport:
    """One device's consumption per interval, ready to print as JSON or CSV."""

    device: str
    meter: str
    medium: str
    field: str
    window: Window
    curve: Curve
    intervals: Intervals

    @property
    def total(self) -> float | None:
        total = self.intervals.total
        return None if total is None else round(total, 9)

    def items(self) -> Iterator[dict[str, Any]]:
        iv, tz = self.intervals, self.window.tz
        bounds = iv.bounds_ns.tolist()
        for i, status in enumerate(iv.status.tolist()):
            yield {
                "start": _local(bounds[i], tz),
                "end": _local(bounds[i + 1], tz),
                "consumption": _round(float(iv.consumption[i])),
                "start_reading": _round(float(iv.start_reading[i])),
                "end_reading": _round(float(iv.end_reading[i])),
                "status": status,
                "events": [
                    {"kind": e.kind, "at": _local(e.time_ns, tz), "detail": e.detail}
                    for e in iv.events[i]
                    if e.kind != "outlier"
                ],
            }

    def header(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "meter": self.meter,
            "medium": self.medium,
            "field": self.field,
            "unit": unit_of(self.field),
            "interval": self.window.interval,
            "tz": str(self.window.tz),
            "from": self.window.start.astimezone(self.window.tz).isoformat(),
            "to": self.window.end.astimezone(self.window.tz).isoformat(),
            "total": self.total,
            "ignored_readings": self.curve.ignored,
            "duplicate_readings": self.curve.duplicates,
        }

    def as_json(self) -> dict[str, Any]:
        return {**self.header(), "items": list(self.items())}


def _report(
    summary_device: str,
    meter: str,
    medium: str,
    field: str,
    config: MeterConfig,
    series: Series | None,
    window: Window,
) -> DeviceReport:
    bounds = window.bounds()
    if series is None:
        series = Series(np.array([], dtype=np.int64), np.array([], dtype=np.float64))
    curve, intervals = device_consumption(config, field, series.times_ns, series.values, bounds)
    return DeviceReport(summary_device, meter, medium, field, window, curve, intervals)


def device_report(
    store: Store,
    summary: DeviceSummary,
    config: MeterConfig,
    window: Window,
    field: str | None = None,
) -> DeviceReport:
    """Consumption of one device's register (default: its medium's billing register)."""
    field = field or PRIMARY_REGISTER.get(summary.medium, "")
    _check_register(field)
    bounds = window.bounds()
    series = store.series(
        field, from_ns(int(bounds[0])), from_ns(int(bounds[-1])), devices=[summary.device]
    )
    meter = config.meter or summary.meter
    return _report(
        summary.device, meter, summary.medium, field, config, series.get(summary.device), window
    )


def fleet_reports(
    store: Store,
    meters: Mapping[str, MeterConfig],
    window: Window,
    *,
    medium: str | None = None,
    site: str | None = None,
    field: str | None = None,
) -> Iterator[DeviceReport]:
    """Consumption of every device (of a medium, of a site), one report per device, by name.

    ``site`` is the registry's ``site`` tag; the window's zone applies to every device, so the
    fleet's intervals line up.
    """
    if medium is not None and medium not in MEDIA:
        raise MeteringError(422, f"medium must be one of {', '.join(MEDIA)}, not {medium!r}")
    if field is not None:
        _check_register(field)
    bounds = window.bounds()
    start, end = from_ns(int(bounds[0])), from_ns(int(bounds[-1]))
    wanted = None
    if site is not None:
        wanted = sorted(d for d, c in meters.items() if c.tags.get("site") == site)
    for m in [medium] if medium else MEDIA:
        name = field or PRIMARY_REGISTER[m]
        found = store.series(name, start, end, devices=wanted, medium=m)
        fleet = FleetSeries.from_arrays(
            {d: (found[d].times_ns, found[d].values) for d in sorted(found)}
        )
        configs = [meters.get(d) or MeterConfig() for d in fleet.devices]
        results = fleet_consumption(fleet, configs, name, bounds)
        for device, config, (curve, intervals) in zip(fleet.devices, configs, results, strict=True):
            yield DeviceReport(device, config.meter, m, name, window, curve, intervals)


def register_read(
    store: Store,
    summary: DeviceSummary,
    config: MeterConfig,
    at: datetime,
    field: str | None = None,
) -> dict[str, Any]:
    """The register at a key date, with the readings it came from; 404 past the readings."""
    field = field or PRIMARY_REGISTER.get(summary.medium, "")
    _check_register(field)
    found = store.series(field, at, at, devices=[summary.device]).get(summary.device)
    if found is None or len(found) == 0:
        raise MeteringError(
            404,
            f"device {summary.device!r} has no {field} reading within 400 days before or after"
            f" {at.isoformat()}: nothing to interpolate from, never extrapolated",
        )
    model = config.register(field)
    if model.delta:
        raise MeteringError(
            422, f"{field} of {summary.device!r} counts per report (delta): it has no register"
        )
    curve = build_curve(found.times_ns, found.values, model, config.exchange_points(field))
    at_ns = to_ns(at.astimezone(UTC))
    value = register_at(curve, at_ns, config.expected_interval_ns(curve.times_ns))
    if value is None:
        side = "before the first" if at_ns < int(curve.times_ns[0]) else "after the last"
        raise MeteringError(
            404,
            f"{at.isoformat()} lies {side} reading of {field} of {summary.device!r}"
            f" ({from_ns(int(curve.times_ns[0])).isoformat()} to"
            f" {from_ns(int(curve.times_ns[-1])).isoformat()}): never extrapolated",
        )
    status = value.status
    if len(value.from_ns) == 1 and _meter_stamped(store, summary.device, value.from_ns[0]):
        status = "meter_key_date"  # the meter's own register for that instant (set-day value)
    return {
        "device": summary.device,
        "meter": config.meter or summary.meter,
        "field": field,
        "unit": unit_of(field),
        "at": at.isoformat(),
        "value": round(value.value, 9),
        "status": status,
        "from": [
            {"time": from_ns(t).isoformat(), "value": v}
            for t, v in zip(value.from_ns, value.from_values, strict=True)
        ],
    }


def _meter_stamped(store: Store, device: str, time_ns: int) -> bool:
    """Whether a reading carries the meter's own time (not an uplink's receive time)."""
    uplinks = store.raw_uplinks(device, from_ns(time_ns), limit=1)
    return not uplinks or from_ns(time_ns) != uplinks[0].received_at
