"""Local calendar intervals as UTC instants: days of 23 and 25 hours, local months and years.

Bounds are nanoseconds since the epoch (int64), the unit the store and ``register`` use.
>>> from zoneinfo import ZoneInfo
>>> b = interval_bounds(datetime(2026, 3, 29, tzinfo=ZoneInfo("Europe/Berlin")),
...                     datetime(2026, 3, 30, tzinfo=ZoneInfo("Europe/Berlin")), "day",
...                     ZoneInfo("Europe/Berlin"))
>>> int(b[1] - b[0]) // 3_600_000_000_000   # the spring DST day is 23 hours long
23
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo

import numpy as np
import numpy.typing as npt

__all__ = ["INTERVALS", "MAX_BOUNDS", "interval_bounds", "local_midnight", "to_ns"]

# Fixed-length intervals step in absolute time from a local-aligned start; calendar intervals
# step in local dates. A 15-minute or hour bound in a zone whose offsets are whole quarters of an
# hour (every zone in use today) falls on the local wall clock's quarter/hour either way.
_FIXED = {"15min": timedelta(minutes=15), "hour": timedelta(hours=1)}
INTERVALS = ("15min", "hour", "day", "month", "year")
MAX_BOUNDS = 200_001  # a request for more intervals than this is refused, not computed

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_ns(moment: datetime) -> int:
    """Nanoseconds since the epoch of an aware datetime (exact, no float rounding)."""
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def local_midnight(day: date, tz: tzinfo) -> datetime:
    """The instant a local calendar day starts (the earlier one if midnight repeats)."""
    return datetime.combine(day, time(0), tzinfo=tz)


def _floor(moment: datetime, interval: str, tz: tzinfo) -> datetime:
    """The start of the local interval containing ``moment``."""
    local = moment.astimezone(tz)
    if interval == "year":
        return local_midnight(date(local.year, 1, 1), tz)
    if interval == "month":
        return local_midnight(date(local.year, local.month, 1), tz)
    if interval == "day":
        return local_midnight(local.date(), tz)
    step = _FIXED[interval]
    wall = local.replace(tzinfo=None)
    midnight = datetime.combine(wall.date(), time(0))
    floored = midnight + ((wall - midnight) // step) * step
    # Back to an instant with the same offset the moment had (right inside a repeated hour).
    return (floored - local.utcoffset()).replace(tzinfo=UTC)  # type: ignore[operator]


def _next_start(start: datetime, interval: str, tz: tzinfo) -> datetime:
    """The start of the local calendar interval after the one starting at ``start``."""
    local = start.astimezone(tz)
    if interval == "year":
        return local_midnight(date(local.year + 1, 1, 1), tz)
    if interval == "month":
        year, month = divmod(local.month, 12)
        return local_midnight(date(local.year + year, month + 1, 1), tz)
    return local_midnight(local.date() + timedelta(days=1), tz)


def interval_bounds(
    start: datetime, end: datetime, interval: str, tz: tzinfo
) -> npt.NDArray[np.int64]:
    """The bounds of the local ``interval``s covering [start, end), as epoch nanoseconds.

    ``start`` is floored to the start of its local interval; the last bound is the first one at
    or after ``end``. n intervals have n + 1 bounds; each interval is [bound i, bound i + 1).
    """
    if interval not in INTERVALS:
        raise ValueError(f"interval must be one of {', '.join(INTERVALS)}, not {interval!r}")
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must carry a time zone")
    if end <= start:
        raise ValueError("the end must lie after the start")
    current = _floor(start, interval, tz)
    bounds = [to_ns(current)]
    end_ns = to_ns(end)
    if interval in _FIXED:
        step = to_ns(_EPOCH + _FIXED[interval])
        count = -(-(end_ns - bounds[0]) // step) + 1
        if count > MAX_BOUNDS:
            raise ValueError(f"more than {MAX_BOUNDS - 1} intervals: choose a longer interval")
        return bounds[0] + step * np.arange(count, dtype=np.int64)
    while bounds[-1] < end_ns:
        current = _next_start(current, interval, tz)
        bounds.append(to_ns(current))
        if len(bounds) > MAX_BOUNDS:
            raise ValueError(f"more than {MAX_BOUNDS - 1} intervals: choose a longer interval")
    return np.asarray(bounds, dtype=np.int64)
