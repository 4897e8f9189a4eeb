"""Consumption points for dashboards: lorameter's own consumption per local hour, day and month.

Grafana plots these (the ``consumption`` measurement, storage/SCHEMA.md) as bars instead of
asking InfluxQL to difference registers, which cuts days in UTC, loses a range's first day and
shows a meter exchange as a negative day. Every run recomputes the recent intervals of every
device with ``metering/`` and overwrites their points, so late and out-of-order readings land.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

import numpy as np

from api.consumption import DeviceReport, Window, fleet_reports
from metering.calendar import local_midnight, to_ns
from metering.consumption import consumption
from metering.meter import MeterConfig
from storage.base import Store, StoreError
from storage.schema import Point, from_ns

__all__ = ["CONSUMPTION", "Rollup", "consumption_points"]

log = logging.getLogger("lorameter.rollup")

CONSUMPTION = "consumption"


def consumption_points(
    reports: Iterator[DeviceReport], interval: str, now: datetime
) -> Iterator[Point]:
    """One point per device and interval with a known consumption, at the interval's start.

    The running interval (it ends after ``now``) counts up to the device's last reading, so
    today's bar grows during the day; intervals without a known consumption are not written.
    """
    now_ns = to_ns(now)
    for report in reports:
        tags = {"device": report.device, "interval": interval, "medium": report.medium}
        if report.meter:
            tags["meter"] = report.meter
        bounds = report.intervals.bounds_ns.tolist()
        used = report.intervals.consumption.tolist()
        last = int(report.curve.times_ns[-1]) if len(report.curve) else None
        if bounds and bounds[-1] > now_ns and last is not None and last > bounds[-2]:
            partial = consumption(report.curve, np.array([bounds[-2], last]), 2**62)
            used[-1] = float(partial.consumption[0])
        for i, value in enumerate(used):
            if value == value:  # NaN: incomplete, never written as a guess
                yield Point(CONSUMPTION, tags, {report.field: round(value, 9)}, from_ns(bounds[i]))


class Rollup:
    """Writes the recent intervals' consumption every ``every_s`` seconds (and once at start).

    Hours and days from the start of yesterday (local) to now; months from the start of the
    previous month, at start and then every ``month_every_s``. Site tags come from the registry.
    """

    def __init__(
        self,
        store: Store,
        meters: Mapping[str, MeterConfig],
        timezone: str,
        *,
        every_s: float = 900.0,
        month_every_s: float = 6 * 3600.0,
    ) -> None:
        self.store = store
        self.meters = meters
        self.tz: tzinfo = ZoneInfo(timezone)
        self.every_s = every_s
        self.month_every_s = month_every_s
        self.written = 0
        self.last_error = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self, now: datetime, *, months: bool = True) -> int:
        """Recompute and write; the number of points written."""
        local = now.astimezone(self.tz)
        yesterday = local_midnight(local.date() - timedelta(days=1), self.tz)
        plan = [("hour", yesterday), ("day", yesterday)]
        if months:
            first = local.date().replace(day=1)
            previous = (first - timedelta(days=1)).replace(day=1)
            plan.append(("month", local_midnight(previous, self.tz)))
        written = 0
        for interval, start in plan:
            window = Window(start, now, interval, self.tz)
            points = list(
                self._with_sites(
                    consumption_points(
                        fleet_reports(self.store, self.meters, window), interval, now
                    )
                )
            )
            self.store.write_points(points)
            written += len(points)
        self.written += written
        return written

    def _with_sites(self, points: Iterator[Point]) -> Iterator[Point]:
        for point in points:
            config = self.meters.get(point.device)
            if config is not None and config.tags:
                yield Point(
                    point.measurement, {**config.tags, **point.tags}, point.fields, point.time
                )
            else:
                yield point

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="rollup", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:  # points are idempotent: the next run rewrites them
            self._thread.join(timeout=0.2)

    def _run(self) -> None:
        last_month = 0.0
        clock = 0.0
        while True:
            months = clock - last_month >= self.month_every_s or last_month == 0.0
            try:
                count = self.run_once(datetime.now(UTC), months=months)
                self.last_error = ""
                log.debug("consumption points written: %d", count)
                if months:
                    last_month = clock or 1e-9
            except (StoreError, ValueError) as exc:
                self.last_error = str(exc)
                log.warning(
                    "consumption points not written (retrying in %.0f s): %s", self.every_s, exc
                )
            except Exception:  # a bug here must not end the service; it is logged whole
                log.exception("consumption points failed")
            if self._stop.wait(self.every_s):
                return
            clock += self.every_s
