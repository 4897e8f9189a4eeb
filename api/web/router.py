"""The web view's pages: fleet list, meter page, alarms, dead letters (Jinja2, server-rendered)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError

from api.auth import caller_of, require_scope
from api.consumption import MeteringError, Window, config_for, device_report
from api.deps import ApiOptions, OptionsDep, StoreDep
from api.params import parse_zone
from api.routes.alarms import AckIn
from api.web.chart import consumption_svg
from api.web.views import (
    ALARM_STATES,
    CHART_INTERVALS,
    RANGES,
    active_first,
    age,
    by_device,
    fleet_rows,
    matches,
    register_unit,
)
from metering.alarms import KINDS
from storage.alarms import Alarm, AlarmStore
from storage.base import DeviceSummary, Store, StoreError

__all__ = ["TEMPLATES", "router"]


def _alarm_store(request: Request) -> AlarmStore | None:
    """The app's alarm tables, or None when this process has none (the pages say so)."""
    alarms: AlarmStore | None = getattr(request.app.state, "alarms", None)
    return alarms


def _navigation(request: Request) -> dict[str, Any]:
    """What the header of every page shows: the number of active alarms (None: unknown)."""
    alarms = _alarm_store(request)
    try:
        active = sum(alarms.active_counts().values()) if alarms is not None else None
    except StoreError:
        active = None
    return {"active_alarms": active}


TEMPLATES = Jinja2Templates(
    directory=Path(__file__).parent / "templates", context_processors=[_navigation]
)
TEMPLATES.env.filters["age"] = age
router = APIRouter(include_in_schema=False)

_RECENT = 20  # rows of the readings, uplinks, alarm and dead-letter tables on a meter page
_DEAD_LETTER_SCAN = 5000  # newest dead letters searched for one device's
_ALARM_ROWS = 500  # newest alarms of each state on the alarms page


def _page(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("now", datetime.now(UTC))
    return TEMPLATES.TemplateResponse(request, name, context, status_code=status_code)


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
    alarms = _alarm_store(request)
    active = by_device(_listed(alarms, "active")) if alarms is not None else {}
    rows = fleet_rows(store.devices(), options.meters, now, active)
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
    acked: int | None = None,
) -> HTMLResponse:
    """One meter: register, chart, alarms, readings, link quality, uplinks, dead letters."""
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
    alarms = _alarm_store(request)
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
        alarms=None if alarms is None else _listed(alarms, "all", device=device, limit=_RECENT),
        acked=_alarm_or_none(alarms, acked),
        kinds=KINDS,
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


@router.get("/alarms", response_class=HTMLResponse, dependencies=[require_scope("read")])
def alarms_page(
    request: Request,
    store: StoreDep,
    options: OptionsDep,
    state: str = "all",
    kind: str = "",
    acked: int | None = None,
) -> HTMLResponse:
    """Alarms, active first, by state and kind, each with a form to acknowledge it."""
    return _alarms_page(request, store, options, state, kind, acked)


@router.post(
    "/alarms",
    response_class=HTMLResponse,
    response_model=None,
    dependencies=[require_scope("alarms")],
)
def ack_alarm(
    request: Request,
    store: StoreDep,
    options: OptionsDep,
    alarm: Annotated[int, Form()],
    by: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
    state: Annotated[str, Form()] = "all",
    kind: Annotated[str, Form()] = "",
    back: Annotated[str, Form()] = "alarms",
) -> HTMLResponse | RedirectResponse:
    """Acknowledge one alarm (the alarm store's ack, as ``POST /api/v1/alarms/{id}/ack``), then
    show the page it was acknowledged on again (post/redirect/get)."""
    _same_origin(request)
    alarms = _alarm_store(request)
    if alarms is None:
        raise HTTPException(503, "alarms are not set up in this process")
    try:
        ack = AckIn(by=by.strip(), note=note.strip())
    except ValidationError as exc:
        problems = "; ".join(f"{e['loc'][-1]}: {e['msg']}" for e in exc.errors())
        error = f"alarm {alarm} was not acknowledged: {problems}"
        return _alarms_page(request, store, options, state, kind, None, error=error)
    done = alarms.ack(alarm, ack.by, ack.note, datetime.now(UTC))
    if done is None:
        raise HTTPException(404, f"alarm {alarm} not found")
    if back == "meter":
        url = request.url_for("meter", device=done.device).include_query_params(acked=done.id)
    else:
        query = {"state": state, "acked": done.id} | ({"kind": kind} if kind else {})
        url = request.url_for("alarms_page").include_query_params(**query)
    return RedirectResponse(f"{url}#alarm-{done.id}", status_code=303)


def _same_origin(request: Request) -> None:
    """A form posted by another site's page is refused (browsers send ``Origin`` with a POST)."""
    origin = request.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != request.headers.get("host"):
        raise HTTPException(403, f"a form from {origin} may not acknowledge alarms here")


def _alarms_page(
    request: Request,
    store: Store,
    options: ApiOptions,
    state: str,
    kind: str,
    acked: int | None,
    error: str = "",
) -> HTMLResponse:
    if state not in ALARM_STATES:
        raise HTTPException(422, f"state must be one of {', '.join(ALARM_STATES)}")
    if kind and kind not in KINDS:
        raise HTTPException(422, f"kind must be one of {', '.join(KINDS)}")
    alarms = _alarm_store(request)
    shown = [] if alarms is None else _listed(alarms, state, kind=kind or None)
    return _page(
        request,
        "alarms.html",
        status_code=422 if error else 200,
        alarms=shown,
        set_up=alarms is not None,
        state=state,
        kind=kind,
        states=ALARM_STATES,
        kinds=KINDS,
        meters={s.device: s.meter for s in store.devices()},
        acked=_alarm_or_none(alarms, acked),
        error=error,
        zone=options.timezone,
    )


def _listed(
    alarms: AlarmStore,
    state: str,
    *,
    kind: str | None = None,
    device: str | None = None,
    limit: int = _ALARM_ROWS,
) -> list[Alarm]:
    """Alarms of a state ("all": every active one before the newest cleared ones)."""
    states = ("active", "cleared") if state == "all" else (state,)
    found = [
        a for s in states for a in alarms.alarms(state=s, kind=kind, device=device, limit=limit)
    ]
    return active_first(found)


def _alarm_or_none(alarms: AlarmStore | None, alarm_id: int | None) -> Alarm | None:
    """The alarm just acknowledged, for the page's notice."""
    if alarms is None or alarm_id is None:
        return None
    return alarms.alarm(alarm_id)
