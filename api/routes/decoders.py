"""The decoders this installation knows, and decoding one payload on request."""

from __future__ import annotations

import base64
import binascii

from fastapi import APIRouter, HTTPException

from api.routes.devices import field_out
from api.schemas import DecodeRequest, DecodeResponse, DecoderOut
from decoders import registry
from decoders.core import DecodeError, Decoder, Uplink, readings_to_json

router = APIRouter(prefix="/api/v1", tags=["decoders"])


def decoder_out(decoder: Decoder) -> DecoderOut:
    return DecoderOut(
        id=decoder.id,
        vendor=decoder.vendor,
        model=decoder.model,
        medium=decoder.medium,
        lorawan_ids=list(decoder.lorawan_ids),
        description=decoder.description,
        fields=[field_out(n) for n in decoder.fields],
        examples=len(decoder.examples),
    )


@router.get("/decoders")
def list_decoders() -> list[DecoderOut]:
    """Every decoder, with the fields it emits (name, kind, unit)."""
    return [decoder_out(d) for d in registry.all_decoders().values()]


@router.post(
    "/decode",
    responses={404: {"description": "unknown decoder"}, 422: {"description": "rejected payload"}},
)
def decode(request: DecodeRequest) -> DecodeResponse:
    """Decode one payload; a rejected one answers 422 with which byte and what was expected."""
    decoder = registry.by_id(request.decoder)
    if decoder is None:
        raise HTTPException(
            404, f"no decoder {request.decoder!r}; GET /api/v1/decoders lists the decoders"
        )
    try:
        if request.payload_hex is not None:
            payload = bytes.fromhex(request.payload_hex.replace(" ", ""))
        else:
            payload = base64.b64decode(request.payload_base64 or "", validate=True)
    except (ValueError, binascii.Error) as exc:
        raise HTTPException(422, {"error": f"payload is not valid: {exc}", "offset": None}) from exc
    uplink = Uplink(request.f_port, payload, request.received_at, request.params)
    try:
        readings = decoder.readings(uplink)
    except DecodeError as exc:
        raise HTTPException(422, {"error": str(exc), "offset": exc.offset}) from exc
    return DecodeResponse(decoder=decoder.id, readings=readings_to_json(readings))
