"""Webhooks: uplinks pushed by The Things Stack (webhook integration) and ChirpStack (HTTP
integration), through the same pipeline, writer and dead letters as MQTT.

Answers: 200 once the uplink is stored (a repeat of a stored uplink is a duplicate and also 200);
202 once a message that cannot become readings is kept as a dead letter (bad JSON, unknown device,
a payload the decoder rejects: it is kept with its raw bytes for ``lorameter redecode``); 503 with
``Retry-After`` when it could not be stored in time (nothing was acknowledged, the sender retries).
Dead letters get a 2xx on purpose: TTS marks a webhook that keeps failing unhealthy and then skips
it for a while (reference: network-servers.md §1.3), so one meter that is not in the registry
must not cost the uplinks of every other meter, and a retry would only repeat the dead letter.
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from api.auth import caller_of, require_scope
from api.deps import Ingestor, IngestorDep, OptionsDep

__all__ = ["SECRET_HEADER", "require_webhook_secret", "router"]

SECRET_HEADER = "X-Lorameter-Webhook-Secret"


def require_webhook_secret(
    request: Request,
    options: OptionsDep,
    secret: Annotated[str | None, Header(alias=SECRET_HEADER, include_in_schema=False)] = None,
) -> None:
    """An API key with the ``ingest`` scope (checked by ``require_scope``), or the configured
    shared secret in its header, compared in constant time.

    Without keys and without a secret the webhooks are open only while the API listens on
    loopback alone (binding beyond it without keys refuses to start).
    """
    if caller_of(request).key is not None:
        return  # a key with the ingest scope
    if options.webhook_secret:
        given = (secret or "").encode()
        if not hmac.compare_digest(given, options.webhook_secret.encode()):
            raise HTTPException(
                401, f"missing or wrong {SECRET_HEADER} header (LORAMETER_WEBHOOK_SECRET)"
            )
        return
    if not options.open_without_keys:
        raise HTTPException(
            403,
            "the webhooks are closed: the API listens beyond loopback and"
            " neither an API key nor LORAMETER_WEBHOOK_SECRET is given",
        )


router = APIRouter(
    prefix="/api/v1/ingest",
    tags=["ingest"],
    dependencies=[require_scope("ingest"), Depends(require_webhook_secret)],
)

_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {"description": "not an uplink we can store: kept as a dead letter"},
    401: {"description": "missing or wrong webhook secret"},
    503: {"description": "not stored in time, or this process does not ingest: retry"},
}


async def _accept(
    ingestor: Ingestor | None, topic: str, body: bytes, response: Response
) -> dict[str, Any]:
    if ingestor is None:
        raise HTTPException(
            503, "this process does not ingest (lorameter api): send webhooks to lorameter run",
            headers={"Retry-After": "60"},
        )  # fmt: skip
    receipt = await run_in_threadpool(ingestor.accept, topic, body)
    if not receipt.stored:
        raise HTTPException(503, receipt.detail, headers={"Retry-After": "10"})
    if receipt.status == "dead_letter":
        response.status_code = 202
        return {"status": "dead_letter", "reason": receipt.reason, "detail": receipt.detail}
    return {"status": "stored"}


@router.post("/tts", responses=_RESPONSES)
async def tts_webhook(
    request: Request, ingestor: IngestorDep, response: Response
) -> dict[str, Any]:
    """A The Things Stack webhook's uplink message (the ``ApplicationUp`` JSON of MQTT ``up``)."""
    return await _accept(ingestor, "webhook/tts", await request.body(), response)


@router.post("/chirpstack", responses=_RESPONSES)
async def chirpstack_webhook(
    request: Request,
    ingestor: IngestorDep,
    response: Response,
    event: Annotated[str, Query(description="ChirpStack's event type; only up is stored")],
) -> dict[str, Any]:
    """A ChirpStack HTTP integration event (JSON marshaler); ``event=up`` is stored, other
    events (join, status, log, ...) are acknowledged and ignored."""
    if event != "up":
        return {"status": "ignored", "detail": f"event {event!r} is not an uplink"}
    return await _accept(ingestor, "webhook/chirpstack", await request.body(), response)
