"""Consumption of thousands of meters at once: the same answers as ``meter.device_consumption``.

Most registers only ever rise. For those, every rule of ``register`` is a no-op and the curve is
the readings themselves, so all devices are read at all bounds in a few array passes over the
concatenated series. A device with anything to account for (a drop, a duplicate instant, an
exchange, delta counts) goes through ``device_consumption`` one by one. A test holds the two
paths to the same numbers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from metering.consumption import _STATUS, Intervals
from metering.meter import _FALLBACK_INTERVAL_NS, MeterConfig, device_consumption
from metering.register import Curve

__all__ = ["FleetSeries", "fleet_consumption"]

Int64s = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class FleetSeries:
    """One register of many devices, concatenated: device i owns [starts[i], starts[i+1])."""

    devices: Sequence[str]
    starts: Int64s  # len(devices) + 1 offsets into times/values
    times_ns: Int64s  # sorted within each device
    values: Floats

    @classmethod
    def from_arrays(cls, series: Mapping[str, tuple[Int64s, Floats]]) -> FleetSeries:
        """From per-device (times, values) arrays; devices without readings are left out."""
        devices = [d for d, (t, _) in series.items() if len(t)]
        lengths = [len(series[d][0]) for d in devices]
        starts = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)
        if not devices:
            empty = np.array([], dtype=np.int64)
            return cls([], starts, empty, np.array([], dtype=np.float64))
        times = np.concatenate([np.asarray(series[d][0], dtype=np.int64) for d in devices])
        values = np.concatenate([np.asarray(series[d][1], dtype=np.float64) for d in devices])
        return cls(devices, starts, times, values)


def _plain(fleet: FleetSeries, configs: Sequence[MeterConfig], name: str) -> npt.NDArray[np.bool_]:
    """Devices whose readings are strictly ordered in time, finite and never drop."""
    t, v, starts = fleet.times_ns, fleet.values, fleet.starts
    n = len(fleet.devices)
    bad_step = np.zeros(len(t), dtype=bool)  # step i -> i+1 inside one device is bad
    if len(t) > 1:
        bad_step[:-1] = (np.diff(t) <= 0) | (np.diff(v) < 0)
    bad_step[starts[1:] - 1] = False  # the step from one device to the next is no step
    bad_step |= ~np.isfinite(v)
    bad: npt.NDArray[np.bool_] = np.zeros(n, dtype=bool)
    if len(t):
        bad = np.add.reduceat(bad_step, starts[:-1]) > 0
    special = np.array(
        [c.register(name).delta or bool(c.exchange_points(name)) for c in configs], dtype=bool
    )
    plain: npt.NDArray[np.bool_] = ~bad & ~special
    return plain


def _median_steps(fleet: FleetSeries) -> Int64s:
    """Each device's median reporting interval (``median_interval_ns``), 0 below 3 readings."""
    t, starts = fleet.times_ns, fleet.starts
    lengths = np.diff(starts)
    out = np.zeros(len(lengths), dtype=np.int64)
    if len(t) < 2:
        return out
    owner = np.repeat(np.arange(len(lengths)), lengths)[:-1]
    within = np.ones(len(t) - 1, dtype=bool)
    within[starts[1:-1] - 1] = False  # no step from one device's last reading to the next's
    steps, owner = np.diff(t)[within], owner[within]
    steps = steps[np.lexsort((steps, owner))]  # each device's steps, in ascending order
    counts = np.maximum(lengths - 1, 0)
    first = np.concatenate(([0], np.cumsum(counts)[:-1]))
    ok = lengths >= 3
    lo = first[ok] + (counts[ok] - 1) // 2
    hi = first[ok] + counts[ok] // 2
    out[ok] = ((steps[lo].astype(np.float64) + steps[hi].astype(np.float64)) / 2).astype(np.int64)
    return out


