"""Messages that did not become readings, with their reason and raw bytes."""

from __future__ import annotations

import base64
from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.auth import require_scope
from api.deps import StoreDep

router = APIRouter(prefix="/api/v1", tags=["dead letters"], dependencies=[require_scope("raw")])


@router.get("/dead-letters")
def list_dead_letters(
    store: StoreDep, limit: Annotated[int, Query(ge=1, le=10_000)] = 100
) -> list[dict[str, Any]]:
    """The newest rejected messages: reason, detail and the raw message (base64)."""
    return [
        {
            "received_at": d.received_at.isoformat(),
            "topic": d.topic,
            "reason": d.reason,
            "detail": d.detail,
            "device": d.device or None,
            "raw_base64": base64.b64encode(d.raw).decode(),
        }
        for d in store.dead_letters(limit)
    ]
