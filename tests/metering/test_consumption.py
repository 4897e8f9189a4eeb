"""metering/ on hand-computed series: every rule of the consumption issue, DST days included."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from metering.calendar import interval_bounds, to_ns
from metering.consumption import consumption, median_interval_ns, register_at
from metering.register import ExchangePoint, RegisterModel, build_curve

BERLIN = ZoneInfo("Europe/Berlin")
H = 3_600_000_000_000  # one hour in ns
T0 = to_ns(datetime(2026, 3, 1, tzinfo=UTC))


def series(*pairs: tuple[float, float]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """(hours after T0, value) pairs as the store's arrays."""
    times = np.array([T0 + round(h * H) for h, _ in pairs], dtype=np.int64)
    return times, np.array([v for _, v in pairs], dtype=np.float64)


def hours(*edges: float) -> npt.NDArray[np.int64]:
    return np.array([T0 + round(h * H) for h in edges], dtype=np.int64)


def used(
    pairs: Sequence[tuple[float, float]], edges: Sequence[float], **model: Any
) -> npt.NDArray[np.float64]:
    curve = build_curve(*series(*pairs), RegisterModel(**model))
    return consumption(curve, hours(*edges), 3 * H).consumption


# -- local calendar ----------------------------------------------------------------------------


def test_spring_dst_day_is_23_hours_and_autumn_day_25() -> None:
    spring = interval_bounds(
        datetime(2026, 3, 29, tzinfo=BERLIN), datetime(2026, 3, 30, tzinfo=BERLIN), "day", BERLIN
    )
    autumn = interval_bounds(
        datetime(2026, 10, 25, tzinfo=BERLIN), datetime(2026, 10, 26, tzinfo=BERLIN), "day", BERLIN
    )
    assert np.diff(spring).tolist() == [23 * H]
    assert np.diff(autumn).tolist() == [25 * H]


def test_hours_and_quarters_of_the_dst_days() -> None:
    day = (datetime(2026, 10, 25, tzinfo=BERLIN), datetime(2026, 10, 26, tzinfo=BERLIN))
    assert len(interval_bounds(*day, "hour", BERLIN)) - 1 == 25
    assert len(interval_bounds(*day, "15min", BERLIN)) - 1 == 100
    spring = (datetime(2026, 3, 29, tzinfo=BERLIN), datetime(2026, 3, 30, tzinfo=BERLIN))
    assert len(interval_bounds(*spring, "15min", BERLIN)) - 1 == 92


def test_months_are_local_months() -> None:
    bounds = interval_bounds(
        datetime(2026, 1, 15, tzinfo=UTC), datetime(2026, 4, 2, tzinfo=UTC), "month", BERLIN
    )
    starts = [datetime.fromtimestamp(b / 1e9, BERLIN).isoformat() for b in bounds]
    assert starts == [
        "2026-01-01T00:00:00+01:00",
        "2026-02-01T00:00:00+01:00",
        "2026-03-01T00:00:00+01:00",
        "2026-04-01T00:00:00+02:00",
        "2026-05-01T00:00:00+02:00",
    ]


def test_a_start_inside_an_interval_is_floored_to_its_local_start() -> None:
    bounds = interval_bounds(
        datetime(2026, 7, 1, 23, 30, tzinfo=UTC),  # 01:30 local on 2 July
        datetime(2026, 7, 2, 22, 0, tzinfo=UTC),  # midnight local on 3 July
        "day",
        BERLIN,
    )
    assert bounds.tolist() == [
        to_ns(datetime(2026, 7, 2, tzinfo=BERLIN)),
        to_ns(datetime(2026, 7, 3, tzinfo=BERLIN)),
    ]


def test_bad_calendar_requests_are_refused() -> None:
    a = datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="interval must be one of"):
        interval_bounds(a, a + timedelta(days=1), "week", BERLIN)
    with pytest.raises(ValueError, match="after the start"):
        interval_bounds(a, a, "day", BERLIN)
    with pytest.raises(ValueError, match="more than"):
        interval_bounds(a, a + timedelta(days=36500), "15min", BERLIN)


