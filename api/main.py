"""The FastAPI application: readings, devices, decoders and health over HTTP (OpenAPI at /docs)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

import lorameter
from api.routes import alarms as alarms_routes
from api.routes import consumption, dead_letters, decoders, devices, health
from api.web import mount_web
from api.web.policy import add_content_security_policy
from metering.meter import MeterConfig
from storage.alarms import AlarmStore
from storage.base import Store

__all__ = ["create_app"]


def create_app(
    store: Store,
    ingest: Any = None,
    *,
    meters: Mapping[str, MeterConfig] | None = None,
    timezone: str = "Europe/Berlin",
    alarms: AlarmStore | None = None,
) -> FastAPI:
    """The API over a store; ``ingest`` is the in-process ingest service, if any.

    ``meters``: the registry's metering settings per device; ``timezone``: the site's zone;
    ``alarms``: the alarm tables (None: the alarm routes answer 503).
    """
    # Swagger UI and ReDoc from the assets fastapi-offline ships in its wheel: /docs works offline.
    app: FastAPI = FastAPIOffline(
        title="lorameter",
        version=lorameter.__version__,
        description="LoRaWAN meter readings: devices, readings, decoders. Times are RFC 3339;"
        " every value carries its unit in its field name.",
    )
    add_content_security_policy(app)
    app.state.store = store
    app.state.ingest = ingest
    app.state.meters = dict(meters or {})
    app.state.timezone = timezone
    app.state.alarms = alarms
    for module in (health, devices, consumption, decoders, dead_letters, alarms_routes):
        app.include_router(module.router)
    mount_web(app)
    return app
