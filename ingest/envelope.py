"""Network-server envelopes to one neutral uplink: TTS v3 ``up`` and ChirpStack v4 ``event/up``.

Rules from ``shared/reference/network-servers.md``: TTS omits zero/empty fields (missing
``f_cnt`` is 0, missing ``f_port`` is a MAC-only frame), payloads are base64, the reading time is
the network server's receive time (TTS ``uplink_message.received_at``, ChirpStack ``time``),
``simulated`` uplinks never become metering data, and the dedup key is TTS
``(dev_eui, session_key_id, f_cnt)`` or ChirpStack ``deduplicationId``.
"""

from __future__ import annotations

import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec

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


# The envelope is decoded straight from the JSON bytes into typed structs by msgspec (one pass in
# C, no intermediate dicts); unknown fields are skipped, and like the network servers' own
# encoders we accept numbers given as strings (strict=False).
# true/false count as 1/0, as they always did (pydantic's lax integers).
_Port = Annotated[int, msgspec.Meta(ge=0, le=255)] | bool
_FCnt = Annotated[int, msgspec.Meta(ge=0, le=F_CNT_MAX)] | bool
# An RFC 3339 time as sent (TTS writes nanoseconds), or seconds since 1970; parsed by _time.
_Time = str | float | None


# -- The Things Stack v3 ---------------------------------------------------------------------


class _TtsDeviceIds(msgspec.Struct, frozen=True):
    device_id: str
    dev_eui: str = ""


class _TtsRx(msgspec.Struct, frozen=True):
    rssi: float | None = None
    channel_rssi: float | None = None
    snr: float | None = None


class _TtsLora(msgspec.Struct, frozen=True):
    spreading_factor: int | None = None


class _TtsDataRate(msgspec.Struct, frozen=True):
    lora: _TtsLora | None = None


class _TtsSettings(msgspec.Struct, frozen=True):
    data_rate: _TtsDataRate | None = None
    frequency: str | int | None = None


class _TtsVersionIds(msgspec.Struct, frozen=True):
    brand_id: str = ""
    model_id: str = ""


_NO_SETTINGS = _TtsSettings()
_NO_VERSIONS = _TtsVersionIds()


class _TtsUplink(msgspec.Struct, frozen=True):
    session_key_id: str = ""
    f_port: _Port = 0
    f_cnt: _FCnt = 0
    frm_payload: str = ""
    decoded_payload: dict[str, Any] | None = None
    rx_metadata: list[_TtsRx] = []
    settings: _TtsSettings = _NO_SETTINGS
    received_at: _Time = None
    consumed_airtime: str = ""
    version_ids: _TtsVersionIds | None = None
    attributes: dict[str, str] = {}


# -- ChirpStack v4 ---------------------------------------------------------------------------


class _CsDeviceInfo(msgspec.Struct, frozen=True):
    dev_eui: str = msgspec.field(name="devEui")
    tags: dict[str, str] = {}


class _CsRx(msgspec.Struct, frozen=True):
    rssi: float | None = None
    snr: float | None = None


class _CsLora(msgspec.Struct, frozen=True):
    spreading_factor: int | None = msgspec.field(default=None, name="spreadingFactor")


class _CsModulation(msgspec.Struct, frozen=True):
    lora: _CsLora | None = None


class _CsTx(msgspec.Struct, frozen=True):
    frequency: int | None = None
    modulation: _CsModulation | None = None


# -- one message: the top-level fields of both (their names do not overlap) ------------------


class _Message(msgspec.Struct, frozen=True):
    # TTS v3 `up`
    end_device_ids: _TtsDeviceIds | None = None
    uplink_message: _TtsUplink | None = None
    received_at: _Time = None
    simulated: bool = False
    # ChirpStack v4 `event/up`
    deduplication_id: str | None = msgspec.field(default=None, name="deduplicationId")
    time: _Time = None
    device_info: _CsDeviceInfo | None = msgspec.field(default=None, name="deviceInfo")
    f_cnt: _FCnt = msgspec.field(default=0, name="fCnt")
    f_port: _Port = msgspec.field(default=0, name="fPort")
    data: str = ""
    object: dict[str, Any] | None = None
    rx_info: list[_CsRx] = msgspec.field(default_factory=list, name="rxInfo")
    tx_info: _CsTx | None = msgspec.field(default=None, name="txInfo")


_DECODER = msgspec.json.Decoder(_Message, strict=False)
# Digits past the microsecond: cut, never rounded (a stored time never moves to a later µs).
_EXCESS_DIGITS = re.compile(r"(\.\d{6})\d+")


# -- parsing ---------------------------------------------------------------------------------


def parse_envelope(message: bytes) -> ParsedUplink:
    """Parse one MQTT message body; raise EnvelopeError with a dead-letter reason."""
    try:
        up = _decode(message)
        if up.uplink_message is not None or up.end_device_ids is not None:
            return _checked(_from_tts(up))
        if up.deduplication_id is not None or up.device_info is not None:
            return _checked(_from_chirpstack(up))
    except OverflowError as exc:  # year 1 with a positive UTC offset, ...
        raise EnvelopeError("bad_envelope", f"a time is out of range: {exc}") from None
    keys = ", ".join(sorted(json.loads(message))[:6]) or "none"
    raise EnvelopeError(
        "bad_envelope",
        f"neither a TTS uplink (uplink_message) nor a ChirpStack up event (deduplicationId);"
        f" top-level keys: {keys}",
    )


