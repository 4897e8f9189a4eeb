"""The consumption points dashboards plot: lorameter's own consumption, in both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from ingest.devices import parse_registry
from ingest.pipeline import Accepted, Pipeline
from lorameter.demo import simulator
from lorameter.rollup import Rollup
from metering.calendar import local_midnight
from storage import open_store

pytestmark = pytest.mark.integration

NOW = datetime(2025, 11, 3, 10, 7, tzinfo=UTC)  # 3 days of history cover the month start
BERLIN = ZoneInfo("Europe/Berlin")


def stored_points(store_url: str, store: Any, influxd: Any) -> list[dict[str, Any]]:
    """Every consumption point as {device, interval, site, field, value, time}."""
    if store_url.startswith("sqlite"):
        import json

        rows = store._db().execute(
            "SELECT device, time_ns, field, value, tags FROM points WHERE measurement LIKE ?",
            ("consumption.%",),
        )
        return [
            {**json.loads(tags), "field": f, "value": v, "time": t}
            for _, t, f, v, tags in rows.fetchall()
        ]
    store.flush()
    database = store_url.rsplit("/", 1)[1]
    body = httpx.post(
        f"{influxd.base_url}/query",
        data={"db": database, "q": "SELECT * FROM consumption", "epoch": "ns"},
    ).json()
    (series,) = body["results"][0]["series"]
    out = []
    for row in series["values"]:
        item = dict(zip(series["columns"], row, strict=True))
        for field in ("volume_m3", "energy_import_kwh", "energy_heat_kwh"):
            if item.get(field) is not None:
                out.append({**item, "field": field, "value": item[field]})
    return out


def test_rollup_writes_each_interval_once_with_the_true_consumption(
    store_url: str, spool_path: Path, request: pytest.FixtureRequest
) -> None:
    meters = simulator.fleet(15, NOW)
    registry = parse_registry(simulator.registry_document(meters))
    pipeline = Pipeline(registry)
    store = open_store(store_url, spool_path=spool_path)
    records = []
    for topic, body in simulator.history(meters, NOW, 3):
        out = pipeline.process(topic, body, NOW)
        assert isinstance(out, Accepted)
        records.append(out.record)
    store.write_uplinks(records)
    rollup = Rollup(store, registry.meter_configs(), "Europe/Berlin")
    first = rollup.run_once(NOW)
    assert rollup.run_once(NOW) == first  # recomputed, written again: the same points
    influxd = request.getfixturevalue("influxd") if store_url.startswith("influx") else None
    points = stored_points(store_url, store, influxd)
    store.close()
    assert len(points) == first  # overwritten, not duplicated
    water = {
        p["time"]: p["value"]
        for p in points
        if p["device"] == "water-001" and p["interval"] == "day"
    }
    today = local_midnight(NOW.astimezone(BERLIN).date(), BERLIN)
    yesterday = today - timedelta(days=1)
    meter = next(m for m in meters if m.device_id == "water-001")
    assert sorted(water) == [int(yesterday.timestamp() * 1e9), int(today.timestamp() * 1e9)]
    assert water[int(yesterday.timestamp() * 1e9)] == pytest.approx(
        meter.consumed(yesterday, today), rel=1e-3
    )
    # today's bar runs up to the last reading (it grows during the day)
    assert 0 < water[int(today.timestamp() * 1e9)] <= meter.consumed(today, NOW)
    hours = sorted(
        (p["time"], p["value"])
        for p in points
        if p["device"] == "pulse16-014" and p["interval"] == "hour"
    )
    assert len(hours) >= 24 and all(v >= 0 for _, v in hours)  # across the rollovers
    assert all(b - a == 3600 * 10**9 for (a, _), (b, _) in pairwise(hours))
    months = [p for p in points if p["interval"] == "month" and p["device"] == "heat-000"]
    assert len(months) == 1 and months[0]["site"] == "rathaus"
