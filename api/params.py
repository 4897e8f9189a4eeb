"""Query parameters people type: instants as RFC 3339 or a date alone (local midnight)."""

from __future__ import annotations

from datetime import date, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from metering.calendar import local_midnight

__all__ = ["MAX_TIME", "MIN_TIME", "parse_time", "parse_zone"]

# The instants both stores can hold (InfluxDB: int64 nanoseconds since 1970).
MIN_TIME = datetime.fromisoformat("1678-01-01T00:00:00+00:00")
MAX_TIME = datetime.fromisoformat("2261-12-31T00:00:00+00:00")


def parse_zone(name: str) -> ZoneInfo:
    """An IANA time zone by name; ValueError naming it otherwise."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r} (use an IANA name like Europe/Berlin)"
        ) from None


def parse_time(value: str, tz: tzinfo, name: str = "time") -> datetime:
    """``2027-01-01T00:00:00+01:00`` as given; ``2027-01-01`` as local midnight in ``tz``."""
    text = value.strip()
    try:
        if len(text) == 10:
            moment = local_midnight(date.fromisoformat(text), tz)
        else:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"'{name}' must be an RFC 3339 time or a date, e.g. 2027-01-01 or"
            f" 2027-01-01T00:00:00+01:00; got {value!r}"
        ) from None
    if moment.tzinfo is None:
        raise ValueError(f"'{name}' needs a UTC offset, e.g. 2027-01-01T00:00:00+01:00")
    try:
        inside = MIN_TIME <= moment <= MAX_TIME
    except OverflowError:  # year 1 or 9999 with an offset cannot even be compared
        inside = False
    if not inside:
        raise ValueError(f"'{name}' must lie between 1678 and 2261; got {value!r}")
    return moment
