"""The alarm rules of metering/alarms.py on hand-built series, DST nights included."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from metering.alarms import (
    HOUR_NS,
    KINDS,
    RULES,
    Facts,
    Trigger,
    check_overrides,
    continuous_flow,
    learn_interval,
    night_flow,
    reverse_flow,
    rules_for,
    silent,
    thresholds,
    transition,
)
from storage.schema import to_ns

BERLIN = ZoneInfo("Europe/Berlin")
T0 = to_ns(datetime(2026, 11, 20, 10, 0, tzinfo=UTC))


def judge(kind: str, **facts):
    rule = KINDS[kind]
    return rule.condition(Facts(time_ns=T0, **facts), thresholds(rule, {}))


def hours_from(start: datetime, n: int) -> np.ndarray:
    return np.array([to_ns(start) + i * HOUR_NS for i in range(n)], dtype=np.int64)


def test_lifecycle_one_active_alarm_per_kind() -> None:
    on, off = (
        judge("leak", values={"alarm_leak": True}),
        judge("leak", values={"alarm_leak": False}),
    )
    assert transition(False, on) == "raise"
    assert transition(True, on) == "repeat"
    assert transition(True, off) == "clear"
    assert transition(False, off) is None
    assert transition(True, None) is None


def test_table_covers_every_meter_flag() -> None:
    # every alarm_* field of the vocabulary has a kind that reads it
    from decoders.core import VOCABULARY

    flags = {n for n in VOCABULARY if n.startswith("alarm_")}
    read = {n for n in flags for r in RULES if judge(r.kind, values={n: True}) is not None}
    assert read == flags
    assert len({r.kind for r in RULES}) == len(RULES)


@pytest.mark.parametrize(
    ("kind", "field"),
    [("leak", "alarm_leak"), ("burst", "alarm_burst"), ("backflow", "alarm_backflow"),
     ("tamper", "alarm_tamper"), ("dry_pipe", "alarm_dry")],
)  # fmt: skip
def test_meter_flags(kind: str, field: str) -> None:
    assert judge(kind, values={field: True}).active
    assert not judge(kind, values={field: False}).active
    assert judge(kind, values={"volume_m3": 1.0}) is None  # a reading without the flag: no news
    assert judge(kind, values={field: True}).at_ns == T0


def test_low_battery_from_flag_or_level() -> None:
    assert judge("low_battery", values={"alarm_low_battery": True}).active
    low = judge("low_battery", values={"battery_pct": 7.0})
    assert low.active and low.value == 7.0 and "below 10 %" in low.reason
    assert not judge("low_battery", values={"battery_pct": 10.0}).active
    assert not judge("low_battery", values={"alarm_low_battery": False, "battery_pct": 80}).active
    assert judge("low_battery", values={"volume_m3": 1.0}) is None
    rule = KINDS["low_battery"]
    limits = thresholds(rule, {"low_battery": {"battery_pct": 20}})
    assert rule.condition(Facts(T0, values={"battery_pct": 15.0}), limits).active


def test_meter_error_from_flag_or_uninterpreted_status_word() -> None:
    assert judge("meter_error", values={"alarm_meter_error": True}).active
    # an M-Bus status word no alarm_* field explains is a meter error ...
    word = judge("meter_error", values={"error_flags": 0x04})
    assert word.active and "0x4" in word.reason
    # ... but when the decoder interpreted it (low battery), the word is not raised twice
    assert not judge("meter_error", values={"error_flags": 0x04, "alarm_low_battery": True}).active
    assert not judge("meter_error", values={"error_flags": 0}).active


def test_frame_counter_reset() -> None:
    reset = judge("rejoin", f_cnt=0, previous_f_cnt=5127)
    assert reset.active and "5127 to 0" in reset.reason
    assert not judge("rejoin", f_cnt=5128, previous_f_cnt=5127).active
    assert judge("rejoin", f_cnt=3, previous_f_cnt=None) is None  # first uplink: nothing known


def test_clock_drift() -> None:
    assert judge("clock_drift", drift_s=901).active
    ahead = judge("clock_drift", drift_s=-3600)
    assert ahead.active and "ahead of" in ahead.reason
    assert not judge("clock_drift", drift_s=120).active
    assert judge("clock_drift") is None


def test_undecodable_needs_a_streak() -> None:
    assert judge("undecodable", dead_streak=2) is None
    assert judge("undecodable", dead_streak=3).active
    assert not judge("undecodable", dead_streak=0).active  # an accepted uplink clears it


def test_silent_meter_raised_when_it_fell_silent_and_back() -> None:
    last = T0
    quarter = 900.0
    assert not silent(last, quarter, last + 40 * 60 * 10**9).active
    gone = silent(last, quarter, last + 50 * 60 * 10**9)
    assert gone.active
    assert gone.at_ns == last + 45 * 60 * 10**9  # the instant it became silent, not the sweep's
    # the same answer whenever the sweep runs after that
    assert silent(last, quarter, last + 10 * HOUR_NS).at_ns == gone.at_ns
    # it comes back: an uplink at 12:00 makes the next evaluation not silent
    back = T0 + 2 * HOUR_NS
    assert not silent(back, quarter, back).active


def test_learnt_interval_is_the_median() -> None:
    s = 10**9
    assert learn_interval(np.array([0, 900 * s, 1800 * s, 2700 * s, 7200 * s])) == 900.0
    assert learn_interval(np.array([0, 900 * s, 1800 * s])) is None  # too few to tell
    assert learn_interval([0, 900 * s, 900 * s, 1800 * s, 1800 * s]) is None  # repeats count once


def numpy_interval(times_ns: list[int], min_intervals: int) -> float | None:
    """The definition learn_interval had, on numpy arrays (the reference it must still equal)."""
    times = np.unique(np.asarray(times_ns, dtype=np.int64))
    if len(times) < min_intervals + 1:
        return None
    return float(np.median(np.diff(times))) / 1e9


@given(
    times=st.lists(st.integers(0, 2**63 - 1) | st.integers(T0, T0 + 10**14), max_size=24),
    min_intervals=st.integers(1, 5),
)
# Intervals 1, 741091, 58638941171757763, 2**62: the middle two average as floats (as numpy does),
# which here differs from averaging them as integers.
@example(
    times=list(itertools.accumulate([0, 1, 741091, 58638941171757763, 2**62])), min_intervals=1
)
@example(times=[T0 + 900 * 10**9 * i for i in (5, 1, 0, 3, 3, 2)], min_intervals=3)
def test_learnt_interval_equals_the_numpy_definition(times: list[int], min_intervals: int) -> None:
    """Random uplink times (unsorted, repeated, up to the int64 limit): the same interval."""
    assert learn_interval(times, min_intervals=min_intervals) == numpy_interval(
        times, min_intervals
    )
    assert learn_interval(np.array(times, dtype=np.int64), min_intervals=min_intervals) == (
        numpy_interval(times, min_intervals)
    )


def test_continuous_flow() -> None:
    hours = hours_from(datetime(2026, 11, 19, 0, tzinfo=UTC), 30)
    leak = np.full(30, 0.004)
    leak[:6] = 0.0  # quiet long ago, then water runs every hour of the last 24
    verdict = continuous_flow(hours, leak, min_use=0.0005, hours=24)
    assert verdict.active and verdict.value == pytest.approx(0.004)
    assert verdict.at_ns == int(hours[-1]) + HOUR_NS
    normal = leak.copy()
    normal[20] = 0.0  # one hour without consumption within the window
    assert not continuous_flow(hours, normal, min_use=0.0005).active
    unknown = leak.copy()
    unknown[20] = np.nan
    assert continuous_flow(hours, unknown, min_use=0.0005) is None
    # trailing unknown hours (the meter has not reported yet) do not hide the last 24 known
    late = np.append(leak, [np.nan, np.nan])
    assert continuous_flow(hours_from(datetime(2026, 11, 19, tzinfo=UTC), 32), late,
                           min_use=0.0005).active  # fmt: skip
    assert continuous_flow(hours[:10], leak[:10], min_use=0.0005) is None  # not 24 h yet


def night_series(start_local: datetime, days: int, night_use: float, day_use: float = 0.05):
    start = start_local.replace(tzinfo=BERLIN).astimezone(UTC)
    n = int((start_local.replace(tzinfo=BERLIN) + timedelta(days=days)).astimezone(UTC)
            .timestamp() - start.timestamp()) // 3600  # fmt: skip
    hours = hours_from(start, n)
    local = [datetime.fromtimestamp(h / 1e9, UTC).astimezone(BERLIN) for h in hours]
    use = np.array([night_use if t.hour in (2, 3, 4) else day_use for t in local])
    return hours, use, local


def test_night_flow_on_three_nights() -> None:
    hours, use, _ = night_series(datetime(2026, 11, 16), 4, night_use=0.01)
    verdict = night_flow(hours, use, "Europe/Berlin", threshold=0.005, nights=3)
    assert verdict.active and verdict.value == pytest.approx(0.01)
    assert datetime.fromtimestamp(verdict.at_ns / 1e9, BERLIN).hour == 5  # end of the last night
    quiet = use.copy()
    quiet[-24 + 3] = 0.0  # 03:00-04:00 of the last night (Nov 19) without consumption
    verdict = night_flow(hours, quiet, "Europe/Berlin", threshold=0.005, nights=3)
    assert not verdict.active
    hours2, use2, _ = night_series(datetime(2026, 11, 18), 2, night_use=0.01)
    assert night_flow(hours2, use2, "Europe/Berlin", threshold=0.005, nights=3) is None


def test_night_flow_on_dst_nights_in_berlin() -> None:
    # spring: 2026-03-29 02:00 does not exist; the night has the hours 03:00 and 04:00 only
    hours, use, local = night_series(datetime(2026, 3, 27), 3, night_use=0.01)
    spring = [t for t in local if t.date().day == 29 and t.hour in (2, 3, 4)]
    assert [t.hour for t in spring] == [3, 4]
    assert night_flow(hours, use, "Europe/Berlin", threshold=0.005, nights=3).active
    # autumn: 2026-10-25 02:00-03:00 occurs twice; all four hours count, the quiet one too
    hours, use, local = night_series(datetime(2026, 10, 23), 3, night_use=0.01)
    autumn = [i for i, t in enumerate(local) if t.date().day == 25 and t.hour in (2, 3, 4)]
    assert [local[i].hour for i in autumn] == [2, 2, 3, 4]
    assert night_flow(hours, use, "Europe/Berlin", threshold=0.005, nights=3).active
    use[autumn[1]] = 0.0  # quiet only in the repeated 02:00 hour (UTC 01:00-02:00)
    verdict = night_flow(hours, use, "Europe/Berlin", threshold=0.005, nights=3)
    assert not verdict.active
    # evaluated in UTC instead, the same series would put the night elsewhere
    assert night_flow(hours, use, "UTC", threshold=0.005, nights=3).value != verdict.value


def test_reverse_flow() -> None:
    hours = hours_from(datetime(2026, 11, 20, tzinfo=UTC), 5)
    back = np.array([0.02, -0.01, -0.02, -0.01, -0.03])
    verdict = reverse_flow(back, hours, threshold=0.001, hours=3)
    assert verdict.active and verdict.value == pytest.approx(0.01)
    stops = np.array([0.02, -0.01, -0.02, -0.01, 0.0])
    assert not reverse_flow(stops, hours, threshold=0.001, hours=3).active
    brief = np.array([0.02, 0.01, 0.01, -0.01, -0.03])  # two hours: not sustained yet
    assert reverse_flow(brief, hours, threshold=0.001, hours=3) is None
    # a one-way register's jitter never counts: the rule needs a bidirectional or reverse one
    rule = KINDS["reverse_flow"]
    facts = Facts(T0, hours_ns=hours, hourly=back)
    assert rule.condition(facts, thresholds(rule, {})) is None
    facts = Facts(T0, hours_ns=hours, hourly=back, bidirectional=True)
    assert rule.condition(facts, thresholds(rule, {})).active
    # a reverse register counts up while water runs back
    facts = Facts(T0, hours_ns=hours, hourly=np.abs(back), reverse_hourly=-np.minimum(back, 0))
    assert rule.condition(facts, thresholds(rule, {})).active
    once = np.array([0.02, 0.0, 0.0, 0.0, 0.0])
    facts = Facts(T0, hours_ns=hours, hourly=back, reverse_hourly=once)
    assert not rule.condition(facts, thresholds(rule, {})).active


def test_rules_by_medium_and_overrides() -> None:
    water = {r.kind for r in rules_for(Trigger.SWEEP, "water")}
    assert water == {"silent", "continuous_flow", "night_flow", "reverse_flow"}
    assert {r.kind for r in rules_for(Trigger.SWEEP, "electricity")} == {"silent"}
    assert "leak" not in {r.kind for r in rules_for(Trigger.READING, "electricity")}
    limits = thresholds(KINDS["night_flow"], {"night_flow": {"threshold": 0.02, "enabled": 0}})
    assert limits == {"enabled": 0, "threshold": 0.02, "nights": 3.0}
    check_overrides({"night_flow": {"threshold": 0.02}, "silent": {"factor": 4}})
    with pytest.raises(ValueError, match="unknown alarm kind 'leek'"):
        check_overrides({"leek": {}})
    with pytest.raises(ValueError, match="unknown threshold 'treshold'"):
        check_overrides({"night_flow": {"treshold": 1}})
    with pytest.raises(ValueError, match=">= 0"):
        check_overrides({"night_flow": {"threshold": -1}})
