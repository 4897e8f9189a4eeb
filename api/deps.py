"""Dependencies of the routes: the store and the in-process ingest service (if any)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request

from metering.meter import MeterConfig
from storage.alarms import AlarmStore
from storage.base import Store

__all__ = ["AlarmsDep", "IngestDep", "MetersDep", "SiteZoneDep", "StoreDep"]


def get_store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def get_ingest(request: Request) -> Any:
    """The ingest service running in this process, or None (``lorameter api`` alone)."""
    return request.app.state.ingest


def get_alarms(request: Request) -> AlarmStore:
    """The alarm store; 503 when this process has none."""
    alarms: AlarmStore | None = getattr(request.app.state, "alarms", None)
    if alarms is None:
        raise HTTPException(503, "alarms are not set up in this process")
    return alarms


StoreDep = Annotated[Store, Depends(get_store)]
AlarmsDep = Annotated[AlarmStore, Depends(get_alarms)]
IngestDep = Annotated[Any, Depends(get_ingest)]


def get_meters(request: Request) -> Mapping[str, MeterConfig]:
    """Metering settings of the registered devices, by device id."""
    meters: Mapping[str, MeterConfig] = request.app.state.meters
    return meters


def get_site_zone(request: Request) -> str:
    """The site's time zone (``LORAMETER_TIMEZONE``) for calendar intervals."""
    zone: str = request.app.state.timezone
    return zone


MetersDep = Annotated[Mapping[str, MeterConfig], Depends(get_meters)]
SiteZoneDep = Annotated[str, Depends(get_site_zone)]
