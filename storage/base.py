"""The one store interface every backend implements, and the shapes its queries return."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

import numpy as np
import numpy.typing as npt

from decoders.core import Value
from storage.schema import DeadLetter, Point, RawUplink, UplinkRecord

__all__ = [
    "DeviceSummary",
    "ReadingRow",
    "ReadingTable",
    "RecordError",
    "Series",
    "Store",
    "StoreError",
    "StoreHealth",
    "StoredDeadLetter",
    "UnregisteredMeter",
    "WriteResult",
]


class StoreError(RuntimeError):
    """The store cannot do what was asked; the message says why and what to do."""


class RecordError(StoreError):
    """A record in the batch can never be stored as it is (retrying cannot help).

    Writers split such a batch to find the record and keep it as an ``unstorable`` dead letter;
    any other ``StoreError`` is transient (disk full, database down) and the batch is retried.
    """


@dataclass(frozen=True)
class WriteResult:
    """What a batch write did: uplinks stored new, and those already there (duplicates)."""

    written: int
    duplicates: int


@dataclass(frozen=True)
class DeviceSummary:
    """A device as the store has seen it."""

    device: str
    dev_eui: str
    decoder: str
    medium: str
    meter: str
    first_seen: datetime
    last_seen: datetime
    uplinks: int
    last_f_cnt: int
    last_reading: Mapping[str, Value] = field(default_factory=dict)
    last_reading_at: datetime | None = None
    battery_pct: float | None = None
    battery_v: float | None = None
    rssi_dbm: float | None = None
    snr_db: float | None = None
    tags: Mapping[str, str] = field(default_factory=dict)  # site tags of the newest reading


@dataclass(frozen=True)
class UnregisteredMeter:
    """A wireless M-Bus meter not in the registry, as one bridge has heard it (network time)."""

    meter: str  # address key: KAM-12345678-1B-16
    bridge: str
    manufacturer: str
    version: int
    device_type: int
    medium: str
    first_seen: datetime
    last_seen: datetime
    count: int  # bridge uplinks that carried it
    last_error: str  # why its last telegram could not be read; "" if it could


@dataclass(frozen=True)
class ReadingRow:
    """The values of one device's measurement at one instant."""

    time: datetime
    measurement: str
    values: Mapping[str, Value]


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True)
class ReadingTable:
    """A device's readings as columns, oldest first: each reading's time (ns since the epoch),
    measurement and values. What the API serialises without an object per reading (a year of
    one meter's 15-minute readings is 35,040 of them); ``rows()`` gives them as ``ReadingRow``.
    """

    times_ns: npt.NDArray[np.int64]
    measurements: Sequence[str]
    values: Sequence[Mapping[str, Value]]

    def __len__(self) -> int:
        return len(self.times_ns)

    def rows(self) -> list[ReadingRow]:
        """One ``ReadingRow`` per reading (times whole microseconds, as ``schema.from_ns``)."""
        epoch, microsecond = _EPOCH, _MICROSECOND
        return [
            ReadingRow(epoch + microsecond * (time_ns // 1_000), measurement, values)
            for time_ns, measurement, values in zip(
                self.times_ns.tolist(), self.measurements, self.values, strict=True
            )
        ]

    @classmethod
    def empty(cls) -> ReadingTable:
        """No readings."""
        return cls(np.empty(0, np.int64), (), ())


@dataclass(frozen=True)
class Series:
    """One field of one device as columns: times (ns since the epoch) and values, oldest first."""

    times_ns: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.times_ns)


# How far back (and ahead) a series read looks for the readings that bracket its window.
NEIGHBOUR_LOOKBACK_NS = 400 * 86_400 * 1_000_000_000


@dataclass(frozen=True)
class StoreHealth:
    """Whether the store can take writes, and the durable counts behind /health."""

    ok: bool
    backend: str
    detail: str
    uplinks: int
    dead_letters: Mapping[str, int]
    extra: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class StoredDeadLetter:
    """A dead letter and the store's key for it (to remove it once it became readings)."""

    key: str  # opaque; keys sort as the letters were stored (compare as integers)
    letter: DeadLetter


class Store(Protocol):
    """Readings, radio metadata, raw uplinks and dead letters; SQLite or InfluxDB behind it."""

    def write_uplinks(self, records: Sequence[UplinkRecord]) -> WriteResult:
        """Store accepted uplinks and their points; an uplink already stored is a duplicate."""
        ...

    def write_dead_letters(self, letters: Sequence[DeadLetter]) -> None:
        """Keep messages that did not become readings, with their raw bytes."""
        ...

    def devices(self) -> list[DeviceSummary]:
        """Every device seen, with its last reading and link quality."""
        ...

    def device(self, device: str) -> DeviceSummary | None:
        """One device, or None if it was never seen."""
        ...

    def unregistered_meters(self) -> list[UnregisteredMeter]:
        """wM-Bus meters heard through bridges but not in the registry (``UplinkRecord.sightings``),
        one per meter and bridge, sorted by meter then bridge."""
        ...

    def readings(
        self,
        device: str,
        start: datetime,
        end: datetime,
        fields: Sequence[str] = (),
        limit: int = 10_000,
    ) -> list[ReadingRow]:
        """A device's readings in [start, end), oldest first; only ``fields`` if given."""
        ...

    def reading_table(
        self,
        device: str,
        start: datetime,
        end: datetime,
        fields: Sequence[str] = (),
        limit: int = 10_000,
    ) -> ReadingTable:
        """``readings()`` as columns (the same readings, in the same order)."""
        ...

    def raw_uplinks(
        self, device: str | None = None, start: datetime | None = None, limit: int = 10_000
    ) -> list[RawUplink]:
        """Stored raw uplinks, oldest first, for re-decoding."""
        ...

    def series(
        self,
        field: str,
        start: datetime,
        end: datetime,
        *,
        devices: Sequence[str] | None = None,
        medium: str | None = None,
    ) -> dict[str, Series]:
        """One numeric field of many devices as columns, for metering.

        Each device's readings in [start, end], plus the last reading before ``start`` and the
        first after ``end`` (within ``NEIGHBOUR_LOOKBACK_NS``), so values at the window's bounds
        can be interpolated. ``devices`` None: every device (of ``medium``, if given) that has
        the field. Devices without readings are left out.
        """
        ...

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """The newest dead letters, newest first."""
        ...

    def find_dead_letters(
        self,
        reason: str | None = None,
        device: str | None = None,
        after: str | None = None,
        limit: int = 1000,
    ) -> list[StoredDeadLetter]:
        """Dead letters oldest first; of ``reason``/``device`` if given; after key ``after``."""
        ...

    def delete_dead_letters(self, keys: Sequence[str]) -> None:
        """Remove dead letters by key (they were re-processed into stored readings)."""
        ...

    def delete_readings(self, device: str) -> None:
        """Remove every reading point of a device (its raw uplinks and radio points stay)."""
        ...

    def write_points(self, points: Sequence[Point]) -> None:
        """Write points as they are, replacing equal ones: re-decoded readings, and lorameter's
        own ``consumption`` points."""
        ...

    def last_uplink_at(self, network: str) -> datetime | None:
        """The network server's receive time of the newest stored uplink from ``network``
        (``"tts"`` or ``"chirpstack"``), or None: where a gap backfill starts after a restart."""
        ...

    def health(self) -> StoreHealth:
        """Can the store take writes, and what does it hold."""
        ...

    def close(self) -> None:
        """Flush and release everything."""
        ...
