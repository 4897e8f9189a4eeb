"""Uplink records for store tests: what the pipeline would hand a store."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from decoders.core import Reading, Value
from storage.schema import (
    DeadLetter,
    RadioInfo,
    RawUplink,
    UplinkRecord,
    radio_point,
    reading_points,
)

T0 = datetime(2024, 3, 4, 12, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def record(
    device: str = "em-1",
    minute: float = 0,
    values: Mapping[str, Value] | None = None,
    *,
    medium: str = "electricity",
    f_cnt: int | None = None,
    key: str | None = None,
    simulated: bool = False,
    meter: str = "M-1",
    decoder: str = "acme_em300",
    rssi: float | None = -97.5,
    snr: float | None = 7.25,
    extra_readings: tuple[Reading, ...] = (),
    payload: bytes = b"\x01\x00\x01\xe2\x40\x04\xd2\x5f",
    site: Mapping[str, str] | None = None,
) -> UplinkRecord:
    received = at(minute)
    f_cnt = int(minute) if f_cnt is None else f_cnt
    values = {"energy_import_kwh": 100.0 + minute, "power_w": 1200.5} if values is None else values
    tags = {"device": device, "meter": meter, "decoder": decoder, **(site or {})}
    points = reading_points(
        [Reading(dict(values)), *extra_readings], medium=medium, received_at=received, tags=tags
    )
    points.append(radio_point(device, received, f_cnt, RadioInfo(rssi, snr, 7, 2)))
    raw = RawUplink(
        device=device,
        dev_eui="70b3d57ed0000001",
        network="tts",
        dedup_key=key or f"tts:{device}:{f_cnt}:{received.isoformat()}",
        received_at=received,
        f_port=2,
        f_cnt=f_cnt,
        payload=payload,
        decoder=decoder,
        medium=medium,
        meter=meter,
        simulated=simulated,
    )
    return UplinkRecord(raw, points)


def dead_letter(minute: float, reason: str = "not_json", **kw: object) -> DeadLetter:
    fields: dict[str, object] = {
        "topic": "v3/app/devices/x/up",
        "detail": "Expecting value: line 1 column 1",
        "raw": b"\xff\x00garbage",
        "device": "",
    }
    fields.update(kw)
    return DeadLetter(received_at=at(minute), reason=reason, **fields)  # type: ignore[arg-type]
