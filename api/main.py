"""The FastAPI application: readings, devices, decoders and health over HTTP (OpenAPI at /docs)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

import lorameter
from api.routes import dead_letters, decoders, devices, health
from api.web.policy import add_content_security_policy
from storage.base import Store

__all__ = ["create_app"]


def create_app(store: Store, ingest: Any = None) -> FastAPI:
    """The API over a store; ``ingest`` is the in-process ingest service, if any."""
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
    for module in (health, devices, decoders, dead_letters):
        app.include_router(module.router)
    return app
