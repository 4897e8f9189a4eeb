"""Alarm rules: one table row per kind, each a pure condition over facts taken from the data.

A rule looks at :class:`Facts` (one reading, one uplink, a device's dead-letter streak, or its
hourly consumption at a sweep) and answers a :class:`Verdict` — active or not, at which instant
of the data, and why — or None when the facts say nothing about it. Times are nanoseconds since
the epoch taken from the data (reading, uplink, or the sweep's ``now`` passed in), never a clock,
so replaying the same uplinks yields the same alarms. The lifecycle (one active alarm per device
and kind; repeats count; a false verdict clears) is :func:`transition`.
"""

from __future__ import annotations

import enum
import functools
import itertools
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import NamedTuple
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from decoders.core import Value

__all__ = [
    "HOUR_NS",
    "KINDS",
    "RULES",
    "Facts",
    "Rule",
    "Trigger",
    "Verdict",
    "check_overrides",
    "continuous_flow",
    "learn_interval",
    "night_flow",
    "reverse_flow",
    "rules_for",
    "silent",
    "thresholds",
    "transition",
]

HOUR_NS = 3_600_000_000_000
Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]
Thresholds = Mapping[str, float]


class Trigger(enum.Enum):
    """When a rule is evaluated."""

    READING = "reading"  # every decoded reading, at ingest
    UPLINK = "uplink"  # every accepted uplink, at ingest
    DEAD_LETTER = "dead_letter"  # every uplink of a known device that became a dead letter
    SWEEP = "sweep"  # the periodic sweep (silence, consumption patterns)


class Facts(NamedTuple):
    """What a rule may look at; each trigger fills its part, the rest stays None.

    A NamedTuple (immutable, and built ~4× faster than a frozen dataclass: the engine builds
    four for every uplink)."""

    time_ns: int  # the reading's, the uplink's, or the sweep's now
    values: Mapping[str, Value] | None = None  # READING: one reading
    f_cnt: int | None = None  # UPLINK: this uplink's frame counter ...
    previous_f_cnt: int | None = None  # ... and that of the device's previous uplink
    drift_s: float | None = None  # UPLINK: receive time minus the meter's clock
    dead_streak: int | None = None  # consecutive dead letters (0 after an accepted uplink)
    last_uplink_ns: int | None = None  # SWEEP/UPLINK: the device's last uplink before now
    interval_s: float | None = None  # the device's expected uplink interval
    hours_ns: Ints | None = None  # SWEEP: start of each hour (a regular hourly grid) ...
    hourly: Floats | None = None  # ... and the consumption in it (NaN: unknown)
    reverse_hourly: Floats | None = None  # ... and of a reverse-flow register, if any
    bidirectional: bool = False  # the primary register runs backwards on reverse flow
    tz: str = "Europe/Berlin"  # the local zone of night hours


class Verdict(NamedTuple):
    """A rule's answer: is the condition active, since/at which data instant, and why."""

    active: bool
    at_ns: int
    reason: str
    value: float | None = None


Condition = Callable[[Facts, Thresholds], "Verdict | None"]


@dataclass(frozen=True)
class Rule:
    """One alarm kind: where it applies, when it is evaluated, its condition and thresholds."""

    kind: str
    media: tuple[str, ...]  # () = every medium
    trigger: Trigger
    condition: Condition
    defaults: Mapping[str, float] = field(default_factory=dict)
    title: str = ""
    # The thresholds without a device's overrides, built once: they are read on every uplink.
    limits: Mapping[str, float] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "limits", MappingProxyType({"enabled": 1.0, **self.defaults}))


def transition(has_active: bool, verdict: Verdict | None) -> str | None:
    """The lifecycle step: ``raise``, ``repeat``, ``clear`` or None (nothing changes).

    One active alarm per device and kind: a true verdict raises one, or repeats the one there
    is (its count and last_seen_at grow); a false verdict clears it; no verdict changes nothing.
    """
    if verdict is None:
        return None
    if verdict.active:
        return "repeat" if has_active else "raise"
    return "clear" if has_active else None


# -- conditions on one reading (the meter's own flags) --------------------------------------


def _flag(name: str, what: str) -> Condition:
    def condition(facts: Facts, limits: Thresholds) -> Verdict | None:
        value = (facts.values or {}).get(name)
        if not isinstance(value, bool):
            return None
        return Verdict(value, facts.time_ns, f"the meter reports {what} ({name})")

    return condition


