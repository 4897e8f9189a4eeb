"""What metering knows of one device: its calendar zone, reporting interval, registers, exchanges.

Built by the composition root from the device registry and the decoder's declarations; pure data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import numpy.typing as npt

from decoders.core import MEDIA
from metering.calendar import to_ns
from metering.consumption import Intervals, consumption, median_interval_ns
from metering.register import Curve, ExchangePoint, RegisterModel, build_curve

__all__ = ["PRIMARY_REGISTER", "Exchange", "MeterConfig", "device_consumption"]

# The register a utility bills by default, per medium.
PRIMARY_REGISTER = {
    "electricity": "energy_import_kwh",
    "heat": "energy_heat_kwh",
    "water": "volume_m3",
    "gas": "volume_m3",
}
assert set(PRIMARY_REGISTER) == set(MEDIA)

# Without a registry interval and with too few readings to learn one: an hour.
_FALLBACK_INTERVAL_NS = 3_600 * 1_000_000_000


@dataclass(frozen=True)
class Exchange:
    """A meter exchange from the registry: the old meter's end and the new one's start values."""

    at: datetime
    old_end: Mapping[str, float]
    new_start: Mapping[str, float]
    new_meter: str = ""


@dataclass(frozen=True)
class MeterConfig:
    """Per-device metering settings; every field has a safe default for unregistered devices."""

    timezone: str = ""  # calendar zone of the device's intervals; "" = the site's zone
    expected_interval_s: float | None = None  # None: learnt from the readings (median)
    registers: Mapping[str, RegisterModel] = field(default_factory=dict)
    exchanges: tuple[Exchange, ...] = ()
    meter: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)
    wmbus: str = ""  # the wireless M-Bus address of a meter read through bridges

    def register(self, name: str) -> RegisterModel:
        return self.registers.get(name, RegisterModel())

    def exchange_points(self, name: str) -> list[ExchangePoint]:
        """The exchanges that give both values for this register (others cannot be bridged)."""
        return [
            ExchangePoint(to_ns(e.at), e.old_end[name], e.new_start[name], e.new_meter)
            for e in self.exchanges
            if name in e.old_end and name in e.new_start
        ]

    def expected_interval_ns(self, times_ns: npt.NDArray[np.int64]) -> int:
        if self.expected_interval_s is not None:
            return round(self.expected_interval_s * 1e9)
        return median_interval_ns(times_ns) or _FALLBACK_INTERVAL_NS


def device_consumption(
    config: MeterConfig,
    name: str,
    times_ns: npt.NDArray[np.int64],
    values: npt.NDArray[np.float64],
    bounds_ns: npt.NDArray[np.int64],
) -> tuple[Curve, Intervals]:
    """Consumption of register ``name`` of one device per interval between ``bounds_ns``.

    A bound is ``measured`` when its readings are at most 3 × the expected interval apart.
    """
    curve = build_curve(times_ns, values, config.register(name), config.exchange_points(name))
    max_gap = 3 * config.expected_interval_ns(np.asarray(times_ns, dtype=np.int64))
    return curve, consumption(curve, bounds_ns, max_gap)
