"""``lorameter demo``-like data for the dashboard and web tests: the demo's simulated fleet
(plus one gas pulse counter), its history through the real pipeline into a real store, and
consumption points in the schema lorameter writes (until metering/ writes them itself)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from ingest.devices import DeviceRegistry, parse_registry
from ingest.pipeline import Accepted, Pipeline, Rejected
from lorameter.demo import simulator
from storage.base import Store

__all__ = ["ZONE", "ConsumptionPoint", "Fleet", "consumption_points", "demo_fleet", "load"]

ZONE = ZoneInfo("Europe/Berlin")
REGISTERS = {"electricity": "energy_import_kwh", "water": "volume_m3", "heat": "energy_heat_kwh",
             "gas": "volume_m3"}  # fmt: skip
KIND_MEDIUM = {"heat": "heat", "water": "water", "electricity": "electricity", "pulse": "water",
               "pulse16": "water"}  # fmt: skip


@dataclass(frozen=True)
class Fleet:
    meters: list[simulator.SimMeter]
    registry: DeviceRegistry
    media: dict[str, str]  # device -> medium


@dataclass(frozen=True)
class ConsumptionPoint:
    device: str
    meter: str
    medium: str
    site: str
    interval: str
    field: str
    start: datetime
    value: float


def demo_fleet(size: int = 16) -> Fleet:
    """The demo's fleet of ``size`` meters; the last pulse counter counts gas (m³)."""
    meters = simulator.fleet(size)
    document: dict[str, Any] = simulator.registry_document(meters)
    media = {m.device_id: KIND_MEDIUM[m.kind] for m in meters}
    gas = [m for m in meters if m.kind == "pulse"][-1]
    for entry in document["devices"]:
        if entry["device"] == gas.device_id:
            entry["medium"] = "gas"
            entry["params"]["pulse_unit"] = "l"
            media[gas.device_id] = "gas"
    return Fleet(meters, parse_registry(document, "test fleet"), media)


LEAKING = "water-003"  # its last LEAK_UPLINKS uplinks report a leak (Axioma status 0x30)
LEAK_UPLINKS = 4


def _with_status(body: bytes, status: int) -> bytes:
    """A Qalcosonic W1 uplink with another status byte (byte 4 of its frame)."""
    message = json.loads(body)
    frame = bytearray(base64.b64decode(message["uplink_message"]["frm_payload"]))
    frame[4] = status
    message["uplink_message"]["frm_payload"] = base64.b64encode(bytes(frame)).decode()
    return json.dumps(message).encode()


def load(
    store: Store,
    fleet: Fleet,
    end: datetime,
    days: float,
    on_stored: Callable[[Sequence[Accepted | Rejected]], None] | None = None,
) -> int:
    """The fleet's history (and the demo's broken messages) through the pipeline into ``store``.

    ``on_stored`` sees each batch once it is stored, as ingest hands it to the alarm engine.
    """
    pipeline = Pipeline(fleet.registry)
    messages = [*simulator.bad_messages(), *simulator.history(fleet.meters, end, days)]
    leaking = [i for i, (topic, _) in enumerate(messages) if f"/devices/{LEAKING}/" in topic]
    for i in leaking[-LEAK_UPLINKS:]:
        messages[i] = (messages[i][0], _with_status(messages[i][1], 0x30))
    outcomes = [pipeline.process(topic, body, end) for topic, body in messages]
    stored = 0
    for i in range(0, len(outcomes), 2000):
        batch = outcomes[i : i + 2000]
        records = [o.record for o in batch if isinstance(o, Accepted)]
        letters = [o.letter for o in batch if isinstance(o, Rejected)]
        if records:
            store.write_uplinks(records)
        if letters:
            store.write_dead_letters(letters)
        stored += len(records)
        if on_stored is not None:
            on_stored(batch)
    flush = getattr(store, "flush", None)
    if flush is not None:
        flush()
    return stored


def _starts(first: datetime, end: datetime, interval: str) -> list[datetime]:
    """Local interval starts from the one holding ``first`` up to ``end``."""
    local = first.astimezone(ZONE)
    if interval == "hour":
        cursor = local.replace(minute=0, second=0, microsecond=0)
    elif interval == "day":
        cursor = local.replace(hour=0, minute=0, second=0, microsecond=0)
    else:
        cursor = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    out = []
    while cursor < end:
        out.append(cursor)
        if interval == "hour":  # step in absolute time: a DST day has 23 or 25 hours
            cursor = datetime.fromtimestamp(cursor.timestamp() + 3600, ZONE)
        elif interval == "day":
            cursor = datetime.combine(cursor.date() + timedelta(days=1), cursor.time(), ZONE)
        else:
            year, month = divmod(cursor.month, 12)
            cursor = cursor.replace(year=cursor.year + year, month=month + 1)
    return out


def consumption_points(fleet: Fleet, end: datetime, days: float) -> list[ConsumptionPoint]:
    """Consumption per local hour, day and month of every meter, from its exact register."""
    first = end - timedelta(days=days)
    points = []
    for meter in fleet.meters:
        medium = fleet.media[meter.device_id]
        for interval in ("hour", "day", "month"):
            starts = _starts(first, end, interval)
            bounds = [*starts[1:], None]
            for start, stop in zip(starts, bounds, strict=True):
                a = max(start, first)
                b = min(stop, end) if stop is not None else end
                value = meter.register(b) - meter.register(a)
                points.append(
                    ConsumptionPoint(
                        meter.device_id, meter.meter, medium, meter.site, interval,
                        REGISTERS[medium], start, value,
                    )
                )  # fmt: skip
    return points
