"""Network-server envelopes to one neutral uplink: TTS v3 ``up`` and ChirpStack v4 ``event/up``.

Rules from ``shared/reference/network-servers.md``: TTS omits zero/empty fields (missing
``f_cnt`` is 0, missing ``f_port`` is a MAC-only frame), payloads are base64, the reading time is
the network server's receive time (TTS ``uplink_message.received_at``, ChirpStack ``time``),
``simulated`` uplinks never become metering data, and the dedup key is TTS
``(dev_eui, session_key_id, f_cnt)`` or ChirpStack ``deduplicationId``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from storage.schema import RadioInfo, as_utc

__all__ = ["EnvelopeError", "ParsedUplink", "parse_envelope", "storable_text"]

# LoRaWAN's FCnt is 32 bits (LoRaWAN 1.0.4 §4.3.1.5, 16 bits on air, 32 in the network server).
F_CNT_MAX = 2**32 - 1
# Times every backend can keep: nanoseconds since 1970 in a signed 64-bit integer (InfluxDB's
# range is 1677-09-21 .. 2262-04-11); a day of margin each side.
EARLIEST = datetime(1677, 9, 23, tzinfo=UTC)
LATEST = datetime(2262, 4, 10, tzinfo=UTC)
# Line breaks and NUL cannot be kept in a line-protocol tag or many log viewers; lone
# surrogates cannot be encoded as UTF-8 at all.
_UNSTORABLE = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


class EnvelopeError(ValueError):
    """The message is not an uplink we can read; ``reason`` is the dead-letter code."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


@dataclass(frozen=True)
class ParsedUplink:
    """One uplink, independent of the network server it came from."""

    network: str  # "tts" | "chirpstack"
    device_id: str  # TTS end-device id; ChirpStack devEui
    dev_eui: str  # lower-case hex, "" if unknown
    dedup_key: str
    received_at: datetime
    f_port: int
    f_cnt: int
    payload: bytes
    simulated: bool = False
    brand_id: str = ""
    model_id: str = ""
    radio: RadioInfo = field(default_factory=RadioInfo)
    attributes: Mapping[str, str] = field(default_factory=dict)
    decoded: Mapping[str, Any] | None = None  # the network server's own decoder output


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


# -- The Things Stack v3 ---------------------------------------------------------------------


class _TtsAppIds(_Model):
    application_id: str = ""


class _TtsDeviceIds(_Model):
    device_id: str
    application_ids: _TtsAppIds = _TtsAppIds()
    dev_eui: str = ""


class _TtsRx(_Model):
    rssi: float | None = None
    channel_rssi: float | None = None
    snr: float | None = None


class _TtsLora(_Model):
    spreading_factor: int | None = None


class _TtsDataRate(_Model):
    lora: _TtsLora | None = None


class _TtsSettings(_Model):
    data_rate: _TtsDataRate | None = None
    frequency: str | int | None = None


class _TtsVersionIds(_Model):
    brand_id: str = ""
    model_id: str = ""


class _TtsUplink(_Model):
    session_key_id: str = ""
    f_port: int = Field(0, ge=0, le=255)
    f_cnt: int = Field(0, ge=0, le=F_CNT_MAX)
    frm_payload: str = ""
    decoded_payload: dict[str, Any] | None = None
    rx_metadata: list[_TtsRx] = []
    settings: _TtsSettings = _TtsSettings()
    received_at: datetime | None = None
    consumed_airtime: str = ""
    version_ids: _TtsVersionIds | None = None
    attributes: dict[str, str] = {}


class _TtsUp(_Model):
    end_device_ids: _TtsDeviceIds
    received_at: datetime | None = None
    uplink_message: _TtsUplink
    simulated: bool = False


# -- ChirpStack v4 ---------------------------------------------------------------------------


class _CsDeviceInfo(_Model):
    dev_eui: str = Field(alias="devEui")
    device_name: str = Field("", alias="deviceName")
    tags: dict[str, str] = {}


class _CsRx(_Model):
    rssi: float | None = None
    snr: float | None = None


class _CsLora(_Model):
    spreading_factor: int | None = Field(None, alias="spreadingFactor")


class _CsModulation(_Model):
    lora: _CsLora | None = None


class _CsTx(_Model):
    frequency: int | None = None
    modulation: _CsModulation | None = None


class _CsUp(_Model):
    deduplication_id: str = Field(alias="deduplicationId")
    time: datetime
    device_info: _CsDeviceInfo = Field(alias="deviceInfo")
    dev_addr: str = Field("", alias="devAddr")
    f_cnt: int = Field(0, alias="fCnt", ge=0, le=F_CNT_MAX)
    f_port: int = Field(0, alias="fPort", ge=0, le=255)
    data: str = ""
    object: dict[str, Any] | None = None
    rx_info: list[_CsRx] = Field([], alias="rxInfo")
    tx_info: _CsTx | None = Field(None, alias="txInfo")


# -- parsing ---------------------------------------------------------------------------------


