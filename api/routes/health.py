"""GET /health: is the service able to take and serve readings, and what did it reject."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response

from api import __version__
from api.auth import require_scope
from api.deps import IngestDep, StoreDep, get_alarms
from storage.base import StoreError

router = APIRouter(tags=["health"], dependencies=[require_scope("read")])


@router.get("/health")
def health(
    store: StoreDep, ingest: IngestDep, request: Request, response: Response
) -> dict[str, Any]:
    """Store state and durable counts; this process's ingest counters when it runs ingest.

    Answers 503, with the reasons in ``problems``, when the store cannot take writes, when
    the MQTT or writer thread is dead or stalled, when store writes fail, or when the queue
    is not draining.
    """
    state = store.health()
    body: dict[str, Any] = {
        "version": __version__,
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
    if body["ingest"] is not None:
        problems.extend(body["ingest"]["problems"])
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
