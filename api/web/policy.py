"""A Content-Security-Policy on every response: pages may load only what lorameter serves.

ReDoc's bundle always fetches the Redocly logo from its CDN; this policy stops the browser before
the request is made, so the docs and the web view make no request beyond lorameter itself.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["POLICY", "ContentSecurityPolicy", "add_content_security_policy"]

POLICY = "; ".join(
    (
        "default-src 'self'",
        "img-src 'self' data:",
        "style-src 'self' 'unsafe-inline'",  # Swagger UI and ReDoc set inline styles
        "script-src 'self' 'unsafe-inline'",  # the docs pages start their bundles inline
        "worker-src 'self' blob:",  # ReDoc's search runs in a blob worker
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
    )
)


def add_content_security_policy(app: FastAPI) -> None:
    """Send ``POLICY`` with every response of ``app``."""
    app.add_middleware(ContentSecurityPolicy)


class ContentSecurityPolicy:
    """Plain ASGI middleware (not ``BaseHTTPMiddleware``): it only adds a header as the response
    starts, so request bodies and errors pass through it untouched (the body limit's 413)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_policy(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("Content-Security-Policy", POLICY)
            await send(message)

        await self.app(scope, receive, with_policy)