def fleet_consumption(
    fleet: FleetSeries,
    configs: Sequence[MeterConfig],
    name: str,
    bounds_ns: Int64s,
) -> list[tuple[Curve, Intervals]]:
    """Consumption of register ``name`` of every device between the same ``bounds_ns``."""
    n = len(fleet.devices)
    out: list[tuple[Curve, Intervals] | None] = [None] * n
    plain = _plain(fleet, configs, name) if n else np.zeros(0, dtype=bool)
    t, v, starts = fleet.times_ns, fleet.values, fleet.starts
    for i in np.flatnonzero(~plain).tolist():
        a, b = int(starts[i]), int(starts[i + 1])
        out[i] = device_consumption(configs[i], name, t[a:b], v[a:b], bounds_ns)
    idx = np.flatnonzero(plain)
    if len(idx):
        _plain_intervals(fleet, configs, name, bounds_ns, idx, out)
    return [o for o in out if o is not None]


def _plain_intervals(
    fleet: FleetSeries,
    configs: Sequence[MeterConfig],
    name: str,
    bounds_ns: Int64s,
    idx: Int64s,
    out: list[tuple[Curve, Intervals] | None],
) -> None:
    """The vectorised path for devices whose registers only rise."""
    t, v, starts = fleet.times_ns, fleet.values, fleet.starts
    lengths = np.diff(starts)
    learnt = _median_steps(fleet)
    interval = np.array(
        [
            round(c.expected_interval_s * 1e9) if c.expected_interval_s is not None else 0
            for c in configs
        ],
        dtype=np.int64,
    )
    interval = np.where(interval > 0, interval, np.where(learnt > 0, learnt, _FALLBACK_INTERVAL_NS))
    max_gap = 3 * interval[idx]
    s0, length = starts[idx], lengths[idx]
    nb = len(bounds_ns)
    cum = np.empty((len(idx), nb))
    raw = np.empty((len(idx), nb))
    code = np.empty((len(idx), nb), dtype=np.int64)
    owner = np.repeat(np.arange(len(lengths)), lengths)
    for j, bound in enumerate(np.asarray(bounds_ns, dtype=np.int64).tolist()):
        below = np.bincount(owner, weights=t < bound, minlength=len(lengths))[idx].astype(np.int64)
        right = s0 + below  # first reading at or after the bound
        has_right = below < length
        exact = has_right & (t[np.minimum(right, len(t) - 1)] == bound)
        inside = has_right & (below > 0) & ~exact
        r = np.where(has_right, right, s0)
        left = np.maximum(r - 1, s0)
        t0, t1 = t[left], t[r]
        span = np.where(inside, t1 - t0, 1)
        frac = np.where(inside, (bound - t0) / span, 0.0)
        first = v[s0]
        value = np.where(exact, v[r], v[left] + (v[r] - v[left]) * frac)
        cum[:, j] = np.where(exact | inside, value - first, np.nan)
        raw[:, j] = np.where(exact | inside, value, np.nan)
        code[:, j] = np.where(exact, 0, np.where(inside, np.where(span <= max_gap, 0, 1), 2))
    # Everything per device below is a row or a slice of arrays computed once for all.
    status = np.maximum(code[:, :-1], code[:, 1:])
    used = np.where(status < 2, cum[:, 1:] - cum[:, :-1], np.nan)
    used = np.where(np.abs(used) < 1e-12, 0.0, used)
    start_reading = np.where(code[:, :-1] < 2, raw[:, :-1], np.nan)
    end_reading = np.where(code[:, 1:] < 2, raw[:, 1:], np.nan)
    labels = _STATUS[status]
    cumulative = v - np.repeat(v[starts[:-1]], lengths)
    bounds = np.asarray(bounds_ns, dtype=np.int64)
    no_events: tuple[tuple[()], ...] = tuple(() for _ in range(nb - 1))
    for k, i in enumerate(idx.tolist()):
        a, b = int(starts[i]), int(starts[i + 1])
        curve = Curve(t[a:b], v[a:b], cumulative[a:b])
        out[i] = (
            curve,
            Intervals(bounds, used[k], start_reading[k], end_reading[k], labels[k], no_events),
        )