def _low_battery(facts: Facts, limits: Thresholds) -> Verdict | None:
    """The meter's low-battery flag, or its battery level below ``battery_pct``."""
    values = facts.values or {}
    flag, level = values.get("alarm_low_battery"), values.get("battery_pct")
    known = isinstance(level, int | float) and not isinstance(level, bool)
    if flag is True:
        return Verdict(True, facts.time_ns, "the meter reports a low battery (alarm_low_battery)")
    if known and float(level) < limits["battery_pct"]:  # type: ignore[arg-type]
        return Verdict(
            True,
            facts.time_ns,
            f"battery at {level:g} %, below {limits['battery_pct']:g} %",
            float(level),  # type: ignore[arg-type]
        )
    if flag is False or known:
        return Verdict(False, facts.time_ns, "battery ok")
    return None


def _meter_error(facts: Facts, limits: Thresholds) -> Verdict | None:
    """The meter's error flag; or a non-zero status word no ``alarm_*`` field interprets."""
    values = facts.values or {}
    flag, word = values.get("alarm_meter_error"), values.get("error_flags")
    interpreted = any(name.startswith("alarm_") for name in values)
    if flag is True:
        return Verdict(True, facts.time_ns, "the meter reports an internal error")
    if isinstance(word, int) and word and not interpreted:
        return Verdict(True, facts.time_ns, f"the meter's status word is {word:#x}", float(word))
    if flag is False or isinstance(word, int):
        return Verdict(False, facts.time_ns, "no meter error")
    return None


# -- conditions on one uplink --------------------------------------------------------------


def _fcnt_reset(facts: Facts, limits: Thresholds) -> Verdict | None:
    """The frame counter went back: the device rejoined (new session) or was reset."""
    if facts.f_cnt is None or facts.previous_f_cnt is None:
        return None
    if facts.f_cnt < facts.previous_f_cnt:
        return Verdict(
            True,
            facts.time_ns,
            f"frame counter went back from {facts.previous_f_cnt} to {facts.f_cnt}"
            " (rejoin or device reset)",
            float(facts.f_cnt),
        )
    return Verdict(False, facts.time_ns, "frame counter counts on")


def _clock_drift(facts: Facts, limits: Thresholds) -> Verdict | None:
    """The meter's clock differs from the network server's receive time by more than drift_s."""
    if facts.drift_s is None:
        return None
    drift = facts.drift_s
    if abs(drift) > limits["drift_s"]:
        side = "behind" if drift > 0 else "ahead of"
        return Verdict(
            True,
            facts.time_ns,
            f"the meter clock is {abs(drift):.0f} s {side} the network server"
            f" (limit {limits['drift_s']:g} s)",
            drift,
        )
    return Verdict(False, facts.time_ns, f"meter clock within {limits['drift_s']:g} s")


def _undecodable(facts: Facts, limits: Thresholds) -> Verdict | None:
    """``uplinks`` or more uplinks in a row became dead letters; an accepted one clears it."""
    if facts.dead_streak is None:
        return None
    if facts.dead_streak >= limits["uplinks"]:
        return Verdict(
            True,
            facts.time_ns,
            f"the last {facts.dead_streak} uplinks could not be decoded (see dead letters)",
            float(facts.dead_streak),
        )
    return Verdict(False, facts.time_ns, "uplinks decode again") if not facts.dead_streak else None


def _silent(facts: Facts, limits: Thresholds) -> Verdict | None:
    if facts.last_uplink_ns is None or facts.interval_s is None:
        return None
    return silent(facts.last_uplink_ns, facts.interval_s, facts.time_ns, factor=limits["factor"])


# -- conditions on hourly consumption (the sweep) -------------------------------------------


def silent(last_uplink_ns: int, interval_s: float, now_ns: int, *, factor: float = 3) -> Verdict:
    """Silent when no uplink came for more than ``factor`` times the expected interval.

    The alarm's time is the instant the meter became silent, not when someone noticed:
    last uplink 10:00, interval 15 min, factor 3 → silent from 10:45; at now = 10:50 active
    (since 10:45), at now = 10:40 not.
    """
    limit_ns = round(factor * interval_s * 1e9)
    due = last_uplink_ns + limit_ns
    if now_ns > due:
        minutes = interval_s * factor / 60
        return Verdict(True, due, f"no uplink for more than {minutes:g} min", interval_s)
    return Verdict(False, last_uplink_ns, "uplinks arrive")


def learn_interval(times_ns: Iterable[int], *, min_intervals: int = 3) -> float | None:
    """The median interval between uplinks, in seconds (None with too few uplinks).

    Uplinks at 0, 900, 1800, 2700, 7200 s → intervals 900, 900, 900, 4500 → 900 s.
    Plain Python: it runs on every uplink over a handful of times (the engine keeps 16), where
    building numpy arrays costs more than the work. The same figure as numpy's
    ``np.median(np.diff(np.unique(times)))``: each interval is a float64 and an even count
    averages the middle two as floats, as numpy does.
    """
    times = sorted(set(times_ns))
    if len(times) < max(min_intervals, 1) + 1:
        return None
    gaps = sorted([b - a for a, b in itertools.pairwise(times)])
    middle = len(gaps) // 2
    if len(gaps) % 2:
        return float(gaps[middle]) / 1e9
    return (float(gaps[middle - 1]) + float(gaps[middle])) / 2 / 1e9


