"""The devices seen, their last reading and link quality, and their readings over time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from api.deps import StoreDep
from api.schemas import DeviceOut, FieldOut, ReadingOut, ReadingsOut
from decoders.core import VOCABULARY
from storage.base import DeviceSummary

router = APIRouter(prefix="/api/v1/devices", tags=["devices"])

DEFAULT_WINDOW = timedelta(days=7)


def device_out(summary: DeviceSummary) -> DeviceOut:
    last = None
    if summary.last_reading_at is not None:
        last = ReadingOut(
            time=summary.last_reading_at,
            measurement=summary.medium,
            values=dict(summary.last_reading),
        )
    return DeviceOut(
        device=summary.device,
        dev_eui=summary.dev_eui,
        decoder=summary.decoder,
        medium=summary.medium,
        meter=summary.meter,
        first_seen=summary.first_seen,
        last_seen=summary.last_seen,
        uplinks=summary.uplinks,
        last_f_cnt=summary.last_f_cnt,
        last_reading=last,
        battery_pct=summary.battery_pct,
        battery_v=summary.battery_v,
        rssi_dbm=summary.rssi_dbm,
        snr_db=summary.snr_db,
    )


def field_out(name: str) -> FieldOut:
    spec = VOCABULARY[name]
    return FieldOut(name=name, kind=spec.kind.value, unit=spec.unit, description=spec.description)


@router.get("")
def list_devices(store: StoreDep) -> list[DeviceOut]:
    """Every device seen, with last seen, last reading, battery, RSSI and SNR."""
    return [device_out(d) for d in store.devices()]


@router.get("/{device_id}", responses={404: {"description": "device never seen"}})
def get_device(device_id: str, store: StoreDep) -> DeviceOut:
    """One device."""
    summary = store.device(device_id)
    if summary is None:
        raise HTTPException(404, _unknown(device_id))
    return device_out(summary)


@router.get(
    "/{device_id}/readings",
    response_model_by_alias=True,
    responses={404: {"description": "device never seen"}, 422: {"description": "bad parameter"}},
)
def get_readings(
    device_id: str,
    store: StoreDep,
    start: Annotated[
        datetime | None, Query(alias="from", description="RFC 3339; default: `to` minus 7 days")
    ] = None,
    end: Annotated[datetime | None, Query(alias="to", description="RFC 3339; default: now")] = None,
    field: Annotated[
        list[str] | None,
        Query(description="field names to return (repeat or comma-separate); default: all"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100_000, description="most instants returned")] = 10_000,
) -> ReadingsOut:
    """A device's readings in [from, to), oldest first; each value's unit is in its name."""
    for name, value in (("from", start), ("to", end)):
        if value is not None and value.tzinfo is None:
            raise HTTPException(422, f"'{name}' needs a time zone, e.g. 2025-11-20T10:00:00Z")
    end = end or datetime.now(UTC)
    start = start or end - DEFAULT_WINDOW
    if start >= end:
        raise HTTPException(422, f"'from' ({start.isoformat()}) must be before 'to'")
    names = [n.strip() for item in field or [] for n in item.split(",") if n.strip()]
    unknown = [n for n in names if n not in VOCABULARY]
    if unknown:
        raise HTTPException(
            422, f"unknown field(s) {', '.join(unknown)}; see GET /api/v1/decoders for field names"
        )
    if store.device(device_id) is None:
        raise HTTPException(404, _unknown(device_id))
    rows = store.readings(device_id, start, end, names, limit + 1)
    seen = sorted({k for row in rows for k in row.values})
    return ReadingsOut(
        device=device_id,
        start=start,
        end=end,
        fields=[field_out(n) for n in seen if n in VOCABULARY],
        readings=[
            ReadingOut(time=r.time, measurement=r.measurement, values=dict(r.values))
            for r in rows[:limit]
        ],
        truncated=len(rows) > limit,
    )


def _unknown(device_id: str) -> str:
    return f"device {device_id!r} not found; GET /api/v1/devices lists the known devices"