# -- the rules ---------------------------------------------------------------------------------


def test_readings_off_the_hour_split_by_time_not_by_which_hour_they_arrived_in() -> None:
    # 13 s past each hour, 1.0 per hour: the hour [1, 2) holds exactly 1.0, not the next hour's.
    s = 13 / 3600
    pairs = [(s, 10.0), (1 + s, 11.0), (2 + s, 12.0), (3 + s, 13.0)]
    assert_allclose(used(pairs, [1, 2, 3]), [1.0, 1.0])


def test_a_brief_zero_after_a_reboot_is_not_a_spike() -> None:
    curve = build_curve(*series((0, 200.0), (1, 0.0), (2, 200.1), (3, 200.3)))
    result = consumption(curve, hours(0, 3), 3 * H)
    assert_allclose(result.consumption, [0.3])
    assert curve.ignored == 1
    assert [e.kind for e in result.events[0]] == ["outlier"]


def test_a_drop_that_stays_is_a_reset_consuming_nothing_at_the_step() -> None:
    pairs = [(0, 500.0), (1, 501.0), (2, 2.0), (3, 3.0), (4, 4.0), (5, 5.0)]
    curve = build_curve(*series(*pairs))
    result = consumption(curve, hours(0, 1, 2, 5), 3 * H)
    assert_allclose(result.consumption, [1.0, 0.0, 3.0])
    assert [(e.kind, e.time_ns) for e in result.events[1]] == [("reset", T0 + 2 * H)]


def test_a_dip_within_tolerance_is_not_consumed_twice() -> None:
    # 99.995 is a dip of 5 L on a 100 m³ register (tolerance 0.01): held at 100, not a reset.
    pairs = [(0, 100.0), (1, 99.995), (2, 100.02)]
    assert_allclose(used(pairs, [0, 1, 2]), [0.0, 0.02])


def test_a_short_dip_beyond_tolerance_that_returns_is_dropped() -> None:
    pairs = [(0, 100.0), (1, 90.0), (2, 100.5), (3, 101.0)]
    assert_allclose(used(pairs, [0, 3]), [1.0])


def test_a_misdecoded_spike_is_dropped() -> None:
    pairs = [(0, 21.0), (1, 672137.216), (2, 21.1), (3, 21.2)]
    assert_allclose(used(pairs, [0, 3]), [0.2], atol=1e-9)


def test_rollover_at_the_declared_width_continues() -> None:
    pairs = [(0, 99_999.5), (1, 99_999.9), (2, 0.3), (3, 1.0)]
    result = used(pairs, [0, 2, 3], rollover=100_000.0)
    assert_allclose(result, [0.8, 0.7], atol=1e-6)


def test_without_a_declared_width_the_same_drop_is_a_reset() -> None:
    pairs = [(0, 99_999.5), (1, 99_999.9), (2, 0.3), (3, 1.0), (4, 1.5)]
    assert_allclose(used(pairs, [0, 2, 4]), [0.4, 1.2], atol=1e-6)


def test_a_16_bit_pulse_counter_in_litres_rolls_over() -> None:
    # 65,536 pulses of 10 L = 655.36 m³ register width, offset 1234.5 m³.
    width = 65_536 * 10 / 1000
    pairs = [(0, 1234.5 + 65_530 * 0.01), (1, 1234.5 + 4 * 0.01)]
    assert_allclose(used(pairs, [0, 1], rollover=width), [0.1], atol=1e-9)


def test_delta_counts_are_summed_not_differenced() -> None:
    curve = build_curve(*series((0, 5.0), (1, 3.0), (2, 4.0)), RegisterModel(delta=True))
    assert curve.cumulative.tolist() == [0.0, 3.0, 7.0]
    result = consumption(curve, hours(0, 1, 2), 3 * H)
    assert result.consumption.tolist() == [3.0, 4.0]
    assert np.isnan(result.start_reading).all()  # a delta counter has no register to show


