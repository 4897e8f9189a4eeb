"""The alarm engine: evaluates metering/alarms.py's rules at ingest and in a periodic sweep.

At ingest (after a batch is stored) every new uplink's readings are checked against the flag
rules, the uplink against the frame-counter and clock rules, and dead letters of known devices
count towards ``undecodable``. The sweep (``sweep(now)``, ``now`` passed in) finds silent
meters and consumption patterns. All alarm times come from the data, so replaying the same
uplinks yields the same alarms; an uplink not newer than the device's last one (a redelivery)
changes nothing.
"""

from __future__ import annotations

import functools
import logging
import math
import threading
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

import numpy as np

from decoders.core import MEDIA
from ingest.devices import DeviceEntry, DeviceRegistry
from ingest.envelope import EnvelopeError, parse_envelope
from ingest.pipeline import Accepted, Rejected
from metering.alarms import (
    HOUR_NS,
    Facts,
    Floats,
    Ints,
    Rule,
    Trigger,
    learn_interval,
    rules_for,
    thresholds,
    transition,
)
from metering.meter import MeterConfig, device_consumption
from storage.alarms import DeviceMemory, SQLiteAlarms
from storage.base import Series, Store, StoreError
from storage.schema import DeadLetter, UplinkRecord, from_ns, to_ns

__all__ = ["AlarmEngine", "signed_hourly_change"]

log = logging.getLogger("lorameter.alarms")

RECENT = 16  # uplink times kept per device to learn its interval
# Dead letters that say something about a device's payloads (fPort 0 is LoRaWAN MAC traffic).
_DEVICE_REASONS = ("decode_error", "unknown_decoder", "bad_base64")
_PRIMARY = "volume_m3"
_REVERSE = "volume_reverse_m3"
_FLOW_KINDS = ("continuous_flow", "night_flow", "reverse_flow")


