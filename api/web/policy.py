"""A Content-Security-Policy on every response: pages may load only what lorameter serves.

ReDoc's bundle always fetches the Redocly logo from its CDN; this policy stops the browser before
the request is made, so the docs and the web view make no request beyond lorameter itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response

__all__ = ["POLICY", "add_content_security_policy"]

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

    @app.middleware("http")
    async def _policy(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", POLICY)
        return response
