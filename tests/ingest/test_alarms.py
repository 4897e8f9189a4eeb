"""The alarm engine on real SQLite files: uplinks through the real pipeline raise, repeat and
clear alarms; the sweep finds silent meters and leaks; replaying gives the same alarms."""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ingest.alarms import AlarmEngine, signed_hourly_change
from ingest.devices import parse_registry
from ingest.pipeline import Accepted, Pipeline, Rejected
from storage import open_store
from storage.alarms import SQLiteAlarms, alarm_db_path
from storage.base import Series
from storage.schema import to_ns
from tests.helpers import tts_up

REGISTRY = parse_registry(
    {
        "devices": [
            {"device": "wm-1", "decoder": "axioma_qalcosonic_w1", "medium": "water",
             "tags": {"site": "rathaus"}},
            {"device": "em-1", "decoder": "elv_lw_esi", "tags": {"site": "schule"}},
            {"device": "em-2", "decoder": "elv_lw_esi", "expected_interval_s": 3600},
        ]
    }
)  # fmt: skip
T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
LEAK, OK = 0x30, 0x00  # W1 status: temporary error, condition 001 = leak


def w1(when: datetime, status: int, litres: int, deltas: tuple[int, ...] = (0,) * 15) -> bytes:
    """An Axioma W1 extended frame: meter time, status, volume, 15 hourly deltas before it."""
    start = when - timedelta(hours=15)
    first = litres - sum(deltas)
    return struct.pack("<IBIII15H", int(when.timestamp()), status, litres,
                       int(start.timestamp()), first, *deltas)  # fmt: skip


def esi(kwh: float) -> bytes:
    energy = round(kwh * 10_000)
    record = b"\x01\x01\x01" + energy.to_bytes(5, "little") + b"\x00" + struct.pack("<I", 10000)
    return b"\x03\x01\x0b\xb8" + record


def up(device: str, payload: bytes, when: datetime, f_cnt: int, port: int = 100, **kw) -> bytes:
    stamp = when.isoformat().replace("+00:00", "Z")
    return tts_up(device, payload, f_port=port, f_cnt=f_cnt, received_at=stamp, dev_eui="", **kw)


class Rig:
    """Pipeline → real store (a SQLite file unless given) → engine, as the writer does it."""

    def __init__(self, folder: Path, store_url: str = "") -> None:
        folder.mkdir(parents=True, exist_ok=True)
        url = store_url or f"sqlite:///{folder}/lorameter.db"
        self.store = open_store(url, spool_path=folder / "spool.db")
        self.alarms = SQLiteAlarms(
            alarm_db_path(url, folder / "spool.db"), channels=("mqtt", "webhook")
        )
        self.engine = AlarmEngine(self.alarms, REGISTRY, self.store)
        self.pipeline = Pipeline(REGISTRY)

    def feed(self, *messages: bytes) -> None:
        outcomes = [self.pipeline.process("t", m, T0) for m in messages]
        self.store.write_uplinks([o.record for o in outcomes if isinstance(o, Accepted)])
        self.store.write_dead_letters([o.letter for o in outcomes if isinstance(o, Rejected)])
        self.engine.on_stored(outcomes)

    def alarms_of(self, device: str, kind: str, state: str = "all"):
        return self.alarms.alarms(state=state, device=device, kind=kind)


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return Rig(tmp_path)