def _last_window(hourly: Floats, hours: int) -> tuple[int, Floats] | None:
    """The last ``hours`` entries up to the last known hour, and that hour's index."""
    known = np.flatnonzero(~np.isnan(hourly))
    if not len(known) or known[-1] + 1 < hours:
        return None
    end = int(known[-1])
    return end, hourly[end + 1 - hours : end + 1]


def _known_window(hours_ns: Ints, hourly: Floats, hours: int) -> tuple[int, Floats] | None:
    """The end instant and the values of the last ``hours`` hours, if every one is known."""
    window = _last_window(hourly, hours)
    if window is None:
        return None
    end, values = window
    if np.isnan(values).any():
        return None
    return int(hours_ns[end]) + HOUR_NS, values


def continuous_flow(
    hours_ns: Ints, hourly: Floats, *, min_use: float, hours: int = 24
) -> Verdict | None:
    """Continuous flow: no hour of the last ``hours`` without consumption above ``min_use``.

    Judged on the last ``hours`` hours up to the last known one; any unknown hour among them
    → None. With hours = 3, min_use = 0.001: [0.0, 0.02, 0.01, 0.03] → active (0.01 is the
    least); [0.02, 0.0, 0.01, 0.03] → not active; [0.02, nan, 0.01, 0.03] → None.
    """
    known = _known_window(hours_ns, hourly, hours)
    if known is None:
        return None
    at, values = known
    least = float(values.min())
    if least > min_use:
        return Verdict(
            True, at, f"consumption in every hour of the last {hours} h (least {least:g})", least
        )
    return Verdict(False, at, f"an hour without consumption in the last {hours} h", least)


def night_flow(
    hours_ns: Ints, hourly: Floats, tz: str, *, threshold: float, nights: int = 3
) -> Verdict | None:
    """Night flow: consumption in every hour of 02:00-05:00 local above ``threshold``, on each
    of the last ``nights`` nights.

    A night's figure is its least hourly consumption over the local hours 2, 3 and 4 (on the
    spring DST night only 3 and 4 exist; on the autumn night 2 occurs twice: all count). A
    night with an unknown hour does not count. nights = 2, threshold 0.005: nights' least
    [0.01, 0.02] → active; [0.01, 0.0] → not active (the last night was quiet).
    """
    zone = ZoneInfo(tz)
    least: dict[str, float] = {}
    ends: dict[str, int] = {}
    for start, use in zip(hours_ns.tolist(), hourly.tolist(), strict=True):
        local = datetime.fromtimestamp(start / 1e9, UTC).astimezone(zone)
        if local.hour not in (2, 3, 4):
            continue
        night = local.date().isoformat()
        before = least.get(night, math.inf)
        least[night] = math.nan if math.isnan(use) or math.isnan(before) else min(before, use)
        ends[night] = max(ends.get(night, 0), int(start) + HOUR_NS)
    # A night counts once its last hour (04:00-05:00) is in the series and every hour is known.
    complete = [
        n
        for n in sorted(least)
        if not math.isnan(least[n])
        and datetime.fromtimestamp((ends[n] - HOUR_NS) / 1e9, UTC).astimezone(zone).hour == 4
    ]
    if not complete:
        return None
    last = complete[-nights:]
    figures = [least[n] for n in last]
    at = ends[last[-1]]
    if len(last) == nights and all(f > threshold for f in figures):
        return Verdict(
            True,
            at,
            f"night flow above {threshold:g} per hour on the last {nights} nights"
            f" (least {min(figures):g})",
            min(figures),
        )
    if figures[-1] <= threshold:
        return Verdict(False, at, f"night flow of {figures[-1]:g} per hour is normal", figures[-1])
    return None


def reverse_flow(hourly: Floats, hours_ns: Ints, *, threshold: float, hours: int) -> Verdict | None:
    """Sustained reverse flow: the register ran backwards by more than ``threshold`` in each of
    the last ``hours`` hours (``hourly`` is signed: negative = backwards).

    hours = 2, threshold 0.001: [-0.01, -0.02] → active; [-0.01, 0.0] → not active.
    """
    known = _known_window(hours_ns, hourly, hours)
    if known is None:
        return None
    at, values = known
    worst = float(values.max())
    if worst < -threshold:
        return Verdict(
            True,
            at,
            f"the register ran backwards in each of the last {hours} h (least {-worst:g})",
            -worst,
        )
    if float(values[-1]) >= -threshold:
        return Verdict(False, at, "no reverse flow in the last hour", -float(values[-1]))
    return None


