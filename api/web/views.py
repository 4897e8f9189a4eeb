"""What the pages show, computed from the store: pure functions over summaries and reports."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from metering.meter import PRIMARY_REGISTER, MeterConfig
from storage.alarms import Alarm
from storage.base import DeviceSummary

__all__ = [
    "ALARM_STATES",
    "RANGES",
    "FleetRow",
    "active_first",
    "age",
    "by_device",
    "fleet_rows",
    "matches",
    "register_unit",
]

# The chart's ranges: label -> (span, the interval it shows by default).
RANGES = {
    "24h": (timedelta(hours=24), "hour"),
    "31d": (timedelta(days=31), "day"),
    "1y": (timedelta(days=365), "month"),
}
CHART_INTERVALS = ("hour", "day", "month")
ALARM_STATES = ("all", "active", "cleared")  # the alarms page's filter; "all": active first
_UNITS = {"kwh": "kWh", "m3": "m³", "w": "W", "m3h": "m³/h", "c": "°C", "pct": "%"}
_DEFAULT_INTERVAL = timedelta(hours=1)


@dataclass(frozen=True)
class FleetRow:
    """One line of the fleet list."""

    summary: DeviceSummary
    site: str
    register_field: str
    register_value: float | None
    expected: timedelta
    late_by: timedelta  # how much longer than expected the meter has been quiet (0: on time)
    state: str  # ok | late | silent
    alarms: tuple[Alarm, ...]  # its active alarms


def register_unit(field: str) -> str:
    """``energy_import_kwh`` -> ``kWh``; ``volume_m3`` -> ``m³``."""
    suffix = field.rsplit("_", 1)[-1]
    return _UNITS.get(suffix, suffix)


def expected_interval(summary: DeviceSummary, config: MeterConfig | None) -> timedelta:
    """The registry's interval, else the device's mean interval between its uplinks."""
    if config is not None and config.expected_interval_s:
        return timedelta(seconds=config.expected_interval_s)
    if summary.uplinks > 1:
        return (summary.last_seen - summary.first_seen) / (summary.uplinks - 1)
    return _DEFAULT_INTERVAL


def fleet_rows(
    summaries: Sequence[DeviceSummary],
    meters: Mapping[str, MeterConfig],
    now: datetime,
    alarms: Mapping[str, Sequence[Alarm]] | None = None,
) -> list[FleetRow]:
    """Every device with its register, its state against its expected interval, its alarms.

    A meter is ``late`` once quiet for 1.5 expected intervals, ``silent`` after 3.
    """
    rows = []
    for summary in summaries:
        config = meters.get(summary.device)
        field = PRIMARY_REGISTER.get(summary.medium, "")
        value = summary.last_reading.get(field)
        expected = expected_interval(summary, config)
        quiet = now - summary.last_seen
        state = "silent" if quiet > 3 * expected else "late" if quiet > 1.5 * expected else "ok"
        rows.append(
            FleetRow(
                summary=summary,
                site=(config.tags.get("site", "") if config else ""),
                register_field=field,
                register_value=float(value) if isinstance(value, int | float) else None,
                expected=expected,
                late_by=max(quiet - expected, timedelta(0)),
                state=state,
                alarms=tuple((alarms or {}).get(summary.device, ())),
            )
        )
    return rows


def active_first(alarms: Iterable[Alarm]) -> list[Alarm]:
    """Active alarms before cleared ones, each group newest raised first."""
    return sorted(alarms, key=lambda a: (a.state != "active", -a.raised_at.timestamp(), -a.id))


def by_device(alarms: Iterable[Alarm]) -> dict[str, list[Alarm]]:
    """Alarms grouped by device, in the order given."""
    grouped: dict[str, list[Alarm]] = {}
    for alarm in alarms:
        grouped.setdefault(alarm.device, []).append(alarm)
    return grouped


def matches(row: FleetRow, query: str, medium: str, site: str) -> bool:
    """Search by device id, DevEUI or meter number (case-insensitive); filter medium and site."""
    needle = query.strip().lower().replace(":", "").replace("-", "") if query else ""
    if needle:
        s = row.summary
        haystack = (s.device.lower().replace("-", ""), s.dev_eui.lower(), s.meter.lower())
        if not any(needle in text for text in haystack):
            return False
    return (not medium or row.summary.medium == medium) and (not site or row.site == site)


def age(delta: timedelta) -> str:
    """A short human duration: 42 s, 5 min, 3 h, 2 d."""
    seconds = max(delta.total_seconds(), 0)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} d"