def test_flag_raises_repeats_and_clears(rig: Rig) -> None:
    rig.feed(up("wm-1", w1(T0, LEAK, 100_000), T0 + timedelta(seconds=20), 1))
    (leak,) = rig.alarms_of("wm-1", "leak")
    assert (leak.state, leak.count, leak.raised_at, leak.site) == ("active", 1, T0, "rathaus")
    assert "leak" in leak.reason
    # the leak goes on: the same alarm, counted, last seen later; no second alarm
    later = T0 + timedelta(hours=1)
    rig.feed(up("wm-1", w1(later, LEAK, 100_010), later + timedelta(seconds=20), 2))
    (leak,) = rig.alarms_of("wm-1", "leak")
    assert (leak.state, leak.count, leak.last_seen_at) == ("active", 2, later)
    # a redelivery of that uplink changes nothing
    rig.feed(up("wm-1", w1(later, LEAK, 100_010), later + timedelta(seconds=20), 2))
    assert rig.alarms_of("wm-1", "leak")[0].count == 2
    # the meter stops reporting it: cleared at the meter's time
    end = T0 + timedelta(hours=2)
    rig.feed(up("wm-1", w1(end, OK, 100_010), end + timedelta(seconds=20), 3))
    (leak,) = rig.alarms_of("wm-1", "leak")
    assert (leak.state, leak.cleared_at, leak.count) == ("cleared", end, 2)
    assert rig.alarms.active_counts() == {}
    # the outbox holds raised + cleared for each channel, in order (repeats are not sent)
    for channel in ("mqtt", "webhook"):
        events = [i.body for i in rig.alarms.outbox(channel, due_before=1e12)]
        assert [b'"event": "raised"' in e for e in events] == [True, False]
        assert b'"event": "cleared"' in events[1]
    # a new leak later is a new alarm
    again = T0 + timedelta(hours=3)
    rig.feed(up("wm-1", w1(again, LEAK, 100_010), again + timedelta(seconds=20), 4))
    assert [a.state for a in rig.alarms_of("wm-1", "leak")] == ["active", "cleared"]


def test_a_reading_older_than_the_evaluated_ones_changes_no_flag_alarm(rig: Rig) -> None:
    """A later uplink carrying an older meter record (the leak already cleared) raises nothing:
    only readings newer than the newest evaluated one are judged."""
    rig.feed(up("wm-1", w1(T0, LEAK, 100_000), T0 + timedelta(minutes=1), 1))
    cleared = T0 + timedelta(minutes=5)
    rig.feed(up("wm-1", w1(cleared, OK, 100_000), cleared + timedelta(minutes=1), 2))
    rig.feed(up("wm-1", w1(T0, LEAK, 100_000), T0 + timedelta(minutes=7), 3))
    (leak,) = rig.alarms_of("wm-1", "leak")
    assert (leak.state, leak.count, leak.cleared_at) == ("cleared", 1, cleared)


def test_ack_is_independent_of_the_state(rig: Rig) -> None:
    rig.feed(up("wm-1", w1(T0, LEAK, 100_000), T0 + timedelta(seconds=20), 1))
    (leak,) = rig.alarms_of("wm-1", "leak")
    acked = rig.alarms.ack(leak.id, "anna", "crew sent", T0 + timedelta(minutes=5))
    assert acked is not None
    assert (acked.state, acked.acked_by, acked.ack_note) == ("active", "anna", "crew sent")
    assert rig.alarms.ack(999, "anna", "", T0) is None
    assert b'"event": "acknowledged"' in rig.alarms.outbox("webhook", 1e12)[-1].body


def test_replay_yields_the_same_alarms(tmp_path: Path) -> None:
    messages = [up("wm-1", w1(T0 + timedelta(hours=h), s, 100_000 + h), T0 + timedelta(hours=h,
                seconds=20), h + 1) for h, s in enumerate((LEAK, LEAK, OK, LEAK))]  # fmt: skip
    messages += [up("em-1", esi(5 + h), T0 + timedelta(hours=h), 7 - h, port=10,
                    brand="elv", model="elv-lw-esi") for h in range(3)]  # fmt: skip
    first, second = Rig(tmp_path / "a"), Rig(tmp_path / "b")
    first.feed(*messages[:3])
    first.feed(*messages[3:])
    for message in messages:  # another batching, one by one
        second.feed(message)
    for rig in (first, second):
        rig.engine.sweep(T0 + timedelta(days=1))
    snapshot = [
        {k: v for k, v in a.to_json().items() if k != "id"}
        for a in first.alarms.alarms(state="all")
    ]
    assert snapshot == [
        {k: v for k, v in a.to_json().items() if k != "id"}
        for a in second.alarms.alarms(state="all")
    ]
    assert {(a["device"], a["kind"]) for a in snapshot} >= {("wm-1", "leak"), ("em-1", "rejoin")}


