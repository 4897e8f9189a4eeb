"""The fleet path gives the per-device answers, for plain registers and for every special case."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from metering.calendar import to_ns
from metering.fleet import FleetSeries, fleet_consumption
from metering.meter import Exchange, MeterConfig, device_consumption
from metering.register import RegisterModel

H = 3_600_000_000_000
T0 = to_ns(datetime(2026, 3, 1, tzinfo=UTC))

device = st.tuples(
    st.lists(st.integers(1, 6 * 60), min_size=0, max_size=24),  # minutes between readings
    st.lists(st.floats(0, 5, allow_nan=False), min_size=25, max_size=25),  # consumption steps
    st.sampled_from(["plain", "dip", "reset", "duplicate", "delta", "exchange", "interval"]),
)


def build(spec: tuple[list[int], list[float], str]) -> tuple[np.ndarray, np.ndarray, MeterConfig]:
    gaps, steps, kind = spec
    times = T0 + np.cumsum([0, *gaps]).astype(np.int64) * 60_000_000_000
    values = 100.0 + np.cumsum(steps[: len(times)])
    config = MeterConfig()
    if kind == "dip" and len(values) > 2:
        values[len(values) // 2] -= 0.0005
    if kind == "reset" and len(values) > 4:
        values[len(values) // 2 :] -= 90
    if kind == "duplicate" and len(times) > 2:
        times[1] = times[0]
    if kind == "delta":
        config = MeterConfig(registers={"volume_m3": RegisterModel(delta=True)})
    if kind == "exchange" and len(times) > 1:
        at = datetime.fromtimestamp(int(times[1] - 1) / 1e9, UTC)
        config = MeterConfig(exchanges=(Exchange(at, {"volume_m3": 101.0}, {"volume_m3": 0.0}),))
    if kind == "interval":
        config = MeterConfig(expected_interval_s=1800)
    return times, values, config


@settings(max_examples=150, deadline=None)
@given(
    devices=st.lists(device, min_size=0, max_size=8),
    cuts=st.lists(st.integers(-120, 30 * 60), min_size=2, max_size=6, unique=True),
)
def test_fleet_answers_equal_device_answers(
    devices: list[tuple[list[int], list[float], str]], cuts: list[int]
) -> None:
    bounds = T0 + np.array(sorted(cuts), dtype=np.int64) * 60_000_000_000
    built = [build(d) for d in devices]
    fleet = FleetSeries.from_arrays({f"d{i}": (t, v) for i, (t, v, _) in enumerate(built)})
    configs = [c for t, _, c in built if len(t)]
    got = fleet_consumption(fleet, configs, "volume_m3", bounds)
    assert len(got) == len(fleet.devices)
    for (curve, intervals), name in zip(got, fleet.devices, strict=True):
        times, values, config = built[int(name[1:])]
        _, want = device_consumption(config, "volume_m3", times, values, bounds)
        assert_array_equal(intervals.status, want.status)
        assert_allclose(intervals.consumption, want.consumption, rtol=1e-9, atol=1e-9)
        assert_allclose(intervals.start_reading, want.start_reading, rtol=1e-9, atol=1e-9)
        assert_allclose(intervals.end_reading, want.end_reading, rtol=1e-9, atol=1e-9)
        assert len(curve) > 0


def test_a_gap_longer_than_three_learnt_intervals_is_estimated_on_both_paths() -> None:
    times = T0 + np.array([0, 1, 2, 3, 10], dtype=np.int64) * H
    values = np.array([0.0, 1, 2, 3, 10])
    fleet = FleetSeries.from_arrays({"a": (times, values)})
    ((_, got),) = fleet_consumption(
        fleet, [MeterConfig()], "volume_m3", T0 + np.array([0, 2, 5]) * H
    )
    assert got.status.tolist() == ["measured", "estimated"]
