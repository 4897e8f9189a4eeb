"""The built-in web view: server-rendered pages over the store, every asset served locally."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api.web.router import router

__all__ = ["mount_web"]

STATIC = Path(__file__).parent / "static"


def mount_web(app: FastAPI) -> None:
    """The pages at /, /meters/{device}, /dead-letters and their stylesheet at /static."""
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="web-static")