def test_duplicates_and_out_of_order_readings_give_the_same_answer() -> None:
    ordered = [(0, 10.0), (1, 11.0), (2, 12.5), (3, 14.0)]
    shuffled = [(2, 12.5), (0, 10.0), (3, 14.0), (1, 11.0), (2, 12.5), (0, 10.0)]
    assert_array_equal(used(shuffled, [0, 1.5, 3]), used(ordered, [0, 1.5, 3]))
    curve = build_curve(*series(*shuffled))
    assert curve.duplicates == 2


def test_a_reading_on_a_bound_is_the_shared_bound_of_both_intervals() -> None:
    curve = build_curve(*series((0, 10.0), (1, 11.0), (2, 13.0)))
    result = consumption(curve, hours(0, 1, 2), 3 * H)
    assert result.end_reading[0] == result.start_reading[1] == 11.0
    assert result.consumption.tolist() == [1.0, 2.0]


def test_a_gap_is_spread_only_to_place_the_bounds_and_marked_estimated() -> None:
    # Hourly meter silent from 01:00 to 07:00: 6.0 m³ in the gap.
    curve = build_curve(*series((0, 0.0), (1, 1.0), (7, 7.0), (8, 8.0)))
    result = consumption(curve, hours(0, 1, 4, 7, 8), 3 * H)
    assert_allclose(result.consumption, [1.0, 3.0, 3.0, 1.0])
    assert result.status.tolist() == ["measured", "estimated", "estimated", "measured"]
    assert result.total == pytest.approx(8.0)


def test_bounds_outside_the_readings_are_incomplete_never_guessed() -> None:
    curve = build_curve(*series((1, 10.0), (2, 11.0)))
    result = consumption(curve, hours(0, 1, 2, 3), 3 * H)
    assert result.status.tolist() == ["incomplete", "measured", "incomplete"]
    assert np.isnan(result.consumption[[0, 2]]).all()
    assert result.consumption[1] == 1.0
    assert result.total is None


def test_first_day_of_a_range_has_a_value_from_the_reading_before_it() -> None:
    # Daily readings at 06:00 local; the range starts at midnight: the day before brackets it.
    day = datetime(2026, 3, 28, 6, tzinfo=BERLIN)
    times = np.array([to_ns(day + timedelta(days=d)) for d in range(4)], dtype=np.int64)
    curve = build_curve(times, np.array([100.0, 124.0, 147.0, 171.0]))
    bounds = interval_bounds(
        datetime(2026, 3, 29, tzinfo=BERLIN), datetime(2026, 3, 31, tzinfo=BERLIN), "day", BERLIN
    )
    result = consumption(curve, bounds, 3 * 24 * H)
    assert result.status.tolist() == ["measured", "measured"]
    # 06:00 to 06:00 across the spring change is 23 h (24 m³), the next 24 h (23 m³). Local
    # 29 March [23:00Z, 22:00Z) takes the last 5 h of the first and the first 18 h of the second.
    first = 24.0 * 5 / 23 + 23.0 * 18 / 24
    assert_allclose(result.consumption[0], first)


def test_an_interval_straddling_a_meter_exchange() -> None:
    # Old meter to 5000 at 02:00, new meter from 0.5; a late reading of the old meter at 02:30
    # and an early one of the new meter at 01:30 are ignored and counted.
    pairs = [(0, 4990.0), (1, 4995.0), (1.5, 0.6), (2.5, 4999.0), (3, 1.5), (4, 2.5)]
    exchange = ExchangePoint(T0 + 2 * H, old_end=5000.0, new_start=0.5, new_meter="WM-2")
    curve = build_curve(*series(*pairs), exchanges=[exchange])
    result = consumption(curve, hours(0, 4, 1, 2, 3), 3 * H)
    assert_allclose(result.consumption[0], (5000 - 4990) + (2.5 - 0.5))
    assert curve.ignored == 2
    split = consumption(curve, hours(1, 2, 3), 3 * H)
    assert_allclose(split.consumption, [5.0, 1.0])
    assert split.end_reading[0] == 5000.0  # the old meter's end
    assert split.start_reading[1] == 0.5  # the new meter's start
    assert [e.kind for e in split.events[1]] == ["exchange"]


