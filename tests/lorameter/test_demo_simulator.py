"""The demo fleet sends real frames our decoders accept, with registers that never run back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from api.consumption import DeviceReport, Window, device_report
from ingest.devices import parse_registry
from ingest.pipeline import Accepted, Pipeline
from lorameter.demo import simulator
from storage import open_store
from storage.schema import from_ns

NOW = datetime(2025, 11, 20, 10, 0, tzinfo=UTC)


def test_every_meter_kind_decodes() -> None:
    meters = simulator.fleet(32, NOW)
    assert {m.kind for m in meters} == {"heat", "water", "electricity", "pulse", "pulse16"}
    assert len({m.device_id for m in meters}) == len({m.dev_eui for m in meters}) == 32
    pipeline = Pipeline(parse_registry(simulator.registry_document(meters)))
    for meter in meters:
        topic, body = meter.uplink(NOW)
        out = pipeline.process(topic, body, NOW)
        assert isinstance(out, Accepted), (meter.device_id, out)
        assert out.record.raw.decoder == meter.decoder


def test_registers_grow_and_match_the_payloads() -> None:
    meters = simulator.fleet(8, NOW)
    pipeline = Pipeline(parse_registry(simulator.registry_document(meters)))
    register = {
        "heat": "energy_heat_kwh",
        "water": "volume_m3",
        "electricity": "energy_import_kwh",
        "pulse": "volume_m3",
    }
    for meter in meters:
        values = []
        for hours in range(0, 48, 3):
            when = NOW + timedelta(hours=hours)
            out = pipeline.process("t", meter.uplink(when)[1], when)
            assert isinstance(out, Accepted)
            point = next(p for p in out.record.points if p.time == when)
            values.append(point.fields[register[meter.kind]])
        assert values == sorted(values), meter.device_id
        assert values[-1] > values[0]
        assert abs(values[-1] - meter.register(NOW + timedelta(hours=45))) < 1.0


def test_history_is_deterministic_and_complete() -> None:
    meters = simulator.fleet(4, NOW)
    first = list(simulator.history(meters, NOW, 1))
    assert first == list(simulator.history(meters, NOW, 1))
    assert len(first) >= 4 * 96


def test_bad_messages_are_rejected() -> None:
    pipeline = Pipeline(parse_registry(simulator.registry_document(simulator.fleet(4, NOW))))
    reasons = [pipeline.process(t, b, NOW) for t, b in simulator.bad_messages()]
    assert all(not isinstance(r, Accepted) for r in reasons)


def test_history_shows_an_exchange_a_rollover_and_a_gap_and_metering_gets_them_right(
    tmp_path: Path,
) -> None:
    meters = simulator.fleet(15, NOW)
    registry = parse_registry(simulator.registry_document(meters))
    pipeline = Pipeline(registry)
    store = open_store(f"sqlite:///{tmp_path}/demo.db")
    records = []
    for topic, body in simulator.history(meters, NOW, 5):
        out = pipeline.process(topic, body, NOW)
        assert isinstance(out, Accepted), out
        records.append(out.record)
    store.write_uplinks(records)
    configs = registry.meter_configs()
    berlin = ZoneInfo("Europe/Berlin")
    window = Window(
        datetime(2025, 11, 16, tzinfo=berlin), datetime(2025, 11, 20, tzinfo=berlin), "day", berlin
    )
    by_id = {m.device_id: m for m in meters}

    def report(device: str) -> DeviceReport:
        summary = store.device(device)
        assert summary is not None
        return device_report(store, summary, configs[device], window)

    for device, event in (("water-001", "exchange"), ("pulse16-014", "rollover")):
        days = report(device)
        meter = by_id[device]
        true = [
            meter.consumed(from_ns(a), from_ns(b))
            for a, b in pairwise(days.intervals.bounds_ns.tolist())
        ]
        assert days.intervals.consumption == pytest.approx(true, rel=1e-3, abs=2e-3), device
        assert event in {e.kind for day in days.intervals.events for e in day}, device
        assert (days.intervals.status == "measured").all()
    heat = report("heat-000")
    assert "estimated" in heat.intervals.status.tolist()  # the day of the 6-hour gap
    assert (heat.intervals.consumption > 0).all()
    store.close()
