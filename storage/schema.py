"""The storage schema, identical in every backend: what one uplink becomes (pure, no I/O).

Measurements:
- one per medium (``electricity``, ``water``, ``heat``, ``gas``): the decoder's vocabulary fields,
  tags ``device``, ``meter``, ``decoder`` and the registry's site tags;
- ``radio``: link quality of each uplink (RSSI, SNR, spreading factor, gateways, frame counter),
  tag ``device``;
- raw uplinks (port, counter, payload) so a fixed or new decoder can re-decode history;
- dead letters: every message that could not become readings, with its raw bytes and reason;
- ``unregistered_meter``: wireless M-Bus meters a bridge heard that the registry does not list.

A point is identified by measurement + device + time (+ field): writing the same uplink twice
writes the same points, so redeliveries and replays never duplicate data.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from decoders.core import MEDIA, Reading, Value

__all__ = [
    "BASE_TAGS",
    "MEASUREMENTS",
    "RADIO",
    "DeadLetter",
    "MeterSighting",
    "Point",
    "RawUplink",
    "UplinkRecord",
    "clean_readings",
    "clean_value",
    "from_ns",
    "reading_points",
    "to_ns",
]

RADIO = "radio"
MEASUREMENTS = (*MEDIA, RADIO)

# Tags every reading point carries; the registry's site tags are added to these.
SOURCE = "source"  # live | history: see reading_points
BASE_TAGS = ("device", "meter", "decoder", SOURCE)
# A reading measured longer than this before its uplink arrived is the meter's history.
LIVE_WITHIN = timedelta(hours=1)


@dataclass(frozen=True)
class Point:
    """One time-series point: measurement, tags, fields and its time (UTC)."""

    measurement: str
    tags: Mapping[str, str]
    fields: Mapping[str, Value]
    time: datetime

    @property
    def device(self) -> str:
        return self.tags["device"]


@dataclass(frozen=True)
class RawUplink:
    """The uplink as received, minus the radio noise: enough to decode it again later."""

    device: str
    dev_eui: str
    network: str  # "tts" | "chirpstack"
    dedup_key: str
    received_at: datetime
    f_port: int
    f_cnt: int
    payload: bytes
    decoder: str
    medium: str
    meter: str = ""
    simulated: bool = False


@dataclass(frozen=True)
class MeterSighting:
    """A wireless M-Bus meter the registry does not list, heard in one bridge uplink.

    Stored with the uplink (same write, same dedup key), at the network server's receive time,
    so staff can list the meters to add (``Store.unregistered_meters``).
    """

    meter: str  # the address key, core.meter_key: KAM-12345678-1B-16
    bridge: str  # the bridge device whose uplink carried the telegram
    seen_at: datetime  # the uplink's received_at
    manufacturer: str  # the three-letter FLAG code, KAM
    version: int
    device_type: int  # EN 13757-7 device type, 0x16 cold water
    medium: str  # what its readings would be ("" for types without readings of ours)
    error: str = ""  # why its telegram could not be read (no AES key, ...), "" if it could


@dataclass(frozen=True)
class UplinkRecord:
    """An accepted uplink: its raw form, the points decoded from it and, for a bridge, the
    unregistered meters it carried."""

    raw: RawUplink
    points: Sequence[Point]
    sightings: Sequence[MeterSighting] = ()


@dataclass(frozen=True)
class DeadLetter:
    """A message that did not become readings; kept whole so it can be replayed."""

    received_at: datetime  # local clock: the message may carry no trustworthy time
    topic: str
    reason: str  # a short code: not_json, bad_envelope, bad_base64, unknown_device, ...
    detail: str
    raw: bytes
    device: str = ""


def reading_points(
    readings: Sequence[Reading],
    *,
    medium: str,
    received_at: datetime,
    tags: Mapping[str, str],
) -> list[Point]:
    """Turn decoded readings into points of the medium's measurement.

    A reading without its own time is placed at the network server's receive time, never at
    the local clock, so a redelivered uplink produces the very same points. Each point gets
    the tag ``source``: ``live`` for the uplink's newest reading when it was measured at most
    LIVE_WITHIN before the uplink arrived, ``history`` for the meter's older values. Values
    are cleaned of binary noise (``clean_value``).
    """
    if medium not in MEDIA:
        raise ValueError(f"unknown medium {medium!r}")
    timed = [
        (as_utc(r.time if r.time is not None else received_at), r) for r in readings if r.values
    ]
    newest = max((time for time, _ in timed), default=None)
    arrived = as_utc(received_at)
    points = []
    for time, reading in timed:
        live = time == newest and (reading.time is None or arrived - time <= LIVE_WITHIN)
        points.append(
            Point(
                medium,
                {**tags, SOURCE: "live" if live else "history"},
                {name: clean_value(value) for name, value in reading.values.items()},
                time,
            )
        )
    return points


def clean_readings(readings: Sequence[Reading]) -> list[Reading]:
    """The readings with ``clean_value`` applied (for showing a decode, as stored)."""
    return [Reading({k: clean_value(v) for k, v in r.values.items()}, r.time) for r in readings]


def clean_value(value: Value) -> Value:
    """A float rounded to 12 significant digits (123.56700000000001 -> 123.567), else as is.

    Every decoder's arithmetic (raw * 0.001, Wh / 1000) leaves binary noise in the last of
    a float's ~17 digits; no meter resolves 12 (a 9-digit register with 3 decimals has 12
    at most), so rounding there removes the noise and never a digit the meter gave.
    """
    if isinstance(value, float) and math.isfinite(value):
        return float(f"{value:.12g}")
    return value


@dataclass(frozen=True)
class RadioInfo:
    """Link quality of one uplink, as the network server reports it."""

    rssi_dbm: float | None = None
    snr_db: float | None = None
    spreading_factor: int | None = None
    gateway_count: int = 0
    channel_frequency_hz: float | None = None
    airtime_s: float | None = None
    extra: Mapping[str, Value] = field(default_factory=dict)

    def fields(self, f_cnt: int) -> dict[str, Value]:
        out: dict[str, Value] = {"f_cnt": f_cnt, "gateway_count": self.gateway_count}
        for name in ("rssi_dbm", "snr_db", "spreading_factor", "channel_frequency_hz", "airtime_s"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out


def radio_point(device: str, received_at: datetime, f_cnt: int, radio: RadioInfo) -> Point:
    """The ``radio`` point of one uplink."""
    return Point(RADIO, {"device": device}, radio.fields(f_cnt), as_utc(received_at))


def as_utc(time: datetime) -> datetime:
    """The same instant in UTC; naive times are taken as UTC."""
    if time.tzinfo is None:
        return time.replace(tzinfo=UTC)
    return time.astimezone(UTC)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_ns(time: datetime) -> int:
    """Nanoseconds since the epoch (exact: no float rounding)."""
    delta = as_utc(time) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def from_ns(ns: int) -> datetime:
    """The UTC datetime of nanoseconds since the epoch (microsecond resolution)."""
    return _EPOCH + timedelta(microseconds=ns // 1_000)
