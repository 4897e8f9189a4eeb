"""The web view's pages: fleet list, meter page, dead letters (Jinja2, server-rendered)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from api.auth import caller_of, require_scope
from api.consumption import MeteringError, Window, config_for, device_report
from api.deps import OptionsDep, StoreDep
from api.params import parse_zone
from api.web.chart import consumption_svg
from api.web.views import CHART_INTERVALS, RANGES, age, fleet_rows, matches, register_unit
from storage.base import DeviceSummary

__all__ = ["TEMPLATES", "router"]

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")
TEMPLATES.env.filters["age"] = age
router = APIRouter(include_in_schema=False)

_RECENT = 20  # rows of the readings, uplinks and dead-letter tables on a meter page
_DEAD_LETTER_SCAN = 5000  # newest dead letters searched for one device's


def _page(request: Request, name: str, **context: Any) -> HTMLResponse:
    context.setdefault("now", datetime.now(UTC))
    return TEMPLATES.TemplateResponse(request, name, context)


@router.get("/", response_class=HTMLResponse, dependencies=[require_scope("read")])
def fleet(
    request: Request,
    store: StoreDep,
    options: OptionsDep,
    q: str = "",
    medium: str = "",
    site: str = "",
) -> HTMLResponse:
    """Every meter: register, last seen against its interval, battery, link."""
    now = datetime.now(UTC)  # the viewer's clock: only for "how long ago", never stored
    rows = fleet_rows(store.devices(), options.meters, now)
    shown = [r for r in rows if matches(r, q, medium, site)]
    return _page(
        request,
        "fleet.html",
        rows=shown,
        total=len(rows),
        q=q,
        medium=medium,
        site=site,
        media=sorted({r.summary.medium for r in rows}),
        sites=sorted({r.site for r in rows if r.site}),
        register_unit=register_unit,
        now=now,
    )


@router.get("/meters/{device}", response_class=HTMLResponse, dependencies=[require_scope("read")])
def meter(
    request: Request,
    device: str,
    store: StoreDep,
    options: OptionsDep,
    range_: Annotated[str, Query(alias="range")] = "31d",
    interval: str = "",
) -> HTMLResponse:
    """One meter: register, consumption chart, readings, link quality, uplinks, dead letters."""
    summary = store.device(device)
    if summary is None:
        raise HTTPException(404, f"device {device!r} not found")
    if range_ not in RANGES:
        raise HTTPException(422, f"range must be one of {', '.join(RANGES)}")
    span, default_interval = RANGES[range_]
    interval = interval or default_interval
    if interval not in CHART_INTERVALS:
        raise HTTPException(422, f"interval must be one of {', '.join(CHART_INTERVALS)}")
    config = config_for(device, summary.decoder, options.meters)
    zone = parse_zone(config.timezone or options.timezone.key)
    end = datetime.now(UTC)
    chart = _chart(store, summary, config, Window(end - span, end, interval, zone))
    readings = store.readings(device, end - timedelta(days=7), end + timedelta(days=1))
    # Raw payloads only for a caller with the `raw` scope (a `read` key sees the readings).
    raw = caller_of(request).allows("raw")
    letters = (
        [d for d in store.dead_letters(_DEAD_LETTER_SCAN) if d.device == device] if raw else []
    )
    return _page(
        request,
        "meter.html",
        s=summary,
        site=config.tags.get("site", ""),
        meter=config.meter or summary.meter,
        chart=chart,
        range_=range_,
        interval=interval,
        ranges=list(RANGES),
        intervals=CHART_INTERVALS,
        readings=readings[-_RECENT:][::-1],
        uplinks=store.raw_uplinks(device, end - timedelta(days=2), limit=10_000)[-_RECENT:][::-1]
        if raw
        else [],
        raw=raw,
        letters=letters[:_RECENT],
        zone=zone,
    )


def _chart(store: Any, summary: DeviceSummary, config: Any, window: Window) -> dict[str, Any]:
    """The consumption report of the window as an SVG bar chart and its figures."""
    try:
        report = device_report(store, summary, config, window)
    except MeteringError as exc:
        return {"error": str(exc)}
    items = list(report.items())
    starts = [datetime.fromisoformat(i["start"]) for i in items]
    values = [i["consumption"] for i in items]
    unit = register_unit(report.field)
    return {
        "svg": consumption_svg(starts, values, window.interval, unit),
        "field": report.field,
        "unit": unit,
        "total": report.total,
        "measured_sum": sum(v for v in values if v is not None),
        "bars": sum(v is not None for v in values),
        "intervals": len(items),
        "from": window.start.isoformat(),
        "to": window.end.isoformat(),
        "register": summary.last_reading.get(report.field),
    }


@router.get("/dead-letters", response_class=HTMLResponse, dependencies=[require_scope("raw")])
def dead_letters(request: Request, store: StoreDep, reason: str = "") -> HTMLResponse:
    """The newest messages that did not become readings, with their reason."""
    letters = store.dead_letters(1000)
    reasons = sorted({d.reason for d in letters})
    shown = [d for d in letters if not reason or d.reason == reason]
    return _page(request, "dead_letters.html", letters=shown, reasons=reasons, reason=reason)
