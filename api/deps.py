"""Dependencies of the routes: the store and the in-process ingest service (if any)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from storage.base import Store

__all__ = ["IngestDep", "StoreDep"]


def get_store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def get_ingest(request: Request) -> Any:
    """The ingest service running in this process, or None (``lorameter api`` alone)."""
    return request.app.state.ingest


StoreDep = Annotated[Store, Depends(get_store)]
IngestDep = Annotated[Any, Depends(get_ingest)]