def test_register_at_a_key_date() -> None:
    curve = build_curve(*series((0, 100.0), (1, 101.0), (10, 110.0)))
    on = register_at(curve, T0 + H, H)
    between = register_at(curve, T0 + 5 * H, H)
    assert on is not None and (on.value, on.status, on.from_values) == (101.0, "measured", (101.0,))
    assert between is not None and between.status == "interpolated"
    assert between.value == pytest.approx(105.0)
    assert between.from_ns == (T0 + H, T0 + 10 * H)
    assert register_at(curve, T0 + 11 * H, H) is None  # never extrapolated
    assert register_at(curve, T0 - 1, H) is None


def test_register_at_across_a_rollover_reads_the_wrapped_register() -> None:
    curve = build_curve(*series((0, 99_999.0), (2, 1.0)), RegisterModel(rollover=100_000.0))
    value = register_at(curve, T0 + H, H)
    assert value is not None and value.value == pytest.approx(0.0, abs=1e-6)


def test_median_interval_is_learnt_from_the_readings() -> None:
    times, _ = series((0, 0), (0.25, 0), (0.5, 0), (0.75, 0), (3, 0))
    assert median_interval_ns(times) == H // 4
    assert median_interval_ns(times[:2]) is None


# -- the property ------------------------------------------------------------------------------

steps = st.lists(
    st.tuples(
        st.floats(0.01, 30, allow_nan=False),  # hours until this reading
        st.one_of(  # what the register did
            st.floats(0, 50, allow_nan=False),  # consumption
            st.floats(-1e-3, 0, allow_nan=False),  # jitter
            st.just(-1e6),  # a reset to (about) zero
        ),
    ),
    min_size=2,
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(
    steps=steps,
    cuts=st.lists(st.floats(0, 1, allow_nan=False), min_size=0, max_size=12),
    rollover=st.sampled_from([None, 1000.0]),
    delta=st.booleans(),
)
def test_intervals_add_up_to_their_union(
    steps: list[tuple[float, float]], cuts: list[float], rollover: float | None, delta: bool
) -> None:
    t, v = 0.0, 500.0
    pairs = []
    for dt, change in steps:
        t += dt
        v = max(0.0, v + change) if rollover is None else (v + abs(change)) % rollover
        pairs.append((t, abs(change) if delta else v))
    curve = build_curve(*series(*pairs), RegisterModel(rollover=rollover, delta=delta))
    # Over the span the kept readings cover (an unconfirmed drop at the end is left out).
    first, last = int(curve.times_ns[0]), int(curve.times_ns[-1])
    assume(last > first)
    edges = np.unique([first, last, *(first + round(c * (last - first)) for c in cuts)])
    pieces = consumption(curve, edges, 3 * H)
    whole = consumption(curve, np.array([first, last]), 3 * H)
    assert whole.total is not None and pieces.total is not None
    assert pieces.total == pytest.approx(whole.total, rel=1e-9, abs=1e-9)
    assert (pieces.consumption >= 0).all()


def test_a_pulse_register_with_an_offset_reads_back_on_the_nearer_side_of_its_wrap() -> None:
    # 1 L pulses, 16 bits (65.536 m³), register offset 2000 m³: 2065.0 then 2000.5 after a wrap.
    curve = build_curve(*series((0, 2065.0), (4, 2000.5)), RegisterModel(rollover=65.536))
    early = register_at(curve, T0 + H, H)
    late = register_at(curve, T0 + 3 * H, H)
    assert early is not None and early.value == pytest.approx(2065.0 + 1.036 / 4)
    assert late is not None and late.value == pytest.approx(2000.5 - 1.036 / 4)
