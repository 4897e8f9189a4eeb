"""The FastAPI application: readings, devices, decoders and health over HTTP (OpenAPI at /docs)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

import lorameter
from api.routes import alarms as alarms_routes
from api.routes import dead_letters, decoders, devices, health
from storage.alarms import AlarmStore
from storage.base import Store

__all__ = ["create_app"]


def create_app(store: Store, ingest: Any = None, alarms: AlarmStore | None = None) -> FastAPI:
    """The API over a store; ``ingest`` is the in-process ingest service, if any."""
    app = FastAPI(
        title="lorameter",
        version=lorameter.__version__,
        description="LoRaWAN meter readings: devices, readings, decoders. Times are RFC 3339;"
        " every value carries its unit in its field name.",
    )
    app.state.store = store
    app.state.ingest = ingest
    app.state.alarms = alarms
    for module in (health, devices, decoders, dead_letters, alarms_routes):
        app.include_router(module.router)
    return app
