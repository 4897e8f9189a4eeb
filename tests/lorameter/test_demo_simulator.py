"""The demo fleet sends real frames our decoders accept, with registers that never run back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ingest.devices import parse_registry
from ingest.pipeline import Accepted, Pipeline
from lorameter.demo import simulator

NOW = datetime(2025, 11, 20, 10, 0, tzinfo=UTC)


def test_every_meter_kind_decodes() -> None:
    meters = simulator.fleet(32)
    assert {m.kind for m in meters} == {"heat", "water", "electricity", "pulse"}
    assert len({m.device_id for m in meters}) == len({m.dev_eui for m in meters}) == 32
    pipeline = Pipeline(parse_registry(simulator.registry_document(meters)))
    for meter in meters:
        topic, body = meter.uplink(NOW)
        out = pipeline.process(topic, body, NOW)
        assert isinstance(out, Accepted), (meter.device_id, out)
        assert out.record.raw.decoder == meter.decoder


def test_registers_grow_and_match_the_payloads() -> None:
    meters = simulator.fleet(8)
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
    meters = simulator.fleet(4)
    first = list(simulator.history(meters, NOW, 1))
    assert first == list(simulator.history(meters, NOW, 1))
    assert len(first) >= 4 * 96


def test_bad_messages_are_rejected() -> None:
    pipeline = Pipeline(parse_registry(simulator.registry_document(simulator.fleet(4))))
    reasons = [pipeline.process(t, b, NOW) for t, b in simulator.bad_messages()]
    assert all(not isinstance(r, Accepted) for r in reasons)
