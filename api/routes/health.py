"""GET /health: is the service able to take and serve readings, and what did it reject."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response

import lorameter
from api.deps import IngestDep, StoreDep, get_alarms
from storage.base import StoreError

router = APIRouter(tags=["health"])


@router.get("/health")
def health(
    store: StoreDep, ingest: IngestDep, request: Request, response: Response
) -> dict[str, Any]:
    """Store state and durable counts; this process's ingest counters when it runs ingest.

    Answers 503 when the store cannot take writes or the broker login is refused.
    """
    state = store.health()
    body: dict[str, Any] = {
        "version": lorameter.__version__,
        "store": {
            "ok": state.ok,
            "backend": state.backend,
            "detail": state.detail,
            "uplinks": state.uplinks,
            "dead_letters": dict(state.dead_letters),
            "dead_letters_total": sum(state.dead_letters.values()),
            **state.extra,
        },
        "ingest": ingest.health() if ingest is not None else None,
        "alarms": _alarm_counts(request),
    }
    problems = [] if state.ok else [f"store: {state.detail}"]
    if ingest is not None and ingest.fatal:
        problems.append(f"mqtt: {ingest.fatal}")
    body["status"] = "ok" if not problems else "unhealthy"
    body["problems"] = problems
    if problems:
        response.status_code = 503
    return body


def _alarm_counts(request: Request) -> dict[str, Any] | None:
    """Active alarms by kind (None when this process has no alarm store)."""
    try:
        counts = get_alarms(request).active_counts()
    except (HTTPException, StoreError):
        return None
    return {"active": counts, "active_total": sum(counts.values())}
