"""Alarms: list them (active, cleared, all; by device, kind, site), and acknowledge one."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field

from api.auth import require_scope
from api.deps import AlarmsDep, OptionsDep
from api.params import parse_time, parse_zone
from storage.alarms import Alarm

router = APIRouter(prefix="/api/v1", tags=["alarms"])


class AlarmOut(BaseModel):
    """One alarm: active until its condition ends (cleared); acknowledged independently."""

    id: int
    device: str
    kind: str = Field(description="leak, burst, backflow, tamper, dry_pipe, low_battery, ...")
    state: Literal["active", "cleared"]
    medium: str
    site: str
    raised_at: datetime = Field(description="when the condition began, by the data's own time")
    last_seen_at: datetime = Field(description="the newest time the condition was seen")
    cleared_at: datetime | None
    count: int = Field(description="how often the condition was seen while active")
    reason: str
    value: float | None = Field(description="the figure behind the reason, if any")
    clear_reason: str
    acknowledged: bool
    acked_at: datetime | None
    acked_by: str
    ack_note: str


class AckIn(BaseModel):
    by: str = Field(min_length=1, max_length=200, description="who acknowledges")
    note: str = Field("", max_length=2000)


def alarm_out(alarm: Alarm) -> AlarmOut:
    return AlarmOut.model_validate(alarm.to_json())


def _since(value: str | None, site_zone: str) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_time(value, parse_zone(site_zone), "since")
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None


State = Annotated[Literal["active", "cleared", "all"], Query(description="default: active")]
Since = Annotated[
    str | None,
    Query(description="only alarms that changed since: RFC 3339, or a date = local midnight"),
]
Limit = Annotated[int, Query(ge=1, le=10_000)]


@router.get("/alarms", dependencies=[require_scope("read")])
def list_alarms(
    alarms: AlarmsDep,
    options: OptionsDep,
    state: State = "active",
    device: str | None = None,
    kind: str | None = None,
    site: str | None = None,
    since: Since = None,
    limit: Limit = 1000,
) -> list[AlarmOut]:
    """Alarms, newest raised first."""
    changed = _since(since, options.timezone.key)
    found = alarms.alarms(
        state=state, device=device, kind=kind, site=site, since=changed, limit=limit
    )
    return [alarm_out(a) for a in found]


@router.get("/devices/{device_id}/alarms", dependencies=[require_scope("read")])
def device_alarms(
    device_id: str,
    alarms: AlarmsDep,
    options: OptionsDep,
    state: Annotated[Literal["active", "cleared", "all"], Query()] = "all",
    since: Since = None,
    limit: Limit = 1000,
) -> list[AlarmOut]:
    """One device's alarms (default: active and cleared), newest raised first."""
    changed = _since(since, options.timezone.key)
    found = alarms.alarms(state=state, device=device_id, since=changed, limit=limit)
    return [alarm_out(a) for a in found]


@router.post(
    "/alarms/{alarm_id}/ack",
    responses={404: {"description": "no such alarm"}},
    dependencies=[require_scope("alarms")],
)
def ack_alarm(alarm_id: int, body: AckIn, alarms: AlarmsDep) -> AlarmOut:
    """Acknowledge an alarm (it stays active until its condition ends); notifies like a raise."""
    acked = alarms.ack(alarm_id, body.by, body.note, datetime.now(UTC))
    if acked is None:
        raise HTTPException(404, f"alarm {alarm_id} not found; GET /api/v1/alarms?state=all")
    return alarm_out(acked)