def test_silent_meter_falls_silent_and_comes_back(rig: Rig) -> None:
    quarter = [T0 + timedelta(minutes=15 * i) for i in range(8)]
    for i, when in enumerate(quarter):
        rig.feed(up("em-1", esi(5 + i / 10), when, i + 1, port=10))
    last = quarter[-1]
    # nothing else is heard: that is an ingest or network outage, not a silent meter
    rig.engine.sweep(last + timedelta(hours=5))
    assert rig.alarms_of("em-1", "silent") == []
    # another meter (the registry says: hourly) goes on reporting; em-1 does not
    for hour in range(6):
        rig.feed(up("em-2", esi(1 + hour), last + timedelta(hours=hour), hour + 1, port=10))
    rig.engine.sweep(last + timedelta(minutes=40))  # the clock caps what was heard
    assert rig.alarms_of("em-1", "silent") == []
    rig.engine.sweep(last + timedelta(hours=7))
    (silent,) = rig.alarms_of("em-1", "silent")
    assert silent.raised_at == last + timedelta(minutes=45)  # when it fell silent, from the data
    assert "45 min" in silent.reason
    assert rig.alarms_of("em-2", "silent") == []  # hourly by the registry: 5 h of uplinks fine
    rig.engine.sweep(last + timedelta(hours=9))  # sweeping again does not count it again
    assert rig.alarms_of("em-1", "silent")[0].count == 1
    back = last + timedelta(hours=6)
    rig.feed(up("em-1", esi(6), back, 20, port=10))
    (silent,) = rig.alarms_of("em-1", "silent")
    assert (silent.state, silent.cleared_at) == ("cleared", back)
    # em-2 now stops; em-1 goes on: silent after 3 x its registry interval (1 h), not 45 min
    for n in range(1, 20):
        rig.feed(up("em-1", esi(7), back + timedelta(minutes=15 * n), 20 + n, port=10))
    rig.engine.sweep(back + timedelta(hours=5))
    (quiet,) = rig.alarms_of("em-2", "silent")
    assert quiet.raised_at == last + timedelta(hours=5 + 3)


def test_continuous_and_night_flow_from_the_sweep(store_url: str, tmp_path: Path) -> None:
    rig = Rig(tmp_path / "rig", store_url)  # both backends: the sweep reads metering's series
    # a leaking water meter: 6 L every hour, day and night, for four days (hourly history)
    start = datetime(2026, 11, 16, 0, 0, tzinfo=UTC)
    litres = 100_000
    for n in range(1, 7):
        when = start + timedelta(hours=15 * n)
        litres += 6 * 15
        rig.feed(up("wm-1", w1(when, OK, litres, (6,) * 15), when + timedelta(seconds=30), n))
    now = start + timedelta(hours=90, minutes=5)
    rig.engine.sweep(now)
    (flow,) = rig.alarms_of("wm-1", "continuous_flow")
    assert flow.state == "active" and flow.value == pytest.approx(0.006)
    assert flow.raised_at == start + timedelta(hours=90)  # end of the last hour with data
    (night,) = rig.alarms_of("wm-1", "night_flow")
    assert night.state == "active"
    # the leak is fixed: hours without consumption clear continuous flow
    for n in range(7, 9):
        when = start + timedelta(hours=15 * n)
        rig.feed(up("wm-1", w1(when, OK, litres, (0,) * 15), when + timedelta(seconds=30), n))
    rig.engine.sweep(start + timedelta(hours=120, minutes=5))
    (flow,) = rig.alarms_of("wm-1", "continuous_flow")
    assert flow.state == "cleared"
    assert rig.alarms_of("em-1", "continuous_flow") == []  # water only
    rig.store.close()


