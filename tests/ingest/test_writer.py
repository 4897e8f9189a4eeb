"""The batching writer against real stores: refused records are split out and kept as dead
letters, the rest is stored; failures retried; a crashed writer thread restarts (issue 8)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import pytest

from decoders.core import Reading
from ingest.pipeline import Accepted, Rejected
from ingest.writer import Writer
from storage import Store, open_store
from tests.services import fill_disk, small_disk
from tests.storage.records import dead_letter, record

pytestmark = pytest.mark.integration

FAR_FUTURE = datetime(9999, 12, 31, tzinfo=UTC)


@pytest.fixture
def store(store_url: str, spool_path: Path) -> Iterator[Store]:
    opened = open_store(store_url, spool_path=spool_path)
    yield opened
    opened.close()


def accepted(rec, n: int) -> Accepted:
    return Accepted(rec, f"v3/app/devices/{n}/up", f'{{"message": {n}}}'.encode())


def test_only_the_records_the_store_refuses_become_dead_letters(store: Store) -> None:
    good = [accepted(record("em-1", m), m) for m in range(6)]
    bad = [
        accepted(record("em-2", 10, f_cnt=2**63), 100),  # beyond 64-bit integers
        accepted(
            record("em-3", 11, extra_readings=(Reading({"power_w": 5.0}, FAR_FUTURE),)), 101
        ),  # a meter clock in year 9999
        accepted(record("em-\ud800", 12), 102),  # a lone surrogate: not even UTF-8
    ]
    writer = Writer(store)
    writer.start()
    try:
        for item in [*good[:2], bad[0], *good[2:4], bad[1], bad[2], *good[4:]]:
            writer.submit(item)
        assert writer.flush(30)
        snapshot = writer.stats.snapshot()
    finally:
        writer.stop(10)
    assert snapshot["accepted"] == 6
    assert snapshot["rejected"]["unstorable"] == 3
    assert writer.worker.alive is False and writer.worker.crashes == 0
    assert len(store.raw_uplinks()) == 6
    assert [d.device for d in store.devices()] == ["em-1"]
    letters = store.dead_letters()
    assert {d.reason for d in letters} == {"unstorable"}
    # the raw message kept whole, the device id escaped so that it can be stored at all
    assert sorted(d.raw for d in letters) == [b'{"message": 100}', b'{"message": 101}',
                                              b'{"message": 102}']  # fmt: skip
    assert sorted(d.device for d in letters) == ["em-2", "em-3", "em-\\ud800"]
    assert all(d.topic.startswith("v3/app/devices/10") for d in letters)


def test_dead_letters_with_unencodable_text_are_stored_escaped(store: Store) -> None:
    writer = Writer(store)
    writer.start()
    try:
        writer.submit(Rejected(dead_letter(0, device="dev\ud800", detail="bad \udcff here")))
        writer.submit(Rejected(dead_letter(1, device="plain")))
        assert writer.flush(30)
    finally:
        writer.stop(10)
    letters = {d.device: d for d in store.dead_letters()}
    assert set(letters) == {"dev\\ud800", "plain"}
    assert letters["dev\\ud800"].detail == "bad \\udcff here"
    assert letters["dev\\ud800"].raw == b"\xff\x00garbage"


def test_a_crashed_writer_thread_is_restarted_and_finishes_its_batch(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = Writer(store)
    original = writer._store
    calls = []

    def crash_once(batch):
        calls.append(len(batch))
        if len(calls) == 1:
            raise RuntimeError("injected fault")
        original(batch)

    monkeypatch.setattr(writer, "_store", crash_once)
    writer.start()
    try:
        acked: list[int] = []
        for m in range(3):
            writer.submit(accepted(record("em-1", m), m), partial(acked.append, m))
        assert writer.flush(10)
        assert writer.worker.alive
    finally:
        writer.stop(10)
    assert writer.stats.snapshot()["worker_crashes"] == {"writer": 1}
    assert "injected fault" in writer.stats.snapshot()["last_crash"]
    assert sorted(acked) == [0, 1, 2]
    assert len(store.raw_uplinks()) == 3


def test_a_full_disk_is_retried_reported_and_bounded_at_stop(tmp_path: Path) -> None:
    """A transient failure (disk full) is retried and shown, never past the stop deadline;
    nothing unstored is acknowledged; once there is room again the batch is stored."""
    from storage.sqlite import SQLiteStore

    with small_disk(tmp_path / "disk") as disk:
        store = SQLiteStore(disk / "x.db")
        writer = Writer(store)
        writer.start()
        acked: list[int] = []
        filler = fill_disk(disk)
        for m in range(50):
            writer.submit(accepted(record("em-1", m), m), partial(acked.append, m))
        deadline = time.monotonic() + 10
        while writer.failing_since is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert writer.failing_since is not None
        assert "full" in writer.stats.snapshot()["last_store_error"]
        assert acked == []
        filler.unlink()  # room again: the retry stores the batch
        assert writer.flush(15)
        assert writer.failing_since is None
        assert sorted(acked) == list(range(50))
        filler = fill_disk(disk)
        writer.submit(accepted(record("em-1", 99), 99), lambda: acked.append(99))
        time.sleep(1.0)
        started = time.monotonic()
        assert writer.stop(2) is False
        assert time.monotonic() - started < 4
        assert 99 not in acked
        assert writer.stats.snapshot()["left_unacked"] == 1
        store.close()


class _Counting:
    """The real store, and the size of every batch handed to it."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.batches: list[int] = []

    def write_uplinks(self, records):
        self.batches.append(len(records))
        return self.store.write_uplinks(records)

    def __getattr__(self, name: str):
        return getattr(self.store, name)


def test_live_traffic_is_written_in_groups_and_acked_after_the_write(store: Store) -> None:
    """A trickle of one uplink a millisecond (as from a live broker) becomes a few large
    writes, not hundreds of small ones; each ack runs only once its batch is stored."""
    counting = _Counting(store)
    writer = Writer(counting, linger_s=0.05)
    acked: list[tuple[int, int]] = []  # (uplink, stored uplinks when its ack ran)
    writer.start()
    try:
        for n in range(300):
            done = partial(lambda n: acked.append((n, len(counting.store.raw_uplinks()))), n)
            assert writer.submit(accepted(record("em-1", n), n), done)
            time.sleep(0.001)
        assert writer.flush(30)
    finally:
        writer.stop(10)
    assert sum(counting.batches) == 300
    assert len(counting.batches) <= 30, counting.batches  # ≥ 10 uplinks a write on average
    assert max(counting.batches) >= 20
    assert sorted(n for n, _ in acked) == list(range(300))
    assert all(stored > n for n, stored in acked)  # stored (uplinks 0..n at least) before ack


def test_a_full_queue_pushes_back_and_loses_nothing(store: Store) -> None:
    writer = Writer(store, max_queue=5)  # not started: nothing drains the queue yet
    for n in range(5):
        assert writer.submit(accepted(record("em-1", n), n), timeout=0)
    started = time.monotonic()
    assert not writer.submit(accepted(record("em-1", 5), 5), timeout=0.2)  # refused, not lost
    assert time.monotonic() - started >= 0.2
    assert writer.full and writer.depth == 5
    writer.start()
    assert writer.submit(accepted(record("em-1", 5), 5), timeout=10)
    assert writer.flush(30)
    writer.stop(10)
    assert len(store.raw_uplinks()) == 6
