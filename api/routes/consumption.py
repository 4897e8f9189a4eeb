"""Consumption per local calendar interval, key-date register reads, and the fleet's consumption.

JSON by default; CSV with ``Accept: text/csv`` or ``format=csv``. The fleet is streamed device
by device, never built whole in memory.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from api.auth import require_scope
from api.consumption import (
    DEFAULT_SPAN,
    DeviceReport,
    MeteringError,
    Window,
    config_for,
    device_report,
    fleet_reports,
    register_read,
)
from api.deps import OptionsDep, StoreDep
from api.params import check_device_id, parse_time, parse_zone
from api.routes.devices import require_device
from metering.calendar import INTERVALS
from metering.meter import MeterConfig
from storage.base import DeviceSummary, Store

router = APIRouter(prefix="/api/v1", tags=["consumption"], dependencies=[require_scope("read")])

CSV_COLUMNS = (
    "device",
    "meter",
    "field",
    "unit",
    "start",
    "end",
    "consumption",
    "start_reading",
    "end_reading",
    "status",
    "events",
)

_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "device never seen, or no reading around the key date"},
    422: {"description": "bad parameter (the detail says which and why)"},
}

Interval = Annotated[
    str, Query(description=f"one of {', '.join(INTERVALS)} (local calendar intervals)")
]
From = Annotated[
    str | None,
    Query(alias="from", description="RFC 3339, or a date = local midnight; default: see `to`"),
]
To = Annotated[str | None, Query(alias="to", description="RFC 3339 or a date; default: now")]
Zone = Annotated[
    str | None,
    Query(description="IANA zone of the intervals; default: the device's, else the site's"),
]
Field = Annotated[
    str | None, Query(description="register field; default: the medium's billing register")
]
Format = Annotated[str | None, Query(description="`csv` for CSV (or send Accept: text/csv)")]


def _fail(exc: MeteringError | ValueError) -> HTTPException:
    return HTTPException(exc.status if isinstance(exc, MeteringError) else 422, str(exc))


def _window(start: str | None, end: str | None, interval: str, tz: ZoneInfo) -> Window:
    if interval not in INTERVALS:
        raise HTTPException(422, f"interval must be one of {', '.join(INTERVALS)}")
    try:
        stop = parse_time(end, tz, "to") if end else datetime.now(UTC)
        begin = parse_time(start, tz, "from") if start else stop - DEFAULT_SPAN[interval]
    except ValueError as exc:
        raise _fail(exc) from None
    if begin >= stop:
        raise HTTPException(422, f"'from' ({begin.isoformat()}) must be before 'to'")
    return Window(begin, stop, interval, tz)


def _zone(name: str | None, config: MeterConfig | None, site: ZoneInfo) -> ZoneInfo:
    try:
        return parse_zone(name or (config.timezone if config else "") or site.key)
    except ValueError as exc:
        raise _fail(exc) from None


def _device(store: Store, device_id: str) -> DeviceSummary:
    """The device by its id, DevEUI or meter number; 404 if none."""
    return require_device(store, check_device_id(device_id))


def _wants_csv(request: Request, fmt: str | None) -> bool:
    if fmt is not None:
        if fmt not in ("csv", "json"):
            raise HTTPException(422, "format must be csv or json")
        return fmt == "csv"
    return "text/csv" in request.headers.get("accept", "")


def _csv_rows(reports: Iterable[DeviceReport]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for report in reports:
        for item in report.items():
            events = "; ".join(f"{e['kind']} at {e['at']}" for e in item["events"])
            writer.writerow(
                [report.device, report.meter, report.field, report.header()["unit"]]
                + ["" if item[k] is None else item[k] for k in CSV_COLUMNS[4:10]]
                + [events]
            )
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()


def _csv(reports: Iterable[DeviceReport], name: str) -> StreamingResponse:
    return StreamingResponse(
        _csv_rows(reports),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


@router.get("/devices/{device_id}/consumption", responses=_ERRORS)
def device_consumption(
    device_id: str,
    request: Request,
    store: StoreDep,
    options: OptionsDep,
    interval: Interval = "day",
    start: From = None,
    end: To = None,
    tz: Zone = None,
    field: Field = None,
    format: Format = None,
) -> Response:
    """Consumption of one register per local calendar interval (DST days have 23 or 25 hours).

    Each item gives the register at its bounds (interpolated between the readings on either side
    when none lies on the bound) and a status: `measured`, `estimated` (a bound placed across a
    gap longer than 3 × the expected interval) or `incomplete` (outside the readings: no value).
    Intervals add up exactly to their union. Resets, rollovers and meter exchanges are listed in
    the item's `events`; readings dropped as outliers or as the wrong meter around an exchange
    are counted in `ignored_readings`.
    """
    summary = _device(store, device_id)
    config = options.meters.get(summary.device)
    window = _window(start, end, interval, _zone(tz, config, options.timezone))
    try:
        report = device_report(
            store,
            summary,
            config_for(summary.device, summary.decoder, options.meters),
            window,
            field,
        )
    except MeteringError as exc:
        raise _fail(exc) from None
    if _wants_csv(request, format):
        return _csv([report], f"{device_id}-{interval}")
    return JSONResponse(report.as_json())


@router.get("/devices/{device_id}/register", responses=_ERRORS)
def device_register(
    device_id: str,
    store: StoreDep,
    options: OptionsDep,
    at: Annotated[str, Query(description="RFC 3339, or a date = local midnight (key date)")],
    tz: Zone = None,
    field: Field = None,
) -> dict[str, Any]:
    """The register at an instant (a key-date read), and the readings it was computed from.

    `measured` when a reading lies within the expected interval of `at`, `interpolated` between
    the readings on either side otherwise, `meter_key_date` when the meter itself reported the
    register for that instant (a set-day value). Outside the readings: 404, never extrapolated.
    """
    summary = _device(store, device_id)
    config = options.meters.get(summary.device)
    zone = _zone(tz, config, options.timezone)
    try:
        moment = parse_time(at, zone, "at").astimezone(zone)
        return register_read(
            store,
            summary,
            config_for(summary.device, summary.decoder, options.meters),
            moment,
            field,
        )
    except (MeteringError, ValueError) as exc:
        raise _fail(exc) from None


def _json_stream(head: dict[str, Any], reports: Iterable[DeviceReport]) -> Iterator[str]:
    yield json.dumps(head)[:-1] + ', "devices": ['
    for n, report in enumerate(reports):
        yield ("," if n else "") + json.dumps(report.as_json())
    yield "]}"


@router.get("/consumption", responses=_ERRORS)
def fleet_consumption(
    request: Request,
    store: StoreDep,
    options: OptionsDep,
    interval: Interval = "day",
    start: From = None,
    end: To = None,
    medium: Annotated[str | None, Query(description="electricity, water, heat or gas")] = None,
    site: Annotated[str | None, Query(description="the registry's site tag")] = None,
    tz: Annotated[str | None, Query(description="IANA zone; default: the site's")] = None,
    field: Field = None,
    format: Format = None,
) -> Response:
    """Consumption of every device per interval (one zone for all, so intervals line up).

    Streamed device by device as JSON (`{"interval", "tz", "from", "to", "devices": [...]}`,
    each device as in the single-device answer) or CSV, one row per device and interval.
    """
    window = _window(start, end, interval, _zone(tz, None, options.timezone))
    reports = fleet_reports(store, options.meters, window, medium=medium, site=site, field=field)
    try:  # the first report validates the request before the response starts
        first = next(reports, None)
    except MeteringError as exc:
        raise _fail(exc) from None
    chain = [] if first is None else [first]

    def all_reports() -> Iterator[DeviceReport]:
        yield from chain
        yield from reports

    if _wants_csv(request, format):
        return _csv(all_reports(), f"consumption-{interval}")
    head = {
        "interval": interval,
        "tz": str(window.tz),
        "from": window.start.astimezone(window.tz).isoformat(),
        "to": window.end.astimezone(window.tz).isoformat(),
    }
    return StreamingResponse(_json_stream(head, all_reports()), media_type="application/json")