def _continuous_flow(facts: Facts, limits: Thresholds) -> Verdict | None:
    if facts.hours_ns is None or facts.hourly is None:
        return None
    return continuous_flow(
        facts.hours_ns, facts.hourly, min_use=limits["min_use"], hours=int(limits["hours"])
    )


def _night_flow(facts: Facts, limits: Thresholds) -> Verdict | None:
    if facts.hours_ns is None or facts.hourly is None:
        return None
    return night_flow(
        facts.hours_ns,
        facts.hourly,
        facts.tz,
        threshold=limits["threshold"],
        nights=int(limits["nights"]),
    )


def _reverse_flow(facts: Facts, limits: Thresholds) -> Verdict | None:
    if facts.hours_ns is None:
        return None
    if facts.reverse_hourly is not None:
        signed = -facts.reverse_hourly  # a reverse register counts up while water runs back
    elif facts.bidirectional and facts.hourly is not None:
        signed = facts.hourly
    else:
        return None
    return reverse_flow(
        signed, facts.hours_ns, threshold=limits["threshold"], hours=int(limits["hours"])
    )


_ALL: tuple[str, ...] = ()
_FLUID = ("water", "heat", "gas")
_R, _U, _D, _S = Trigger.READING, Trigger.UPLINK, Trigger.DEAD_LETTER, Trigger.SWEEP

# The table. Thresholds are per device overridable in the registry (``alarms: {kind: {...}}``;
# ``enabled: 0`` switches a kind off for a device). Units: m³ per hour for flows, s for times.
RULES: tuple[Rule, ...] = (
    Rule("leak", _FLUID, _R, _flag("alarm_leak", "a leak"), title="leak (meter flag)"),
    Rule("burst", _FLUID, _R, _flag("alarm_burst", "a burst pipe"), title="burst (meter flag)"),
    Rule("backflow", _FLUID, _R, _flag("alarm_backflow", "backflow"), title="backflow (flag)"),
    Rule("tamper", _ALL, _R, _flag("alarm_tamper", "tampering"), title="tamper / removal"),
    Rule("dry_pipe", _FLUID, _R, _flag("alarm_dry", "a dry pipe"), title="dry pipe (meter flag)"),
    Rule("low_battery", _ALL, _R, _low_battery, {"battery_pct": 10.0}, "low battery"),
    Rule("meter_error", _ALL, _R, _meter_error, title="meter error / status word"),
    Rule("rejoin", _ALL, _U, _fcnt_reset, title="frame-counter reset / rejoin"),
    Rule("clock_drift", _ALL, _U, _clock_drift, {"drift_s": 900.0}, "meter clock drift"),
    Rule("undecodable", _ALL, _D, _undecodable, {"uplinks": 3.0}, "uplinks become dead letters"),
    Rule("silent", _ALL, _S, _silent, {"factor": 3.0}, "silent meter"),
    Rule(
        "continuous_flow",
        ("water",),
        _S,
        _continuous_flow,
        {"min_use": 0.0005, "hours": 24.0},
        "continuous flow (no hour without consumption)",
    ),
    Rule(
        "night_flow",
        ("water",),
        _S,
        _night_flow,
        {"threshold": 0.005, "nights": 3.0},
        "night flow 02:00-05:00 local",
    ),
    Rule(
        "reverse_flow",
        ("water",),
        _S,
        _reverse_flow,
        {"threshold": 0.001, "hours": 3.0},
        "sustained reverse flow (bidirectional register)",
    ),
)

KINDS = {rule.kind: rule for rule in RULES}


@functools.lru_cache(maxsize=256)
def rules_for(trigger: Trigger, medium: str) -> tuple[Rule, ...]:
    """The rules of one trigger that apply to a medium ('' = unknown: media-free rules only)."""
    return tuple(r for r in RULES if r.trigger is trigger and (not r.media or medium in r.media))


def thresholds(rule: Rule, overrides: Mapping[str, Mapping[str, float]]) -> Mapping[str, float]:
    """The rule's defaults, with the device's overrides for its kind (registry ``alarms:``).

    Without overrides for the kind, the rule's own read-only ``limits``.
    """
    own = overrides.get(rule.kind)
    return {**rule.limits, **own} if own else rule.limits


def check_overrides(overrides: Mapping[str, Mapping[str, float]]) -> None:
    """Raise ValueError naming an unknown kind or threshold in a device's ``alarms:``."""
    for kind, limits in overrides.items():
        if kind not in KINDS:
            raise ValueError(f"unknown alarm kind {kind!r}; kinds: {', '.join(KINDS)}")
        allowed = {"enabled", *KINDS[kind].defaults}
        for name, value in limits.items():
            if name not in allowed:
                raise ValueError(
                    f"alarm {kind}: unknown threshold {name!r}; use {', '.join(sorted(allowed))}"
                )
            if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise ValueError(f"alarm {kind}: {name} must be a number >= 0, got {value!r}")
