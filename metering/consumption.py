"""Consumption per interval and the register at an instant, read off a register's curve.

A bound's value is the curve at that instant: the reading itself when one lies exactly on it,
else linear between the readings on either side. Its status:

- ``measured``: a reading on the bound, or readings on both sides no further apart than
  ``max_gap_ns`` (the device's expected interval × 3);
- ``estimated``: readings on both sides, but further apart (the gap's consumption is spread
  linearly, only to place the bound: nothing is invented inside the gap);
- ``incomplete``: the bound lies before the first or after the last reading; no value.

An interval takes the worse status of its two bounds, and ``incomplete`` has no consumption.
Worked example: readings 10.0 at 00:00 and 12.0 at 02:00, max gap 3 h; the interval
[01:00, 02:00) has bounds 11.0 (interpolated, measured) and 12.0 (on a reading): 1.0, measured.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from metering.register import Curve, Event

__all__ = [
    "ESTIMATED",
    "INCOMPLETE",
    "MEASURED",
    "Intervals",
    "RegisterValue",
    "consumption",
    "median_interval_ns",
    "register_at",
]

MEASURED, ESTIMATED, INCOMPLETE = "measured", "estimated", "incomplete"
_STATUS = np.array([MEASURED, ESTIMATED, INCOMPLETE])  # worse is higher

Int64s = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Intervals:
    """Per interval i = [bounds[i], bounds[i+1]): consumption, bound readings, status, events."""

    bounds_ns: Int64s
    consumption: Floats  # NaN where incomplete
    start_reading: Floats  # the meter's register at the start bound (NaN: unknown)
    end_reading: Floats
    status: npt.NDArray[np.str_]
    events: tuple[tuple[Event, ...], ...]

    @property
    def total(self) -> float | None:
        """Consumption over all intervals; None if any is incomplete."""
        if len(self.consumption) == 0 or np.isnan(self.consumption).any():
            return None
        return float(self.consumption.sum())


def median_interval_ns(times_ns: Int64s) -> int | None:
    """The device's usual reporting interval, learnt from its readings (None below 3 readings)."""
    if len(times_ns) < 3:
        return None
    steps = np.diff(np.unique(times_ns))
    return int(np.median(steps)) if len(steps) else None


def _at(
    curve: Curve, at_ns: Int64s, max_gap_ns: int, *, start_side: bool
) -> tuple[Floats, Floats, npt.NDArray[np.int64]]:
    """Cumulative value, meter register and status code (0/1/2) of the curve at each instant.

    At an exchange two points share a time: a start bound reads the new meter's register, an
    end bound the old one's (``start_side``).
    """
    times = curve.times_ns
    n = len(times)
    cumulative = np.full(len(at_ns), np.nan)
    raw = np.full(len(at_ns), np.nan)
    code = np.full(len(at_ns), 2, dtype=np.int64)
    if n == 0:
        return cumulative, raw, code
    right = np.searchsorted(times, at_ns, side="left")  # first point at or after
    last_at = np.searchsorted(times, at_ns, side="right") - 1  # last point at or before
    exact = (last_at >= 0) & (last_at < n) & (times[np.clip(last_at, 0, n - 1)] == at_ns)
    inside = (right > 0) & (right < n) & ~exact
    # exact hits
    hit = np.where(start_side, last_at, right)[exact]
    cumulative[exact] = curve.cumulative[hit]
    raw[exact] = curve.raw[hit]
    code[exact] = 0
    # interpolated between left = right - 1 and right
    r = right[inside]
    left = r - 1
    t0, t1 = times[left], times[r]
    frac = (at_ns[inside] - t0) / (t1 - t0)
    c0, c1 = curve.cumulative[left], curve.cumulative[r]
    cumulative[inside] = c0 + (c1 - c0) * frac
    # The register between two readings: the left reading plus what was consumed since. Where
    # the register wrapped (or was reset) between them, the nearer reading's side is shown: the
    # exact wrap instant (and a pulse register's offset) is not known.
    from_left = curve.raw[left] + (cumulative[inside] - c0)
    from_right = curve.raw[r] - (c1 - cumulative[inside])
    wrapped = curve.raw[r] < curve.raw[left]
    raw[inside] = np.where(wrapped & (frac >= 0.5), from_right, from_left)
    code[inside] = np.where(t1 - t0 <= max_gap_ns, 0, 1)
    return cumulative, raw, code


def consumption(curve: Curve, bounds_ns: Int64s, max_gap_ns: int) -> Intervals:
    """Consumption of each interval between consecutive ``bounds_ns``."""
    bounds_ns = np.asarray(bounds_ns, dtype=np.int64)
    start_c, start_raw, start_code = _at(curve, bounds_ns[:-1], max_gap_ns, start_side=True)
    end_c, end_raw, end_code = _at(curve, bounds_ns[1:], max_gap_ns, start_side=False)
    code = np.maximum(start_code, end_code)
    used = np.where(code < 2, end_c - start_c, np.nan)
    # Tiny negatives from float rounding of an unchanged register read as 0.
    used = np.where(np.abs(used) < 1e-12, 0.0, used)
    if curve.delta:
        start_raw = np.full(len(used), np.nan)
        end_raw = np.full(len(used), np.nan)
    events: list[list[Event]] = [[] for _ in range(len(used))]
    if curve.events:
        # A reset or rollover shows at the first reading after the step, so it belongs to the
        # interval that ends at or after that reading; an exchange to the one it starts.
        times = np.array([e.time_ns for e in curve.events], dtype=np.int64)
        after = np.array([e.kind == "exchange" for e in curve.events])
        where = np.where(
            after,
            np.searchsorted(bounds_ns, times, side="right") - 1,
            np.searchsorted(bounds_ns, times, side="left") - 1,
        )
        for event, i in zip(curve.events, where.tolist(), strict=True):
            if 0 <= i < len(used):
                events[i].append(event)
    return Intervals(
        bounds_ns,
        used,
        np.where(start_code < 2, start_raw, np.nan),
        np.where(end_code < 2, end_raw, np.nan),
        _STATUS[code],
        tuple(tuple(e) for e in events),
    )


@dataclass(frozen=True)
class RegisterValue:
    """The register at one instant, and the readings it came from."""

    value: float
    status: str  # measured (a reading within the expected interval) | interpolated
    from_ns: tuple[int, ...]
    from_values: tuple[float, ...]


def register_at(curve: Curve, at_ns: int, expected_interval_ns: int) -> RegisterValue | None:
    """The meter's register at ``at_ns``; None before the first or after the last reading."""
    times = curve.times_ns
    if curve.delta or len(times) == 0 or at_ns < times[0] or at_ns > times[-1]:
        return None
    _, raw, _ = _at(curve, np.array([at_ns]), 0, start_side=False)
    right = int(np.searchsorted(times, at_ns, side="left"))
    sources = [right] if times[right] == at_ns else [right - 1, right]
    nearest = int(np.min(np.abs(times[sources] - at_ns)))
    status = "measured" if nearest <= expected_interval_ns else "interpolated"
    return RegisterValue(
        float(raw[0]),
        status,
        tuple(int(times[i]) for i in sources),
        tuple(float(curve.raw[i]) for i in sources),
    )
