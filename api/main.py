"""The FastAPI application: readings, devices, decoders and health over HTTP (OpenAPI at /docs)."""

from __future__ import annotations

import json

from fastapi import Depends, FastAPI, HTTPException
from fastapi_offline import FastAPIOffline
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import __version__
from api.auth import KeyChecker, install, route_rules
from api.deps import ApiOptions, Ingestor, IngestStatus
from api.params import reject_unknown_query
from api.routes import alarms as alarms_routes
from api.routes import (
    consumption,
    dead_letters,
    decoders,
    devices,
    health,
    ingest_webhooks,
    metrics,
)
from api.web import mount_web
from api.web.policy import add_content_security_policy
from storage.alarms import AlarmStore
from storage.base import Store

__all__ = ["create_app"]


def create_app(
    store: Store,
    ingest: IngestStatus | None = None,
    options: ApiOptions | None = None,
    *,
    alarms: AlarmStore | None = None,
    ingestor: Ingestor | None = None,
    keys: KeyChecker | None = None,
) -> FastAPI:
    """The API over a store; ``ingest`` is the in-process ingest service, if any.

    ``alarms``: the alarm tables (None: the alarm routes answer 503). ``ingestor``: the ingest
    pipeline the webhooks feed (None: they answer 503). ``keys``: the API keys (None: no key is
    ever asked for; the CLI always passes them).
    """
    options = options or ApiOptions()
    # Swagger UI and ReDoc from the assets fastapi-offline ships in its wheel: /docs works offline.
    app: FastAPI = FastAPIOffline(
        title="lorameter",
        version=__version__,
        description="LoRaWAN meter readings: devices, readings, decoders. Times are RFC 3339"
        " (a date alone means local midnight); every value carries its unit in its field name.",
        dependencies=[Depends(reject_unknown_query)],
    )
    app.state.store = store
    app.state.api_keys = keys
    app.state.ingest = ingest
    app.state.options = options
    app.state.metrics = metrics.registry_for(ingest)
    app.state.alarms = alarms
    app.state.ingestor = ingestor
    for module in (health, metrics, devices, consumption, decoders, dead_letters, alarms_routes,
                   ingest_webhooks):  # fmt: skip
        app.include_router(module.router)
    mount_web(app)
    _check_scopes(app)
    # Innermost first: the gate sees every request; its refusals carry the CSP; the body
    # limit stands in front of all.
    install(app, keys, options.open_paths, options.open_without_keys, options.header_secrets)
    add_content_security_policy(app)
    app.add_middleware(BodyLimit, max_bytes=options.max_body_bytes)
    return app


def _check_scopes(app: FastAPI) -> None:
    """Every route of the API declares the one scope it needs (see api/auth.py)."""
    for rule in route_rules(app):
        if rule.in_schema and len(rule.scopes) != 1:
            raise RuntimeError(
                f"route {sorted(rule.methods)} {rule.path} must declare one scope:"
                ' dependencies=[require_scope("read")] on its router or route (api/auth.py)'
            )


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` with 413, before anything reads them whole.

    A declared Content-Length is checked up front; a chunked body is counted as it streams,
    and the request is answered 413 as soon as it passes the limit.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(send)
            return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge(413, self._detail())
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._refuse(send)

    def _detail(self) -> str:
        return f"request body larger than {self.max_bytes} bytes (LORAMETER_API_MAX_BODY_BYTES)"

    async def _refuse(self, send: Send) -> None:
        body = json.dumps({"detail": self._detail()}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _TooLarge(HTTPException):
    """Raised through the app when a streamed body passes the limit (FastAPI answers 413)."""