def parse_envelope(message: bytes) -> ParsedUplink:
    """Parse one MQTT message body; raise EnvelopeError with a dead-letter reason."""
    try:
        document = json.loads(message)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EnvelopeError("not_json", f"message is not JSON: {exc}") from exc
    except RecursionError:  # "[" * 100_000: nested deeper than Python's parser can follow
        raise EnvelopeError("not_json", "message is nested too deeply to parse") from None
    if not isinstance(document, dict):
        raise EnvelopeError(
            "bad_envelope", f"expected a JSON object, got {type(document).__name__}"
        )
    try:
        if "uplink_message" in document or "end_device_ids" in document:
            return _checked(_from_tts(_TtsUp.model_validate(document)))
        if "deduplicationId" in document or "deviceInfo" in document:
            return _checked(_from_chirpstack(_CsUp.model_validate(document)))
    except ValidationError as exc:
        raise EnvelopeError("bad_envelope", _describe(exc)) from exc
    except RecursionError:  # a deep value inside a known key
        raise EnvelopeError("bad_envelope", "a value is nested too deeply") from None
    except OverflowError as exc:  # year 1 with a positive UTC offset, ...
        raise EnvelopeError("bad_envelope", f"a time is out of range: {exc}") from None
    keys = ", ".join(sorted(document)[:6]) or "none"
    raise EnvelopeError(
        "bad_envelope",
        f"neither a TTS uplink (uplink_message) nor a ChirpStack up event (deduplicationId);"
        f" top-level keys: {keys}",
    )


def _checked(up: ParsedUplink) -> ParsedUplink:
    """Refuse what no store can keep: ids with control characters or lone surrogates, times
    outside the 64-bit nanosecond range."""
    for what, text in (
        ("device id", up.device_id),
        ("DevEUI", up.dev_eui),
        ("deduplication id", up.dedup_key),
    ):
        if _UNSTORABLE.search(text):
            raise EnvelopeError(
                "bad_envelope",
                f"{what} {storable_text(text)} contains control characters or invalid Unicode",
            )
    if not EARLIEST <= up.received_at <= LATEST:
        raise EnvelopeError(
            "bad_envelope",
            f"received_at {up.received_at.isoformat()} is outside the storable range"
            f" {EARLIEST.year}..{LATEST.year}",
        )
    return up


def storable_text(text: str) -> str:
    """``text`` quoted, with control characters and lone surrogates escaped (always UTF-8 safe)."""
    return ascii(text) if _UNSTORABLE.search(text) else repr(text)


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:3]:
        where = ".".join(str(p) for p in error["loc"]) or "message"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise EnvelopeError("bad_base64", f"{what} is not valid base64: {exc}") from exc


def _from_tts(up: _TtsUp) -> ParsedUplink:
    msg = up.uplink_message
    received = msg.received_at or up.received_at
    if received is None:
        raise EnvelopeError("bad_envelope", "uplink_message.received_at is missing")
    dev_eui = up.end_device_ids.dev_eui.lower()
    payload = _b64(msg.frm_payload, "uplink_message.frm_payload")
    session = msg.session_key_id
    if session:
        _b64(session, "uplink_message.session_key_id")
    # A join restarts f_cnt at 0, so the session key id belongs in the key (omitted f_cnt = 0).
    ident = dev_eui or up.end_device_ids.device_id
    dedup = f"tts:{ident}:{session}:{msg.f_cnt}"
    if not session:  # ABP or stripped envelope: the receive time tells frames of a reset apart
        dedup += f":{as_utc(received).isoformat()}"
    rssi = [r.rssi if r.rssi is not None else r.channel_rssi for r in msg.rx_metadata]
    snr = [r.snr if r.snr is not None else 0.0 for r in msg.rx_metadata]
    best = max(range(len(rssi)), key=lambda i: rssi[i] or -1e9, default=None)
    lora = msg.settings.data_rate.lora if msg.settings.data_rate else None
    radio = RadioInfo(
        rssi_dbm=rssi[best] if best is not None else None,
        snr_db=snr[best] if best is not None else None,
        spreading_factor=lora.spreading_factor if lora else None,
        gateway_count=len(msg.rx_metadata),
        channel_frequency_hz=_number(msg.settings.frequency),
        airtime_s=_number(msg.consumed_airtime.removesuffix("s")),
    )
    versions = msg.version_ids or _TtsVersionIds()
    return ParsedUplink(
        network="tts",
        device_id=up.end_device_ids.device_id,
        dev_eui=dev_eui,
        dedup_key=dedup,
        received_at=as_utc(received),
        f_port=msg.f_port,
        f_cnt=msg.f_cnt,
        payload=payload,
        simulated=up.simulated,
        brand_id=versions.brand_id,
        model_id=versions.model_id,
        radio=radio,
        attributes=msg.attributes,
        decoded=msg.decoded_payload,
    )


def _from_chirpstack(up: _CsUp) -> ParsedUplink:
    payload = _b64(up.data, "data")
    dev_eui = up.device_info.dev_eui.lower()
    rssi = [r.rssi for r in up.rx_info]
    best = max(range(len(rssi)), key=lambda i: rssi[i] or -1e9, default=None)
    lora = up.tx_info.modulation.lora if up.tx_info and up.tx_info.modulation else None
    radio = RadioInfo(
        rssi_dbm=rssi[best] if best is not None else None,
        snr_db=up.rx_info[best].snr if best is not None else None,
        spreading_factor=lora.spreading_factor if lora else None,
        gateway_count=len(up.rx_info),
        channel_frequency_hz=float(up.tx_info.frequency)
        if up.tx_info and up.tx_info.frequency
        else None,
    )
    return ParsedUplink(
        network="chirpstack",
        device_id=dev_eui,
        dev_eui=dev_eui,
        dedup_key=f"cs:{up.deduplication_id}",
        received_at=as_utc(up.time),
        f_port=up.f_port,
        f_cnt=up.f_cnt,
        payload=payload,
        radio=radio,
        attributes=up.device_info.tags,
        decoded=up.object,
    )


def _number(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None
