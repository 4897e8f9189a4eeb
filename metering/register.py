"""A meter's register readings → one continuous cumulative curve that consumption is read from.

Consumption between two instants is ``C(b) - C(a)`` of this curve, so intervals that share a bound
add up exactly to their union: nothing is lost or counted twice at a bound. The curve is built
from the readings by these rules (each worked by hand in ``tests/metering``):

- duplicates collapse, out-of-order readings are sorted (the same readings in any order give the
  same curve);
- **rollover**: a drop that the register's declared width explains (99,999.9 → 0.3 with a
  rollover of 100,000) continues the curve: +0.4;
- **dips** within the tolerance (jitter, backflow on a one-way register) are held at the highest
  value seen, so the recovery is not consumed twice: 100, 99.99, 100.02 → 0.02;
- **outliers**: a reading that leaves the register's path and comes back within a few readings
  (a brief zero after a reboot, a mis-decoded 672,137 m³) is dropped, not turned into a spike;
- **reset**: a drop that does not come back starts a new segment; the step itself consumes
  nothing (we do not know when or from what the register restarted), and it is reported;
- **meter exchange**: readings up to the exchange belong to the old meter, which ends at its
  ``old_end`` register; the new meter starts at ``new_start``; the curve runs on across;
- **delta counts** (a device that clears its counter after each report) are summed: 5, 3, 4 →
  cumulative 0, 3, 7 (the first count belongs to the time before the first reading).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["Curve", "Event", "ExchangePoint", "RegisterModel", "build_curve", "default_tolerance"]

Int64s = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]

# A drop is a glitch if the register is back on its path within this many readings.
LOOKAHEAD = 3
# Default dip tolerance: 0.01 % of the register, at least 0.001 of its unit (1 L, 1 Wh).
_REL_TOLERANCE = 1e-4
_ABS_TOLERANCE = 1e-3


def default_tolerance(value: float) -> float:
    """How far a one-way register may dip without it being a reset: 0.01 %, at least 0.001."""
    return max(_ABS_TOLERANCE, _REL_TOLERANCE * abs(value))


@dataclass(frozen=True)
class RegisterModel:
    """How one register of one device behaves (decoder declaration + registry overrides)."""

    rollover: float | None = None  # the value at which it wraps back to 0
    delta: bool = False  # counts since the previous report, summed instead of differenced
    tolerance: float | None = None  # dip tolerance in the field's unit; None: default_tolerance


@dataclass(frozen=True)
class ExchangePoint:
    """A meter exchange for one register: the old meter's last and the new meter's first value."""

    at_ns: int
    old_end: float
    new_start: float
    new_meter: str = ""


@dataclass(frozen=True)
class Event:
    """What the curve accounted for: ``reset``, ``rollover``, ``exchange`` or ``outlier``."""

    kind: str
    time_ns: int
    detail: str


@dataclass(frozen=True)
class Curve:
    """The kept points of a register: time, the meter's own value, and the cumulative value.

    ``raw`` is what the meter displayed (``None``-free: NaN for delta counters, which have no
    register); ``cumulative`` runs on across rollovers, resets and exchanges. Two points may share
    a time at an exchange: the old meter's end and the new meter's start.
    """

    times_ns: Int64s
    raw: Floats
    cumulative: Floats
    events: tuple[Event, ...] = ()
    ignored: int = 0  # readings dropped as outliers (incl. the wrong meter around an exchange)
    duplicates: int = 0
    delta: bool = False

    def __len__(self) -> int:
        return len(self.times_ns)


def _sorted_unique(times: Int64s, values: Floats) -> tuple[Int64s, Floats, int]:
    """Sort by time; of several readings at one instant keep the highest (deterministic)."""
    finite = np.isfinite(values)
    times, values = times[finite], values[finite]
    order = np.lexsort((values, times))
    times, values = times[order], values[order]
    if len(times) < 2:
        return times, values, 0
    last_of_time = np.append(times[1:] != times[:-1], True)
    return times[last_of_time], values[last_of_time], int(len(times) - last_of_time.sum())


def _clean(
    times: Int64s, values: Floats, model: RegisterModel
) -> tuple[Floats, npt.NDArray[np.bool_], list[Event]]:
    """Offsets that make the register continuous, which readings to keep, and the events.

    The common case (a register that never drops beyond its tolerance) is one vectorised pass;
    a Python walk runs only when some reading drops.
    """
    n = len(values)
    keep = np.ones(n, dtype=bool)
    offsets = np.zeros(n)
    if n < 2:
        return offsets, keep, []
    running = np.maximum.accumulate(values)
    tolerance = (
        np.full(n, model.tolerance)
        if model.tolerance is not None
        else np.maximum(_ABS_TOLERANCE, _REL_TOLERANCE * np.abs(running))
    )
    if not np.any(values[1:] < running[:-1] - tolerance[:-1]):
        return offsets, keep, []
    return _walk(times, values, model)


def _tol(model: RegisterModel, value: float) -> float:
    return model.tolerance if model.tolerance is not None else default_tolerance(value)


def _walk(
    times: Int64s, values: Floats, model: RegisterModel
) -> tuple[Floats, npt.NDArray[np.bool_], list[Event]]:
    """The general case: rollovers, outliers and resets decided reading by reading."""
    vals = values.tolist()
    n = len(vals)
    keep = [True] * n
    offsets = [0.0] * n
    events: list[Event] = []
    offset = 0.0
    ref = vals[0]  # the highest kept raw value of the current segment
    i = 1
    while i < n:
        v = vals[i]
        tol = _tol(model, ref)
        if v >= ref - tol:
            if v > ref + tol and _spike(vals, i, ref, model):
                keep[i] = False
                events.append(Event("outlier", int(times[i]), f"{v:g} off the path at {ref:g}"))
                i += 1
                continue
            ref = max(ref, v)
            offsets[i] = offset
            i += 1
            continue
        rollover = model.rollover
        if rollover is not None and 0 <= v + rollover - ref < rollover / 2:
            offset += rollover
            events.append(Event("rollover", int(times[i]), f"{ref:g} → {v:g} at {rollover:g}"))
            ref = v
            offsets[i] = offset
            i += 1
            continue
        back = next(
            (j for j in range(i + 1, min(n, i + 1 + LOOKAHEAD)) if vals[j] >= ref - tol), None
        )
        if back is not None or n - i <= LOOKAHEAD - 1:
            # Back on the path soon (a glitch), or too few readings after it to tell: drop.
            stop = back if back is not None else n
            for j in range(i, stop):
                keep[j] = False
                events.append(Event("outlier", int(times[j]), f"{vals[j]:g} below {ref:g}"))
            i = stop
            continue
        offset += ref - v  # the reset step consumes nothing
        events.append(Event("reset", int(times[i]), f"register fell from {ref:g} to {v:g}"))
        ref = v
        offsets[i] = offset
        i += 1
    return np.asarray(offsets), np.asarray(keep), events


def _spike(vals: list[float], i: int, ref: float, model: RegisterModel) -> bool:
    """Whether the rise at ``i`` falls back onto the path within a few readings."""
    high = vals[i]
    for j in range(i + 1, min(len(vals), i + 1 + LOOKAHEAD)):
        if vals[j] < high - _tol(model, high):
            return vals[j] >= ref - _tol(model, ref)
        if vals[j] > high + _tol(model, high):
            return False
    return False


def _segment(
    times: Int64s, values: Floats, model: RegisterModel
) -> tuple[Int64s, Floats, Floats, list[Event], int]:
    """One meter's readings → kept times, raw values, cumulative values (from the first value)."""
    offsets, keep, events = _clean(times, values, model)
    cumulative = values + offsets
    times, raw, cumulative = times[keep], values[keep], cumulative[keep]
    # Dips within tolerance are held at the highest value so far: one-way, no double count.
    cumulative = np.maximum.accumulate(cumulative) if len(cumulative) else cumulative
    return times, raw, cumulative, events, int((~keep).sum())