class AlarmEngine:
    """Applies the rules to what ingest stores and to the periodic sweep."""

    def __init__(
        self,
        alarms: SQLiteAlarms,
        devices: DeviceRegistry | None,
        store: Store,
        *,
        timezone: str = "Europe/Berlin",
    ) -> None:
        self.alarms = alarms
        self.devices = devices or DeviceRegistry()
        self.store = store
        self.timezone = timezone
        self._lock = threading.Lock()
        self._memory = alarms.memories()
        self._dirty: dict[str, DeviceMemory] = {}  # memories to write at the end of a batch
        # Active alarms by (device, kind): this engine is what raises and clears them.
        self._active = {(a.device, a.kind) for a in alarms.alarms(state="active", limit=2**62)}

    # -- at ingest ---------------------------------------------------------------------------

    def on_stored(self, outcomes: Sequence[Accepted | Rejected]) -> None:
        """Evaluate a stored batch, in the order of the data's own times."""
        events: list[tuple[int, int, Accepted | Rejected]] = []
        for n, outcome in enumerate(outcomes):
            if isinstance(outcome, Accepted):
                if not outcome.record.raw.simulated:
                    events.append((to_ns(outcome.record.raw.received_at), n, outcome))
            elif outcome.letter.device and outcome.letter.reason in _DEVICE_REASONS:
                events.append((_letter_ns(outcome.letter), n, outcome))
        with self._lock:
            try:
                for _, _, outcome in sorted(events, key=lambda e: (e[0], e[1])):
                    if isinstance(outcome, Accepted):
                        self._uplink(outcome.record)
                    else:
                        self._dead_letter(outcome.letter)
            except StoreError as exc:  # alarms must never stop ingest
                log.error("alarm evaluation failed: %s", exc)
            finally:
                dirty, self._dirty = self._dirty, {}
                if dirty:
                    self.alarms.remember(dirty)

    def _uplink(self, record: UplinkRecord) -> None:
        raw = record.raw
        at = to_ns(raw.received_at)
        memory = self._memory.get(raw.device) or DeviceMemory()
        if at <= memory.last_ns:
            return  # a redelivery, or older than what was evaluated: the result would not change
        entry = self.devices.find(raw.device, raw.dev_eui)
        memory.medium = raw.medium
        memory.site = _site(entry, record)
        readings = sorted(
            [(to_ns(p.time), p.fields) for p in record.points if p.measurement in MEDIA],
            key=_first,
        )
        evaluated = memory.flags_ns  # (points of one instant are all evaluated, or none)
        for point_ns, fields in readings:
            if point_ns <= evaluated:
                continue  # evaluated already (an uplink may repeat older records)
            facts = Facts(time_ns=point_ns, values=fields)
            self._evaluate(raw.device, Trigger.READING, facts, memory, entry)
            memory.flags_ns = point_ns
        drift = None
        if readings and readings[-1][0] != at:
            drift = (at - readings[-1][0]) / 1e9
        facts = Facts(
            time_ns=at,
            f_cnt=raw.f_cnt,
            previous_f_cnt=memory.last_f_cnt,
            drift_s=drift,
            dead_streak=0,
            last_uplink_ns=at,
            interval_s=1.0,  # an uplink just came: not silent, whatever the interval
        )
        self._evaluate(raw.device, Trigger.UPLINK, facts, memory, entry)
        # A gap in the data longer than the silence limit was a silent spell, whether or not a
        # sweep ran during it (a replay passes a gap in no time): raised at its start here ...
        interval = self._interval(memory, entry)
        if memory.last_ns and interval:
            gap = Facts(time_ns=at, last_uplink_ns=memory.last_ns, interval_s=interval)
            self._evaluate(raw.device, Trigger.SWEEP, gap, memory, entry, only=("silent",))
        # ... and this uplink clears it, as it clears a run of dead letters. (Silence judged at
        # this uplink is never active, whatever the thresholds: only an active alarm can change.)
        if (raw.device, "silent") in self._active:
            self._evaluate(raw.device, Trigger.SWEEP, facts, memory, entry, only=("silent",))
        self._evaluate(raw.device, Trigger.DEAD_LETTER, facts, memory, entry)
        memory.last_ns, memory.last_f_cnt, memory.dead_streak = at, raw.f_cnt, 0
        memory.recent_ns = [*memory.recent_ns, at][-RECENT:]
        self._remember(raw.device, memory)

    def _dead_letter(self, letter: DeadLetter) -> None:
        at = _letter_ns(letter)
        memory = self._memory.get(letter.device) or DeviceMemory()
        if at <= max(memory.dead_ns, memory.last_ns):
            return
        memory.dead_streak += 1
        memory.dead_ns = at
        entry = self.devices.find(letter.device, "")
        facts = Facts(time_ns=at, dead_streak=memory.dead_streak)
        self._evaluate(letter.device, Trigger.DEAD_LETTER, facts, memory, entry)
        self._remember(letter.device, memory)

    def _remember(self, device: str, memory: DeviceMemory) -> None:
        self._memory[device] = memory
        self._dirty[device] = memory

    def _evaluate(
        self,
        device: str,
        trigger: Trigger,
        facts: Facts,
        memory: DeviceMemory,
        entry: DeviceEntry | None,
        only: tuple[str, ...] = (),
    ) -> None:
        overrides = entry.alarms if entry else {}
        for rule in _rules(trigger, memory.medium, only):
            limits = thresholds(rule, overrides)
            if not limits["enabled"]:
                continue
            verdict = rule.condition(facts, limits)
            key = (device, rule.kind)
            step = transition(key in self._active, verdict)
            if step is None or verdict is None:
                continue
            if step == "raise":
                log.warning("alarm %s on %s: %s", rule.kind, device, verdict.reason)
            after = self.alarms.change(
                step,
                device=device,
                kind=rule.kind,
                at_ns=verdict.at_ns,
                reason=verdict.reason,
                value=verdict.value,
                medium=memory.medium,
                site=memory.site,
            )
            if after is not None and after.state == "active":
                self._active.add(key)
            else:
                self._active.discard(key)

    def _interval(self, memory: DeviceMemory, entry: DeviceEntry | None) -> float | None:
        """The registry's expected uplink interval, else the median of the last uplinks'."""
        registered = entry.expected_interval_s if entry else None
        return registered or learn_interval(memory.recent_ns)

    def _limits(self, rule: Rule, entry: DeviceEntry | None) -> Mapping[str, float]:
        return thresholds(rule, entry.alarms if entry else {})

    # -- the sweep ---------------------------------------------------------------------------

    def sweep(self, now: datetime) -> None:
        """Silent meters and consumption patterns of every device, as of ``now``.

        Silence is judged at the newest uplink heard from any device (capped by ``now``): a
        meter is silent when the others are heard and it is not. So a replay or a backfill does
        not find every meter silent while it catches up, a restart after an outage does not raise
        one alarm per meter, and nothing heard at all is an ingest outage (/health), not a fleet
        of silent meters. (With a single device, silence is never raised.)
        """
        with self._lock:
            devices = dict(self._memory)
        heard = max((m.last_ns for m in devices.values()), default=0)
        now_ns = min(to_ns(now), heard)
        entries = {d: self.devices.find(d, "") for d in devices}
        flows = self._flows(devices, entries, now_ns)
        for device, memory in devices.items():
            try:
                self._sweep_device(device, memory, entries[device], now_ns, flows.get(device))
            except Exception:  # one device's data must not stop the sweep of the others
                log.exception("alarm sweep of %s failed", device)

    def _flows(
        self, devices: dict[str, DeviceMemory], entries: dict[str, DeviceEntry | None], now_ns: int
    ) -> dict[str, Facts]:
        """Hourly consumption of every water device up to ``now_ns`` (one read per register)."""
        days: dict[str, float] = {}
        for device, memory in devices.items():
            rules = {r.kind: r for r in rules_for(Trigger.SWEEP, memory.medium)}
            if "continuous_flow" in rules:
                limits = [self._limits(rules[k], entries[device]) for k in _FLOW_KINDS]
                days[device] = 1 + max(limits[0]["hours"] / 24, limits[1]["nights"],
                                       limits[2]["hours"] / 24)  # fmt: skip
        if not days or not now_ns:
            return {}
        end = from_ns(now_ns)
        start = end - timedelta(days=math.ceil(max(days.values())))
        hours_ns = _hour_grid(to_ns(start), now_ns)
        if not len(hours_ns):
            return {}
        bounds = np.append(hours_ns, hours_ns[-1] + HOUR_NS)
        wanted = sorted(days)
        primary = self.store.series(_PRIMARY, start, end, devices=wanted)
        reverse = self.store.series(_REVERSE, start, end, devices=wanted)
        out = {}
        for device in wanted:
            entry = entries[device]
            config = entry.meter_config() if entry else MeterConfig()
            bidirectional = bool(entry.params.get("bidirectional")) if entry else False
            series = primary.get(device)
            back = reverse.get(device)
            out[device] = Facts(
                time_ns=now_ns,
                hours_ns=hours_ns,
                hourly=(
                    signed_hourly_change(series, bounds)
                    if bidirectional
                    else _measured(config, _PRIMARY, series, bounds)
                ),
                reverse_hourly=None if back is None else _measured(config, _REVERSE, back, bounds),
                bidirectional=bidirectional,
                tz=entry.meter_timezone if entry and entry.meter_timezone else self.timezone,
            )
        return out

    def _sweep_device(
        self,
        device: str,
        memory: DeviceMemory,
        entry: DeviceEntry | None,
        now_ns: int,
        flows: Facts | None,
    ) -> None:
        interval = self._interval(memory, entry)
        facts = (flows or Facts(time_ns=now_ns))._replace(
            last_uplink_ns=memory.last_ns or None, interval_s=interval
        )
        with self._lock:
            current = self._memory.get(device, memory)
            if current.last_ns != memory.last_ns:
                return  # an uplink came meanwhile; the next sweep sees it
            self._evaluate(device, Trigger.SWEEP, facts, current, entry)


