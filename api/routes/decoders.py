"""The decoders this installation knows, and decoding one payload on request."""

from __future__ import annotations

import base64
import binascii

import anyio
import anyio.to_thread
from fastapi import APIRouter, HTTPException

from api.auth import require_scope
from api.deps import OptionsDep
from api.routes.devices import field_out
from api.schemas import DecodeRequest, DecodeResponse, DecoderOut
from decoders import registry
from decoders.core import DecodeError, Decoder, Uplink, readings_to_json
from storage.schema import clean_readings

router = APIRouter(prefix="/api/v1", tags=["decoders"], dependencies=[require_scope("read")])

# LoRaWAN's largest application payload is 242 bytes (RP002-1.0.4, DR with N = 250 - 8 FHDR);
# 255 leaves room for any region and keeps a decode's cost bounded.
MAX_PAYLOAD_BYTES = 255


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
    responses={
        404: {"description": "unknown decoder"},
        413: {"description": "request body too large"},
        422: {"description": "rejected payload, or the decoder failed or ran out of time"},
    },
)
async def decode(request: DecodeRequest, options: OptionsDep) -> DecodeResponse:
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
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise HTTPException(
            422,
            {
                "error": f"payload is {len(payload)} bytes; a LoRaWAN payload has at most"
                f" {MAX_PAYLOAD_BYTES}",
                "offset": MAX_PAYLOAD_BYTES,
            },
        )
    uplink = Uplink(request.f_port, payload, request.received_at, request.params)
    try:
        # In a worker thread, so a slow decode holds neither the event loop nor the answer
        # past its budget (the payload cap above bounds what the thread can still cost).
        with anyio.fail_after(options.decode_timeout_s):
            readings = await anyio.to_thread.run_sync(
                decoder.readings, uplink, abandon_on_cancel=True
            )
    except DecodeError as exc:
        raise HTTPException(422, {"error": str(exc), "offset": exc.offset}) from exc
    except TimeoutError:
        raise HTTPException(
            422,
            {
                "error": f"{decoder.id} took longer than {options.decode_timeout_s} s",
                "offset": None,
            },
        ) from None
    except Exception as exc:  # a decoder bug must not be a 500: the caller's input triggered it
        raise HTTPException(
            422,
            {
                "error": f"{decoder.id} failed on this payload or its params"
                f" ({type(exc).__name__}: {exc})",
                "offset": None,
            },
        ) from exc
    return DecodeResponse(decoder=decoder.id, readings=readings_to_json(clean_readings(readings)))
