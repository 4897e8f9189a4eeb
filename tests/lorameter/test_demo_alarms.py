"""The demo fleet shows its alarms (issue 9): a leaking water meter, a backflow meter, a silent
heat meter and a low battery, and no alarm on the healthy meters, through the real pipeline,
a real SQLite store and the alarm engine's sweep."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ingest.alarms import AlarmEngine
from ingest.devices import parse_registry
from ingest.pipeline import Accepted, Pipeline
from lorameter.demo import simulator
from storage.alarms import SQLiteAlarms
from storage.sqlite import SQLiteStore

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def test_water_profile_rests_at_night_and_integrates_exactly() -> None:
    (water,) = [m for m in simulator.fleet(8, NOW) if m.kind == "water" and not m.fault][:1]
    t0 = water.seconds(NOW)
    steps = 20_000
    numeric = sum(water.profile.rate(t0 + (i + 0.5) * 86_400 / steps) for i in range(steps))
    exact = water.profile.total(t0 + 86_400) - water.profile.total(t0)
    assert exact == pytest.approx(numeric * 86_400 / steps / 3600, rel=1e-6)
    night = [NOW.replace(hour=h) for h in (1, 2, 3)]  # 02:00-05:00 in Berlin (winter)
    assert all(water.rate(t) == 0 for t in night)
    assert water.rate(NOW.replace(hour=12)) > 0


def test_demo_fleet_raises_its_alarms(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    meters = simulator.fleet(20, NOW)
    registry = parse_registry(simulator.registry_document(meters))
    pipeline = Pipeline(registry)
    store = SQLiteStore(tmp_path / "demo.db")
    alarms = SQLiteAlarms(tmp_path / "demo.db")
    engine = AlarmEngine(alarms, registry, store)
    batch = []
    for topic, body in simulator.history(meters, NOW, 4):
        batch.append(pipeline.process(topic, body, NOW))
        if len(batch) == 500:
            store.write_uplinks([o.record for o in batch if isinstance(o, Accepted)])
            engine.on_stored(batch)
            batch = []
            # the sweep runs while the history catches up, its clock a day ahead of the data
            engine.sweep(NOW + timedelta(days=1))
    store.write_uplinks([o.record for o in batch if isinstance(o, Accepted)])
    engine.on_stored(batch)
    engine.sweep(NOW)
    found = {(a.device, a.kind) for a in alarms.alarms(state="active")}
    faulty = {m.index: m.device_id for m in meters if m.fault}
    assert found == {
        (faulty[7], "continuous_flow"),
        (faulty[7], "night_flow"),
        (faulty[19], "backflow"),
        (faulty[4], "silent"),
        (faulty[6], "low_battery"),
    }
    # no meter was taken for silent while the history caught up, but heat-000's six silent
    # hours (the metering demo's gap) were, and it cleared when the meter came back
    (gap,) = alarms.alarms(state="cleared", kind="silent")
    assert gap.device == "heat-000"
    began, ended = meters[0].gap or (NOW, NOW)
    assert gap.cleared_at is not None
    assert began < gap.raised_at <= began + timedelta(minutes=45)  # 3 x 15 min after the last
    assert ended <= gap.cleared_at < ended + timedelta(minutes=15)  # its first uplink again
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
    (silent,) = alarms.alarms(kind="silent")
    assert NOW - timedelta(hours=3) < silent.raised_at < NOW - timedelta(hours=2)