@functools.lru_cache(maxsize=256)
@functools.lru_cache(maxsize=256)
def _rules(trigger: Trigger, medium: str, only: tuple[str, ...]) -> tuple[Rule, ...]:
    """rules_for, limited to the kinds ``only`` names (if any)."""
    return tuple(r for r in rules_for(trigger, medium) if not only or r.kind in only)


def _measured(config: MeterConfig, name: str, series: Series | None, bounds: Ints) -> Floats:
    """metering's consumption per hour; hours not ``measured`` (gaps, edges) are unknown."""
    if series is None or len(series) < 2:
        return np.full(len(bounds) - 1, np.nan)
    _, hours = device_consumption(config, name, series.times_ns, series.values, bounds)
    return np.where(hours.status == "measured", hours.consumption, np.nan)


def signed_hourly_change(series: Series | None, bounds: Ints) -> Floats:
    """The net change of a bidirectional register in each hour between ``bounds`` (signed).

    Not consumption (metering never lets a register run backwards): the register at each bound,
    interpolated between the readings on either side; a bound outside the readings is unknown.
    """
    if series is None or len(series) < 2:
        return np.full(len(bounds) - 1, np.nan)
    times = series.times_ns
    at = np.interp(bounds.astype(np.float64), times.astype(np.float64), series.values)
    at[(bounds < times.min()) | (bounds > times.max())] = np.nan
    return np.diff(at)


def _hour_grid(start_ns: int, end_ns: int) -> Ints:
    first = start_ns - start_ns % HOUR_NS
    return np.arange(first, end_ns - HOUR_NS + 1, HOUR_NS, dtype=np.int64)


def _letter_ns(letter: DeadLetter) -> int:
    """A dead letter's time from its envelope (the network server's), else its arrival."""
    try:
        return to_ns(parse_envelope(letter.raw).received_at)
    except EnvelopeError:
        return to_ns(letter.received_at)


def _first(pair: tuple[int, object]) -> int:
    return pair[0]


def _site(entry: DeviceEntry | None, record: UplinkRecord) -> str:
    if entry and "site" in entry.tags:
        return entry.tags["site"]
    for point in record.points:
        if "site" in point.tags:
            return point.tags["site"]
    return ""
