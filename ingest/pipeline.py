"""One message in, readings or a dead letter out: parse → select decoder → decode → points.

Pure: no I/O and no clock (the caller passes ``now`` for dead letters), so the same message
always gives the same result and the same points.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from typing import Any

from decoders import registry
from decoders.bridge import DEVICE_MEDIA
from decoders.core import DecodeError, Decoder, Reading, Uplink
from decoders.profile import map_decoded
from ingest.devices import DeviceEntry, DeviceRegistry
from ingest.envelope import EnvelopeError, ParsedUplink, parse_envelope
from storage.schema import (
    DeadLetter,
    MeterSighting,
    Point,
    RawUplink,
    UplinkRecord,
    radio_point,
    reading_points,
)

__all__ = ["REASONS", "Accepted", "Pipeline", "Rejected"]

# The decoder id of readings mapped from a network server's own decoded output.
PROFILE = "profile"

# Every dead-letter reason, in the order /health lists them.
REASONS = (
    "too_large",
    "not_json",
    "bad_envelope",
    "bad_base64",
    "no_payload",
    "unknown_device",
    "unknown_decoder",
    "decode_error",
    "unstorable",
    "internal_error",
)


@dataclass(frozen=True)
class Accepted:
    """An uplink that became points (or, if simulated, only a raw record)."""

    record: UplinkRecord
    # Where it came from, kept so a record the store refuses becomes a whole dead letter.
    topic: str = ""
    message: bytes = b""


@dataclass(frozen=True)
class Rejected:
    """A message that became a dead letter."""

    letter: DeadLetter


class Pipeline:
    """Turns raw MQTT messages into store records, with the device registry's knowledge."""

    def __init__(self, devices: DeviceRegistry | None = None, max_bytes: int = 256 * 1024):
        self.devices = devices or DeviceRegistry()
        self.max_bytes = max_bytes

    def process(self, topic: str, message: bytes, now: datetime) -> Accepted | Rejected:
        """Process one message; never raises, whatever the input (a bug becomes a dead letter)."""
        try:
            return self._process(topic, message, now)
        except Exception as exc:  # a bug of ours must cost one message, never ingestion
            detail = f"{type(exc).__name__}: {exc}"
            return Rejected(DeadLetter(now, topic, "internal_error", detail[:500], message))

    def _process(self, topic: str, message: bytes, now: datetime) -> Accepted | Rejected:
        def reject(reason: str, detail: str, device: str = "") -> Rejected:
            return Rejected(DeadLetter(now, topic, reason, detail, message, device))

        if len(message) > self.max_bytes:
            return reject(
                "too_large", f"message is {len(message)} bytes, the limit is {self.max_bytes}"
            )
        try:
            up = parse_envelope(message)
        except EnvelopeError as exc:
            return reject(exc.reason, exc.detail)
        entry = self.devices.find(up.device_id, up.dev_eui)
        device = entry.name if entry else up.device_id
        if up.f_port == 0 or not up.payload:
            what = "MAC-only uplink (fPort 0)" if up.f_port == 0 else f"fPort {up.f_port}"
            return reject("no_payload", f"{what} without application payload", device)
        decode: Callable[[], list[Reading]]
        if entry and entry.profile:
            decoder_id, medium, mappings = PROFILE, entry.medium, entry.mappings

            def decode() -> list[Reading]:
                if up.decoded is None:
                    raise DecodeError(
                        "the device maps the network server's decoded output, but this uplink"
                        " carries none (its payload formatter failed or none is configured)"
                    )
                return [Reading(map_decoded(up.decoded, mappings))]

        else:
            try:
                decoder = self._select(up, entry)
            except _Unroutable as exc:
                return reject(exc.reason, exc.detail, device)
            decoder_id = decoder.id
            medium = (entry.medium if entry else "") or decoder.medium or ""
            bridge = any(p.name == "meters" for p in decoder.params)
            if not medium and not bridge:
                return reject(
                    "unknown_device",
                    f"decoder {decoder.id} measures no fixed medium: give the device a medium"
                    " in the device registry",
                    device,
                )
            params = self._with_meters(
                decoder, entry.decoder_params() if entry else {"medium": medium}
            )
            uplink = Uplink(
                f_port=up.f_port,
                payload=up.payload,
                received_at=up.received_at,
                params=params,
                meter_tz=entry.timezone if entry else UTC,
            )
            decode = partial(decoder.readings, uplink)
        meter = entry.meter if entry else ""
        raw = RawUplink(
            device=device,
            dev_eui=up.dev_eui,
            network=up.network,
            dedup_key=up.dedup_key,
            received_at=up.received_at,
            f_port=up.f_port,
            f_cnt=up.f_cnt,
            payload=up.payload,
            decoder=decoder_id,
            medium=medium,
            meter=meter,
            simulated=up.simulated,
        )
        if up.simulated:
            # Console-simulated uplinks must never reach metering data; keep them raw only.
            return Accepted(UplinkRecord(raw, ()), topic, message)
        try:
            readings = decode()
        except DecodeError as exc:
            return reject("decode_error", f"{decoder_id}: {exc}", device)
        except Exception as exc:  # a decoder bug on this input: keep the message, go on
            return reject(
                "decode_error", f"{decoder_id} failed: {type(exc).__name__}: {exc}", device
            )
        tags = {"device": device, "meter": meter, "decoder": decoder_id}
        if entry:
            tags.update(entry.tags)
        own = [r for r in readings if r.meter is None]
        points = (
            reading_points(own, medium=medium, received_at=up.received_at, tags=tags) if own else []
        )
        points += self._meter_points(readings, decoder_id, up.received_at)
        points.append(radio_point(device, up.received_at, up.f_cnt, up.radio))
        sightings = self._sightings(readings, device, up.received_at)
        return Accepted(UplinkRecord(raw, tuple(points), sightings), topic, message)

    def redecode(self, raw: RawUplink) -> Accepted | Rejected:
        """A stored raw uplink decoded again with today's registry and decoders.

        The decoder is the registry's for the device, else the one that decoded it first.
        The record's points are the readings only (the radio point of the uplink is stored
        already and does not change); a bridge's are those of the meters the registry lists
        today, each under its own device. Pure, like ``process``.
        """

        def reject(reason: str, detail: str) -> Rejected:
            letter = DeadLetter(
                raw.received_at, "redecode", reason, detail, raw.payload, raw.device
            )
            return Rejected(letter)

        entry = self.devices.find(raw.device, raw.dev_eui)
        if (entry and entry.profile) or raw.decoder == PROFILE:
            return reject(
                "unknown_decoder",
                "a zero-code (profile) device: the network server decoded it, there is nothing"
                " to decode again",
            )
        decoder_id = entry.decoder if entry and entry.decoder else raw.decoder
        decoder = registry.by_id(decoder_id)
        if decoder is None:
            return reject("unknown_decoder", f"decoder {decoder_id!r} does not exist")
        medium = (entry.medium if entry else "") or decoder.medium or raw.medium
        uplink = Uplink(
            f_port=raw.f_port,
            payload=raw.payload,
            received_at=raw.received_at,
            params=self._with_meters(
                decoder, entry.decoder_params() if entry else {"medium": medium}
            ),
            meter_tz=entry.timezone if entry else UTC,
        )
        try:
            readings = decoder.readings(uplink)
        except DecodeError as exc:
            return reject("decode_error", f"{decoder.id}: {exc}")
        except Exception as exc:  # a decoder bug on this input
            return reject("decode_error", f"{decoder.id} failed: {type(exc).__name__}: {exc}")
        meter = entry.meter if entry else raw.meter
        tags = {"device": raw.device, "meter": meter, "decoder": decoder.id}
        if entry:
            tags.update(entry.tags)
        own = [r for r in readings if r.meter is None]
        points = (
            reading_points(own, medium=medium, received_at=raw.received_at, tags=tags)
            if own
            else []
        )
        # a bridge's meters, each under its own device (one registered since is read now)
        points += self._meter_points(readings, decoder.id, raw.received_at)
        again = replace(raw, decoder=decoder.id, medium=medium, meter=meter)
        return Accepted(UplinkRecord(again, tuple(points)))

    def _with_meters(self, decoder: Decoder, params: dict[str, Any]) -> dict[str, Any]:
        """A bridge decoder's params with the registry's wM-Bus meters and their keys."""
        if not any(p.name == "meters" for p in decoder.params):
            return params
        listed = params.get("meters")
        meters = dict(listed) if isinstance(listed, dict) else {}
        return {**params, "meters": {**meters, **self.devices.bridge_meters()}}

    def _meter_points(
        self, readings: list[Reading], decoder_id: str, received_at: datetime
    ) -> list[Point]:
        """Points of the registered meters behind a bridge, each under its own device. Meters
        not in the registry are not stored; the bridge's raw uplink keeps their telegrams."""
        points: list[Point] = []
        for key in dict.fromkeys(r.meter for r in readings if r.meter is not None):
            entry = self.devices.find_meter(key)
            medium = entry and (entry.medium or DEVICE_MEDIA.get(int(key[-2:], 16), ""))
            if entry is None or not medium:
                continue
            mine = [r for r in readings if r.meter == key and r.error is None and r.values]
            tags = {"device": entry.name, "meter": entry.meter, "decoder": decoder_id, **entry.tags}
            points += reading_points(mine, medium=medium, received_at=received_at, tags=tags)
        return points

    def _sightings(
        self, readings: list[Reading], bridge: str, received_at: datetime
    ) -> tuple[MeterSighting, ...]:
        """The meters behind a bridge that the registry does not list, once each, with why a
        telegram of theirs in this uplink could not be read (staff add them: GET
        /api/v1/devices?unregistered=true)."""
        errors: dict[str, str] = {}
        for reading in readings:
            if reading.meter is not None and self.devices.find_meter(reading.meter) is None:
                errors[reading.meter] = reading.error or errors.get(reading.meter, "")
        found = []
        for key, error in errors.items():
            maker, _, version, device_type = key.split("-")
            found.append(
                MeterSighting(
                    meter=key,
                    bridge=bridge,
                    seen_at=received_at,
                    manufacturer=maker,
                    version=int(version, 16),
                    device_type=int(device_type, 16),
                    medium=DEVICE_MEDIA.get(int(device_type, 16), ""),
                    error=error,
                )
            )
        return tuple(found)

    def _select(self, up: ParsedUplink, entry: DeviceEntry | None) -> Decoder:
        """The device registry's decoder, else the one TTS ``version_ids`` name."""
        if entry and entry.decoder:
            decoder = registry.by_id(entry.decoder)
            if decoder is None:
                raise _Unroutable(
                    "unknown_decoder",
                    f"the registry names decoder {entry.decoder!r}, which does not exist",
                )
            return decoder
        if up.brand_id and up.model_id:
            decoder = registry.by_lorawan_id(up.brand_id, up.model_id)
            if decoder is None:
                raise _Unroutable(
                    "unknown_decoder",
                    f"no decoder for TTS version_ids {up.brand_id}/{up.model_id} and device"
                    f" {up.device_id} is not in the device registry",
                )
            return decoder
        raise _Unroutable(
            "unknown_device",
            f"device {up.device_id} (DevEUI {up.dev_eui or '?'}) is not in the device registry"
            " and its uplink carries no version_ids",
        )


class _Unroutable(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