def _run_of_other_meter(values: Floats, other: float, own: float) -> int:
    """How many leading values read closer to the other meter's register than to this one's.

    After an exchange the old meter may still report for a while (and before it, the new one may
    already): those readings are the wrong meter's and are ignored, not consumed.
    """
    closer = np.abs(values - other) < np.abs(values - own)
    return len(values) if closer.all() else int(np.argmin(closer))


def build_curve(
    times_ns: Int64s,
    values: Floats,
    model: RegisterModel = RegisterModel(),
    exchanges: Sequence[ExchangePoint] = (),
) -> Curve:
    """The cumulative curve of one register from its readings (any order, duplicates allowed)."""
    times, vals, duplicates = _sorted_unique(
        np.asarray(times_ns, dtype=np.int64), np.asarray(values, dtype=np.float64)
    )
    if model.delta:
        # Each count belongs to the time since the previous report; the first one to before.
        cumulative = np.concatenate(([0.0], np.cumsum(vals[1:]))) if len(vals) else vals
        return Curve(
            times, np.full(len(times), np.nan), cumulative, duplicates=duplicates, delta=True
        )
    parts_t: list[Int64s] = []
    parts_raw: list[Floats] = []
    parts_cum: list[Floats] = []
    events: list[Event] = []
    ignored = 0
    carried = 0.0  # cumulative value at the start of the current meter
    ordered = sorted(exchanges, key=lambda e: e.at_ns)
    # Meter k reads between exchange k-1 (from its new_start) and exchange k (to its old_end).
    for before, after in zip([None, *ordered], [*ordered, None], strict=True):
        mask = np.ones(len(times), dtype=bool)
        if before is not None:
            mask &= times > before.at_ns
        if after is not None:
            mask &= times < after.at_ns
        seg_t, seg_v = times[mask], vals[mask]
        if before is not None:  # the old meter still reporting after the exchange
            skip = _run_of_other_meter(seg_v, before.old_end, before.new_start)
            seg_t = np.insert(seg_t[skip:], 0, before.at_ns)
            seg_v = np.insert(seg_v[skip:], 0, before.new_start)
            ignored += skip
        if after is not None:  # the new meter already reporting before it
            cut = len(seg_v) - _run_of_other_meter(seg_v[::-1], after.new_start, after.old_end)
            ignored += len(seg_v) - cut
            seg_t = np.append(seg_t[:cut], after.at_ns)
            seg_v = np.append(seg_v[:cut], after.old_end)
        t, raw, cum, ev, dropped = _segment(seg_t, seg_v, model)
        parts_t.append(t)
        parts_raw.append(raw)
        parts_cum.append(cum - cum[0] + carried if len(cum) else cum)
        carried = float(parts_cum[-1][-1]) if len(cum) else carried
        events += ev
        ignored += dropped
        if after is not None:
            new_meter = f" {after.new_meter}" if after.new_meter else ""
            events.append(
                Event(
                    "exchange",
                    after.at_ns,
                    f"old meter ended at {after.old_end:g}, new meter{new_meter}"
                    f" started at {after.new_start:g}",
                )
            )
    # Readings exactly at an exchange instant are replaced by the exchange's two values.
    at_exchange = int(np.isin(times, [e.at_ns for e in exchanges]).sum())
    return Curve(
        np.concatenate(parts_t),
        np.concatenate(parts_raw),
        np.concatenate(parts_cum),
        tuple(sorted(events, key=lambda e: e.time_ns)),
        ignored=ignored + at_exchange,
        duplicates=duplicates,
    )
