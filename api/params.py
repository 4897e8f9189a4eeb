"""Query and path parameters every route shares: times, device ids, and no unknown parameters."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import HTTPException, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

__all__ = [
    "EARLIEST",
    "LATEST",
    "check_device_id",
    "parse_time",
    "parse_zone",
    "reject_unknown_query",
]

# The instants both stores can hold: InfluxDB keeps int64 nanoseconds since 1970
# (1677-09-21T00:12:43Z to 2262-04-11T23:47:16Z); whole days inside that range.
EARLIEST = datetime(1677, 9, 22, tzinfo=UTC)
LATEST = datetime(2262, 4, 11, tzinfo=UTC)

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# RFC 3339 date-time: a 'T' or ' ' between date and time, an offset or Z is required.
_DATE_TIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})$"
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def parse_zone(name: str) -> ZoneInfo:
    """An IANA time zone by name; ValueError naming it otherwise."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r} (use an IANA name like Europe/Berlin)"
        ) from None


def parse_time(value: str, tz: ZoneInfo, name: str = "") -> datetime:
    """An RFC 3339 time, or a date alone meaning its local midnight in ``tz``; in UTC.

    >>> parse_time("2025-11-20", ZoneInfo("Europe/Berlin")).isoformat()
    '2025-11-19T23:00:00+00:00'
    >>> parse_time("2025-11-20T10:00:00+01:00", ZoneInfo("UTC")).isoformat()
    '2025-11-20T09:00:00+00:00'

    Raises ValueError, saying what is expected, for anything else: no offset, not a date,
    or outside the range the stores can hold (1677-09-22 to 2262-04-11).
    """
    text = value.strip()
    try:
        if _DATE.match(text):
            local = datetime.combine(date.fromisoformat(text), time(), tzinfo=tz)
            # A day that starts in a DST gap (none in Europe) still gets a real instant.
            parsed = local.astimezone(UTC)
        elif _DATE_TIME.match(text):
            parsed = datetime.fromisoformat(text.replace("z", "Z")).astimezone(UTC)
        else:
            raise ValueError("format")
    except (ValueError, OverflowError):
        raise ValueError(
            f"{f'{name}: ' if name else ''}"
            f"{value!r} is not an RFC 3339 time with an offset (2025-11-20T10:00:00Z) or a date"
            f" (2025-11-20, local midnight in {tz.key})"
        ) from None
    if not EARLIEST <= parsed <= LATEST:
        raise ValueError(
            f"{f'{name}: ' if name else ''}"
            f"{value!r} is outside the storable range {EARLIEST.date()} to {LATEST.date()}"
        )
    return parsed


def check_device_id(device_id: str) -> str:
    """A device id as a path segment: no control characters (CR, LF, NUL), at most 256 chars."""
    if _CONTROL.search(device_id):
        raise HTTPException(422, "a device id has no control characters (CR, LF, NUL, …)")
    if len(device_id) > 256:
        raise HTTPException(422, "a device id has at most 256 characters")
    return device_id


def reject_unknown_query(request: Request) -> None:
    """A query parameter the route does not take is a 422 (a typo must not be ignored)."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not request.query_params:
        return
    known = _query_names(route.dependant)
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        raise HTTPException(
            422,
            f"unknown query parameter(s) {', '.join(unknown)};"
            f" this route takes {', '.join(sorted(known)) or 'none'}",
        )


def _query_names(dependant: Dependant) -> set[str]:
    """The query parameters a route takes, its dependencies' included."""
    names = {p.alias for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names
