"""The devices seen, their last reading and link quality, and their readings over time."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

import orjson
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response

from api.auth import require_scope
from api.deps import OptionsDep, StoreDep
from api.params import check_device_id, parse_time
from api.schemas import DeviceOut, FieldOut, ReadingOut, ReadingsOut, UnregisteredMeterOut
from decoders.bridge import DEVICE_TYPES
from decoders.core import MEDIA, VOCABULARY
from storage.base import DeviceSummary, Store, UnregisteredMeter
from storage.schema import from_ns, to_ns

router = APIRouter(prefix="/api/v1/devices", tags=["devices"], dependencies=[require_scope("read")])

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
        tags=dict(summary.tags),
    )


def device_json(summary: DeviceSummary) -> dict[str, object]:
    """``device_out(summary)`` as the JSON it serialises to, built without a model (the device
    list of a town has ten thousand of them); ``tests/api`` checks the two agree."""
    last = None
    if summary.last_reading_at is not None:
        last = {
            "time": summary.last_reading_at,
            "measurement": summary.medium,
            "values": dict(summary.last_reading),
        }
    return {
        "device": summary.device,
        "dev_eui": summary.dev_eui,
        "decoder": summary.decoder,
        "medium": summary.medium,
        "meter": summary.meter,
        "first_seen": summary.first_seen,
        "last_seen": summary.last_seen,
        "uplinks": summary.uplinks,
        "last_f_cnt": summary.last_f_cnt,
        "last_reading": last,
        "battery_pct": _float(summary.battery_pct),
        "battery_v": _float(summary.battery_v),
        "rssi_dbm": _float(summary.rssi_dbm),
        "snr_db": _float(summary.snr_db),
        "tags": dict(summary.tags),
    }


def json_response(content: object) -> Response:
    """A JSON body as FastAPI's own response would carry it (UTC times with ``Z``, NaN and
    infinities as null), serialised by orjson in one call: for lists too long to build a
    model per row. Datetimes without a zone are UTC (numpy's, made in bulk)."""
    option = orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC
    return Response(
        orjson.dumps(content, default=_mapping, option=option), media_type="application/json"
    )


class DeviceJsonCache:
    """Each device's JSON as last encoded, kept while the store gives the very same summary
    object again (the SQLite store does for a device nothing was written to since)."""

    def __init__(self) -> None:
        self._encoded: dict[str, tuple[DeviceSummary, bytes]] = {}

    def encode(self, summary: DeviceSummary) -> bytes:
        found = self._encoded.get(summary.device)
        if found is not None and found[0] is summary:
            return found[1]
        body = orjson.dumps(device_json(summary), default=_mapping, option=orjson.OPT_UTC_Z)
        self._encoded[summary.device] = (summary, body)
        return body


def _json_cache(request: Request) -> DeviceJsonCache:
    cache: DeviceJsonCache | None = getattr(request.app.state, "device_json", None)
    if cache is None:
        cache = request.app.state.device_json = DeviceJsonCache()
    return cache


def _mapping(value: object) -> dict[object, object]:
    if isinstance(value, Mapping):  # e.g. a store's read-only mapping of values
        return dict(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def _float(value: float | None) -> float | None:
    return None if value is None else float(value)


def field_out(name: str) -> FieldOut:
    spec = VOCABULARY[name]
    return FieldOut(name=name, kind=spec.kind.value, unit=spec.unit, description=spec.description)


DeviceKey = Annotated[
    str,
    Depends(check_device_id),
]


def find_device(store: Store, key: str) -> DeviceSummary | None:
    """A device by its id, else by its DevEUI (any spelling), else by its meter number."""
    summary = store.device(key)
    if summary is not None:
        return summary
    eui = re.sub(r"[-:\s]", "", key).lower()
    devices = store.devices()
    by_eui = [d for d in devices if d.dev_eui and d.dev_eui.lower() == eui]
    if len(by_eui) == 1:
        return by_eui[0]
    by_meter = [d for d in devices if d.meter and d.meter == key]
    return by_meter[0] if len(by_meter) == 1 else None


def require_device(store: Store, key: str) -> DeviceSummary:
    summary = find_device(store, key)
    if summary is None:
        raise HTTPException(404, _unknown(key))
    return summary


def unregistered_out(seen: UnregisteredMeter) -> UnregisteredMeterOut:
    return UnregisteredMeterOut(
        meter=seen.meter,
        manufacturer=seen.manufacturer,
        identification=seen.meter.split("-")[1],
        version=seen.version,
        device_type=seen.device_type,
        device_type_name=DEVICE_TYPES.get(seen.device_type, "reserved"),
        medium=seen.medium,
        bridge=seen.bridge,
        first_seen=seen.first_seen,
        last_seen=seen.last_seen,
        uplinks=seen.count,
        last_error=seen.last_error,
    )


@router.get(
    "",
    response_model=list[DeviceOut] | list[UnregisteredMeterOut],
    responses={422: {"description": "bad parameter"}},
)
def list_devices(
    request: Request,
    store: StoreDep,
    options: OptionsDep,
    medium: Annotated[
        str | None, Query(description=f"only this medium: {', '.join(MEDIA)}")
    ] = None,
    site: Annotated[str | None, Query(description="only devices with this site tag")] = None,
    q: Annotated[
        str | None,
        Query(max_length=200, description="text in the id, DevEUI, meter number or decoder"),
    ] = None,
    unregistered: Annotated[
        bool,
        Query(
            description="instead: the wireless M-Bus meters bridges hear that the device registry"
            " does not list (to add them), one per meter and bridge; `medium`, `site` (the"
            " bridge's) and `q` (address, bridge) filter them"
        ),
    ] = False,
) -> Response | list[UnregisteredMeterOut]:
    """Every device seen, with last seen, last reading, battery, RSSI and SNR; filters combine.

    With `unregistered=true`: the meters heard through bridges but not in the registry."""
    if medium is not None and medium not in MEDIA:
        raise HTTPException(422, f"unknown medium {medium!r}; use one of {', '.join(MEDIA)}")
    needle = (q or "").strip().lower()
    if unregistered:
        listed = {config.wmbus for config in options.meters.values() if config.wmbus}
        meters = []
        for seen in store.unregistered_meters():
            bridge = options.meters.get(seen.bridge)
            if seen.meter in listed or (medium is not None and seen.medium != medium):
                continue
            if site is not None and (bridge is None or bridge.tags.get("site") != site):
                continue
            if needle and not any(needle in t.lower() for t in (seen.meter, seen.bridge)):
                continue
            meters.append(unregistered_out(seen))
        return meters
    cache = _json_cache(request)
    found = []
    for d in store.devices():
        if medium is not None and d.medium != medium:
            continue
        if site is not None and d.tags.get("site") != site:
            continue
        if needle and not any(
            needle in text.lower() for text in (d.device, d.dev_eui, d.meter, d.decoder)
        ):
            continue
        found.append(cache.encode(d))
    return Response(b"[" + b",".join(found) + b"]", media_type="application/json")


@router.get("/{device_id}", responses={404: {"description": "device never seen"}})
def get_device(device_id: DeviceKey, store: StoreDep) -> DeviceOut:
    """One device, by its id, DevEUI or meter number."""
    return device_out(require_device(store, device_id))


@router.get(
    "/{device_id}/readings",
    response_model=ReadingsOut,
    response_model_by_alias=True,
    responses={404: {"description": "device never seen"}, 422: {"description": "bad parameter"}},
)
def get_readings(
    device_id: DeviceKey,
    store: StoreDep,
    options: OptionsDep,
    start: Annotated[
        str | None,
        Query(
            alias="from",
            description="RFC 3339, or a date (local midnight); default: `to` minus 7 days",
        ),
    ] = None,
    end: Annotated[
        str | None,
        Query(alias="to", description="RFC 3339, or a date (local midnight); default: now"),
    ] = None,
    field: Annotated[
        list[str] | None,
        Query(description="field names to return (repeat or comma-separate); default: all"),
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=100_000, description="most instants in one page")
    ] = 10_000,
    cursor: Annotated[
        str | None, Query(description="`next_cursor` of the previous page: the page after it")
    ] = None,
) -> Response:
    """A device's readings in [from, to), oldest first, one page at a time.

    A full page carries `next_cursor`: ask again with it (and the same other parameters)
    for the next page. The response's `from`, `to` and `timezone` say the window used.
    """
    window_start, window_end = _window(start, end, options.timezone)
    names = [n.strip() for item in field or [] for n in item.split(",") if n.strip()]
    unknown = [n for n in names if n not in VOCABULARY]
    if unknown:
        raise HTTPException(
            422, f"unknown field(s) {', '.join(unknown)}; see GET /api/v1/decoders for field names"
        )
    page_start = window_start
    if cursor is not None:
        if not cursor.isdigit() or not to_ns(window_start) <= int(cursor) < to_ns(window_end):
            raise HTTPException(422, "'cursor' is not one this window's pages gave")
        page_start = from_ns(int(cursor))
    summary = require_device(store, device_id)
    table = store.reading_table(summary.device, page_start, window_end, names, limit + 1)
    more = len(table) > limit
    values = table.values[:limit]
    seen = sorted(set().union(*values))
    # numpy's datetimes (naive UTC, whole µs as from_ns): a year is 35,040 readings
    times = table.times_ns[:limit].astype("datetime64[ns]").astype("datetime64[us]").tolist()
    # ReadingsOut, serialised by alias, without a model per reading
    return json_response(
        {
            "device": summary.device,
            "from": window_start,
            "to": window_end,
            "timezone": options.timezone.key,
            "fields": [field_out(n).model_dump() for n in seen if n in VOCABULARY],
            # as ReadingOut: time, measurement, values
            "readings": [
                {"time": time, "measurement": measurement, "values": v}
                for time, measurement, v in zip(
                    times, table.measurements[:limit], values, strict=True
                )
            ],
            "truncated": more,
            # the next page starts at the first instant not returned (times are whole µs)
            "next_cursor": str(int(table.times_ns[limit]) // 1_000 * 1_000) if more else None,
        }
    )


def _window(start: str | None, end: str | None, tz: ZoneInfo) -> tuple[datetime, datetime]:
    end_at = _time("to", end, tz) if end is not None else datetime.now(UTC)
    start_at = _time("from", start, tz) if start is not None else end_at - DEFAULT_WINDOW
    if start_at >= end_at:
        raise HTTPException(
            422, f"'from' ({start_at.isoformat()}) must be before 'to' ({end_at.isoformat()})"
        )
    return start_at, end_at


def _time(name: str, value: str, tz: ZoneInfo) -> datetime:
    try:
        return parse_time(value, tz)
    except ValueError as exc:
        raise HTTPException(422, f"'{name}': {exc}") from None


def _unknown(device_id: str) -> str:
    return (
        f"device {device_id!r} not found (by id, DevEUI or meter number);"
        " GET /api/v1/devices lists the known devices"
    )