def _decode(message: bytes) -> _Message:
    try:
        return _DECODER.decode(message)
    except msgspec.DecodeError:  # also a ValidationError: it may stop before the JSON ends
        pass  # not JSON, wrong types, or JSON msgspec refuses but Python reads (lone surrogate)
    except RecursionError:
        raise EnvelopeError("bad_envelope", "a value is nested too deeply") from None
    # The rare cases, in Python: what exactly is wrong, or the document after all.
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
        return msgspec.convert(document, _Message, strict=False)
    except msgspec.ValidationError as exc:
        tts = "uplink_message" in document or "end_device_ids" in document
        required = ("end_device_ids", "uplink_message") if tts else ()
        missing = [f"{key}: Field required" for key in required if key not in document]
        raise EnvelopeError("bad_envelope", "; ".join([*missing, _describe(exc)])) from exc
    except RecursionError:
        raise EnvelopeError("bad_envelope", "a value is nested too deeply") from None


def _describe(exc: msgspec.ValidationError) -> str:
    """msgspec's "Expected `int` <= 255 - at `$.uplink_message.f_port`" as "where: what"."""
    what, _, where = str(exc).partition(" - at `$")
    return f"{where.strip('.`') or 'message'}: {what}"


def _time(value: _Time, where: str) -> datetime:
    if isinstance(value, str) and (excess := _EXCESS_DIGITS.search(value)):
        value = value[: excess.end(1)] + value[excess.end() :]
    try:
        return as_utc(msgspec.convert(value, datetime, strict=False))
    except msgspec.ValidationError as exc:
        raise EnvelopeError("bad_envelope", f"{where}: {exc}") from None


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


def _b64(text: str, what: str) -> bytes:
    try:
        # b64decode(validate=True) in C: the same strict check, without its Python wrapper
        return binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError) as exc:
        raise EnvelopeError("bad_base64", f"{what} is not valid base64: {exc}") from exc


def _best(rssi: list[float | None]) -> int | None:
    """The index of the strongest reception (the first of equals), None without any."""
    best, strongest = None, -1e9
    for i, value in enumerate(rssi):
        if (value or -1e9) > strongest or best is None:
            best, strongest = i, value or -1e9
    return best


def _from_tts(up: _Message) -> ParsedUplink:
    ids, msg = up.end_device_ids, up.uplink_message
    if ids is None:
        raise EnvelopeError("bad_envelope", "end_device_ids: Object missing required field")
    if msg is None:
        raise EnvelopeError("bad_envelope", "uplink_message: Object missing required field")
    if msg.received_at is not None:
        received = _time(msg.received_at, "uplink_message.received_at")
    elif up.received_at is not None:
        received = _time(up.received_at, "received_at")
    else:
        raise EnvelopeError("bad_envelope", "uplink_message.received_at is missing")
    dev_eui = ids.dev_eui.lower()
    payload = _b64(msg.frm_payload, "uplink_message.frm_payload")
    session = msg.session_key_id
    if session:
        _b64(session, "uplink_message.session_key_id")
    # A join restarts f_cnt at 0, so the session key id belongs in the key (omitted f_cnt = 0).
    ident = dev_eui or ids.device_id
    dedup = f"tts:{ident}:{session}:{int(msg.f_cnt)}"
    if not session:  # ABP or stripped envelope: the receive time tells frames of a reset apart
        dedup += f":{received.isoformat()}"
    rx = msg.rx_metadata
    rssi = [r.rssi if r.rssi is not None else r.channel_rssi for r in rx]
    best = _best(rssi)
    settings = msg.settings
    lora = settings.data_rate.lora if settings.data_rate else None
    radio = RadioInfo(
        rssi_dbm=rssi[best] if best is not None else None,
        snr_db=(rx[best].snr or 0.0) if best is not None else None,
        spreading_factor=lora.spreading_factor if lora else None,
        gateway_count=len(rx),
        channel_frequency_hz=_number(settings.frequency),
        airtime_s=_number(msg.consumed_airtime.removesuffix("s")),
    )
    versions = msg.version_ids or _NO_VERSIONS
    return ParsedUplink(
        network="tts",
        device_id=ids.device_id,
        dev_eui=dev_eui,
        dedup_key=dedup,
        received_at=received,
        f_port=int(msg.f_port),
        f_cnt=int(msg.f_cnt),
        payload=payload,
        simulated=up.simulated,
        brand_id=versions.brand_id,
        model_id=versions.model_id,
        radio=radio,
        attributes=msg.attributes,
        decoded=msg.decoded_payload,
    )


def _from_chirpstack(up: _Message) -> ParsedUplink:
    info = up.device_info
    if up.deduplication_id is None or info is None or up.time is None:
        missing = "deduplicationId" if up.deduplication_id is None else "deviceInfo"
        if up.deduplication_id is not None and info is not None:
            missing = "time"
        raise EnvelopeError("bad_envelope", f"{missing}: Object missing required field")
    received = _time(up.time, "time")
    payload = _b64(up.data, "data")
    dev_eui = info.dev_eui.lower()
    best = _best([r.rssi for r in up.rx_info])
    lora = up.tx_info.modulation.lora if up.tx_info and up.tx_info.modulation else None
    radio = RadioInfo(
        rssi_dbm=up.rx_info[best].rssi if best is not None else None,
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
        received_at=received,
        f_port=int(up.f_port),
        f_cnt=int(up.f_cnt),
        payload=payload,
        radio=radio,
        attributes=info.tags,
        decoded=up.object,
    )


def _number(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None