def test_rejoin_and_undecodable(rig: Rig) -> None:
    rig.feed(up("em-1", esi(1), T0, 5127, port=10))
    rig.feed(up("em-1", esi(1.1), T0 + timedelta(minutes=15), 0, port=10, session="bmV3"))
    (rejoin,) = rig.alarms_of("em-1", "rejoin")
    assert rejoin.state == "active" and "5127 to 0" in rejoin.reason
    rig.feed(up("em-1", esi(1.2), T0 + timedelta(minutes=30), 1, port=10, session="bmV3"))
    assert rig.alarms_of("em-1", "rejoin")[0].state == "cleared"
    bad = [up("em-1", b"\x03\x01", T0 + timedelta(hours=1, minutes=m), 2 + m, port=10)
           for m in range(3)]  # fmt: skip
    rig.feed(*bad[:2])
    assert rig.alarms_of("em-1", "undecodable") == []
    rig.feed(bad[2])
    (dead,) = rig.alarms_of("em-1", "undecodable")
    assert dead.raised_at == T0 + timedelta(hours=1, minutes=2)  # the envelope's time
    rig.feed(up("em-1", esi(1.3), T0 + timedelta(hours=2), 9, port=10, session="bmV3"))
    assert rig.alarms_of("em-1", "undecodable")[0].state == "cleared"


def test_alarms_survive_a_restart(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.feed(up("wm-1", w1(T0, LEAK, 100_000), T0 + timedelta(seconds=20), 1))
    rig.alarms.close()
    again = Rig(tmp_path)  # a new process: memory and alarms from the file
    (memory,) = again.alarms.memories().values()
    heard = to_ns(T0 + timedelta(seconds=20))
    assert (memory.medium, memory.last_ns, memory.last_f_cnt) == ("water", heard, 1)
    assert (memory.flags_ns, memory.recent_ns) == (to_ns(T0), [heard])
    # the first uplink again (a redelivery after the restart) changes nothing
    again.feed(up("wm-1", w1(T0, LEAK, 100_000), T0 + timedelta(seconds=20), 1))
    assert again.alarms_of("wm-1", "leak")[0].count == 1
    later = T0 + timedelta(hours=1)
    again.feed(up("wm-1", w1(later, LEAK, 100_010), later + timedelta(seconds=20), 2))
    (leak,) = again.alarms_of("wm-1", "leak")
    assert leak.count == 2


def test_signed_change_interpolates_bounds() -> None:
    import numpy as np

    h = 3_600_000_000_000
    times = np.array([0, h // 2, 2 * h], dtype=np.int64)
    values = np.array([10.0, 11.0, 13.0])  # at h: 11 + 2 * (0.5 h / 1.5 h) = 11.667
    bounds = np.array([0, h, 2 * h, 3 * h], dtype=np.int64)
    change = signed_hourly_change(Series(times, values), bounds)
    np.testing.assert_allclose(change, [5 / 3, 4 / 3, np.nan])


def test_a_gap_in_replayed_data_is_a_silent_spell_without_any_sweep(rig: Rig) -> None:
    times = [T0 + timedelta(minutes=15 * i) for i in range(6)]
    times += [times[-1] + timedelta(hours=4) + timedelta(minutes=15 * i) for i in range(3)]
    rig.feed(*[up("em-1", esi(5 + i), when, i + 1, port=10) for i, when in enumerate(times)])
    (spell,) = rig.alarms_of("em-1", "silent")
    assert spell.state == "cleared"
    assert spell.raised_at == times[5] + timedelta(minutes=45)
    assert spell.cleared_at == times[6]
    # a sweep that runs later (or ran during the gap) does not change the record
    rig.engine.sweep(times[-1] + timedelta(minutes=5))
    assert [a.to_json() for a in rig.alarms_of("em-1", "silent")] == [spell.to_json()]
