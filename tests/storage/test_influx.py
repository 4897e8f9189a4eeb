"""The InfluxDB backend beyond the shared contract: batching, the spool, errors, injection."""

from __future__ import annotations

import socket
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response

from storage import StoreError
from storage.base import RecordError
from storage.influx import InfluxStore
from storage.influx_http import MSGPACK, decode_body
from storage.influx_schema import uplink_lines
from storage.schema import from_ns
from tests.influxd import Influxd, start_influxd
from tests.services import fill_disk, free_port, serve, small_disk
from tests.storage.records import at, dead_letter, record

pytestmark = pytest.mark.integration

FAST = {"flush_interval_s": 0.05, "retry_max_s": 0.2, "timeout_s": 3.0}


@pytest.fixture(scope="module")
def own_influxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Influxd]:
    """An influxd this module may stop and start without disturbing other tests."""
    server = start_influxd(tmp_path_factory.mktemp("own-influxd"))
    yield server
    server.stop()


@pytest.fixture
def server(own_influxd: Influxd) -> Iterator[Influxd]:
    own_influxd.start()
    yield own_influxd
    own_influxd.start()  # a test that stopped it must not leave it stopped


@pytest.fixture(scope="module")
def auth_influxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Influxd]:
    """An influxd with authentication on, and one admin user ``admin:s3cret``."""
    server = start_influxd(tmp_path_factory.mktemp("auth-influxd"), auth=True)
    created = server.query("CREATE USER admin WITH PASSWORD 's3cret' WITH ALL PRIVILEGES")
    assert created.status_code == 200, created.text
    yield server
    server.stop()


def _db(url: str) -> str:
    return url.rsplit("/", 1)[1]


def _count(server: Influxd, url: str, q: str = "SELECT count(f_port) FROM uplink") -> int:
    result = server.query(q, db=_db(url)).json()["results"][0]
    return int(result["series"][0]["values"][0][1]) if "series" in result else 0


def _open(url: str, spool: Path, **kw: Any) -> InfluxStore:
    return InfluxStore(url, spool_path=spool, **{**FAST, **kw})


def _one_line(text: str) -> str:
    assert "\n" not in text and text.strip() == text
    return text


def test_writes_are_batched_by_count_and_by_time(influxd: Influxd, spool_path: Path) -> None:
    url = influxd.new_database_url()
    interval = 1.0  # long enough that a loaded machine still asks influxd within it
    store = _open(url, spool_path, flush_interval_s=interval, batch_lines=400)
    try:
        written = time.monotonic()
        store.write_uplinks([record("em-1", 0)])
        seen = _count(influxd, url)
        asked = time.monotonic() - written
        assert seen == 0 or asked >= interval, asked  # not one request per reading: it waits
        deadline = time.monotonic() + 5
        while _count(influxd, url) == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _count(influxd, url) == 1  # ... but not longer than the flush interval
        assert store.sender.sent_batches == 1
        started = time.monotonic()
        for minute in range(1, 201):  # 200 uplinks of 3 lines, one call each
            store.write_uplinks([record("em-1", minute)])
        took = time.monotonic() - started
        assert store.flush(5)
        assert _count(influxd, url) == 201
        assert store.sender.sent_lines == 201 * 3
        # 600 lines: 2 batches by count, plus one per flush interval the writing took (a loaded
        # machine writes slowly) and the flush at the end; one request per uplink would be 200
        most = 1 + 2 + int(took / interval) + 1
        assert store.sender.sent_batches <= most, (store.sender.sent_batches, took)
    finally:
        store.close()


def test_outage_spools_and_drains_in_order(server: Influxd, spool_path: Path) -> None:
    url = server.new_database_url()
    store = _open(url, spool_path, batch_lines=3)  # one uplink per request: order shows
    try:
        store.write_uplinks([record("em-1", m) for m in range(10)])
        assert store.flush(5)
        server.stop()
        started = time.monotonic()
        for minute in range(10, 30):
            store.write_uplinks([record("em-1", minute)])
        # A correction of one point, after its first version: the later write must win.
        store.write_uplinks([record("em-1", 20, {"power_w": 1.0}, key="first")])
        store.write_uplinks([record("em-1", 20, {"power_w": 2.0}, key="second")])
        assert time.monotonic() - started < 1.0  # writes never wait for InfluxDB
        time.sleep(0.3)
        health = store.health()
        assert not health.ok
        assert health.extra["error_kind"] == "unreachable"
        assert "unreachable" in _one_line(health.detail)
        assert health.extra["spool_depth"] == 22 * 3
        assert float(str(health.extra["spool_oldest_age_s"])) >= 0.3
        server.start()
        assert store.flush(10)
        health = store.health()
        assert health.ok, health.detail
        assert health.extra["spool_depth"] == 0
        assert health.uplinks == 30
        assert _count(server, url) == 30
        assert _count(server, url, "SELECT count(power_w) FROM electricity") == 30
        (row,) = store.readings("em-1", at(20), at(20.5))
        assert row.values["power_w"] == 2.0
    finally:
        store.close()


def test_spool_survives_a_process_restart(server: Influxd, spool_path: Path) -> None:
    url = server.new_database_url()
    server.stop()
    first = _open(url, spool_path, close_timeout_s=1.0)
    first.write_uplinks([record("em-1", m) for m in range(50)])
    started = time.monotonic()
    first.close()  # InfluxDB is down: the lines stay in the spool file
    assert time.monotonic() - started < 5
    server.start()
    second = _open(url, spool_path)
    try:
        assert second.health().extra["spool_depth"] in (0, 150)  # may already be draining
        assert second.flush(10)
        assert _count(server, url) == 50
        assert second.write_uplinks([record("em-1", 3)]).duplicates == 1
    finally:
        second.close()


def test_spool_file_shrinks_after_draining(server: Influxd, spool_path: Path) -> None:
    """A backlog grows the spool file; once InfluxDB took it, the file gives the space back."""
    url = server.new_database_url()
    server.query(f'CREATE DATABASE "{_db(url)}"')
    server.stop()
    store = _open(url, spool_path, close_timeout_s=0.5)
    try:
        for start in range(0, 8_000, 1_000):
            store.write_uplinks([record(f"em-{m % 50}", m) for m in range(start, start + 1_000)])
        backlog = store.spool.size()
        assert backlog > 4 * 2**20  # the lines are in the file (and its WAL)
        server.start()
        assert store.flush(60)
        assert _count(server, url) == 8_000
        drained = store.spool.size()
        assert drained < backlog / 4, (backlog, drained)
        # it still works as a spool and still knows the dedup keys
        assert store.write_uplinks([record("em-1", 1), record("em-1", 9_000)]).written == 1
        assert store.flush(10)
        assert _count(server, url) == 8_001
    finally:
        store.close()


def test_older_spool_file_keeps_its_lines_and_dedup_keys(
    influxd: Influxd, spool_path: Path
) -> None:
    """A spool written by an earlier version (unique index on the keys, no incremental vacuum)
    is converted when opened, and what it held is sent and remembered."""
    old = record("em-1", 0)
    with sqlite3.connect(spool_path) as db:
        db.executescript(
            """
            CREATE TABLE spool (id INTEGER PRIMARY KEY AUTOINCREMENT, created REAL NOT NULL,
                lines INTEGER NOT NULL, body TEXT NOT NULL);
            CREATE TABLE seen (id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE);
            CREATE TABLE rejected (id INTEGER PRIMARY KEY AUTOINCREMENT, created REAL NOT NULL,
                error TEXT NOT NULL, lines INTEGER NOT NULL, body TEXT NOT NULL);
            """
        )
        db.execute("INSERT INTO seen (key) VALUES (?)", (old.raw.dedup_key,))
    url = influxd.new_database_url()
    store = _open(url, spool_path)
    try:
        result = store.write_uplinks([old, record("em-1", 15), record("em-1", 15)])
        assert (result.written, result.duplicates) == (1, 2)
        assert store.flush(10)
        assert _count(influxd, url) == 1
    finally:
        store.close()
    with sqlite3.connect(spool_path) as db:
        assert db.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # incremental
        assert db.execute("SELECT count(*) FROM seen").fetchone()[0] == 2
        (schema,) = db.execute("SELECT sql FROM sqlite_master WHERE name = 'seen'").fetchone()
        assert "UNIQUE" not in schema
    reopened = _open(url, spool_path)
    try:
        assert reopened.write_uplinks([old, record("em-1", 15)]).duplicates == 2
    finally:
        reopened.close()


def test_old_spool_is_unhealthy(tmp_path: Path) -> None:
    url = f"influxdb://127.0.0.1:{free_port()}/lorameter"
    store = _open(url, tmp_path / "spool.db", spool_max_age_s=0.2, close_timeout_s=0.5)
    try:
        store.write_uplinks([record("em-1", 0)])
        assert store.health().extra["spool_depth"] == 3
        time.sleep(0.3)
        health = store.health()
        assert not health.ok
        assert "limit 0 s" in str(health.extra["problems"])
        assert float(str(health.extra["spool_oldest_age_s"])) > 0.2
    finally:
        store.close()


def test_full_spool_is_an_error_not_a_silent_drop(tmp_path: Path) -> None:
    url = f"influxdb://127.0.0.1:{free_port()}/lorameter"
    store = _open(url, tmp_path / "spool.db", spool_max_bytes=256 * 1024, close_timeout_s=0.5)
    try:
        with pytest.raises(StoreError, match="full"):  # noqa: PT012 - fills up over many writes
            for minute in range(100_000):
                store.write_uplinks([record("em-1", minute / 60, key=f"k{minute}")])
        health = store.health()
        assert not health.ok
        assert health.extra["spool_full"] is True
        assert "is full" in str(health.extra["problems"])
    finally:
        store.close()


def test_low_disk_is_unhealthy(influxd: Influxd, spool_path: Path) -> None:
    store = _open(influxd.new_database_url(), spool_path, min_free_bytes=2**62)
    try:
        health = store.health()
        assert not health.ok
        assert "MiB free for the spool" in _one_line(health.detail)
    finally:
        store.close()


def test_unreachable_host_is_one_readable_line(tmp_path: Path) -> None:
    port = free_port()
    store = _open(f"influxdb://127.0.0.1:{port}/lorameter", tmp_path / "s.db", close_timeout_s=0.5)
    try:
        health = store.health()
        assert not health.ok
        assert health.extra["error_kind"] == "unreachable"
        assert f"127.0.0.1:{port} is unreachable" in _one_line(health.detail)
        with pytest.raises(StoreError, match="unreachable"):
            store.devices()
    finally:
        store.close()


def test_unknown_database_is_named(influxd: Influxd, spool_path: Path) -> None:
    url = influxd.new_database_url()
    store = _open(url, spool_path, create_database=False, close_timeout_s=0.5)
    try:
        store.write_uplinks([record("em-1", 0)])
        assert not store.flush(5)
        health = store.health()
        assert not health.ok
        assert health.extra["error_kind"] == "database"
        assert f"has no database {_db(url)!r}" in _one_line(health.detail)
        assert health.extra["spool_depth"] == 3  # kept until the database exists
    finally:
        store.close()


def test_missing_database_is_created(influxd: Influxd, spool_path: Path) -> None:
    url = influxd.new_database_url()
    store = _open(url, spool_path)
    try:
        names = str(influxd.query("SHOW DATABASES").json())
        assert _db(url) in names
        influxd.query(f'DROP DATABASE "{_db(url)}"')  # dropped behind our back: made again
        store.write_uplinks([record("em-1", 0)])
        assert store.flush(5)
        assert _count(influxd, url) == 1
    finally:
        store.close()


def test_credentials(auth_influxd: Influxd, tmp_path: Path) -> None:
    good = _open(auth_influxd.new_database_url(credentials="admin:s3cret"), tmp_path / "a.db")
    try:
        good.write_uplinks([record("em-1", 0)])
        assert [d.device for d in good.devices()] == ["em-1"]
        assert good.health().ok
    finally:
        good.close()
    for url, token in [
        (auth_influxd.new_database_url(credentials="admin:wrong"), ""),
        (auth_influxd.new_database_url(), "not-a-token"),
        (auth_influxd.new_database_url(), ""),
    ]:
        bad = _open(url, tmp_path / "b.db", token=token, close_timeout_s=0.5)
        try:
            health = bad.health()
            assert not health.ok
            assert health.extra["error_kind"] == "auth"
            assert "rejected the credentials" in _one_line(health.detail)
            assert "wrong" not in health.detail and "s3cret" not in health.detail
        finally:
            bad.close()


def test_query_injection_cannot_change_statements(influxd: Influxd, spool_path: Path) -> None:
    url = influxd.new_database_url()
    store = _open(url, spool_path)
    try:
        store.write_uplinks(
            [record("em-1", 0), record("em-2", 0), record("wm-1", 0, medium="water")]
        )
        evil_devices = [
            "em-1' OR device = 'em-2",
            "em-1' OR time > 0 --",
            "em-1'; DROP DATABASE \"x\"; SELECT * FROM water WHERE device='wm-1",
            "em-1\\' OR device =~ /./ OR device = \\'",
        ]
        for device in evil_devices:
            assert store.readings(device, at(-1), at(1)) == [], device
            assert store.device(device) is None
            assert store.raw_uplinks(device) == []
        evil_fields = [
            'power_w" FROM "water',
            "* FROM water; SELECT *",
            'volume_m3", "power_w',
        ]
        for field in evil_fields:
            assert store.readings("em-1", at(-1), at(1), fields=[field]) == [], field
        assert [r.measurement for r in store.readings("wm-1", at(-1), at(1))] == ["water"]
        assert len(store.devices()) == 3
    finally:
        store.close()


def test_same_uplink_from_two_processes_is_stored_once(influxd: Influxd, tmp_path: Path) -> None:
    """The spool's dedup memory is per process; InfluxDB itself keeps a replay idempotent."""
    url = influxd.new_database_url()
    for name in ("a.db", "b.db"):
        store = _open(url, tmp_path / name)
        assert store.write_uplinks([record("em-1", m) for m in range(5)]).written == 5
        store.close()
    assert _count(influxd, url) == 5
    assert _count(influxd, url, "SELECT count(power_w) FROM electricity") == 5
    assert _count(influxd, url, "SELECT count(f_cnt) FROM radio") == 5


def test_unstorable_uplink_is_a_record_error(influxd: Influxd, spool_path: Path) -> None:
    """Line protocol cannot carry it: the batch fails as a whole, and nothing is spooled (the
    writer splits it and keeps the uplink as a dead letter: tests/ingest/test_writer.py)."""
    store = _open(influxd.new_database_url(), spool_path)
    try:
        for bad in (record("ends-with\\", 0), record("line\nbreak", 1)):
            with pytest.raises(RecordError, match="cannot store uplink"):
                store.write_uplinks([record("em-1", 5), bad])
        assert store.health().extra["spool_depth"] == 0
        assert store.devices() == []
    finally:
        store.close()


def test_rejected_lines_are_kept_and_reported(influxd: Influxd, spool_path: Path) -> None:
    store = _open(influxd.new_database_url(), spool_path)
    try:
        store.write_uplinks([record("em-1", 0, {"custom_x": 1.5})])
        assert store.flush(5)
        store.write_uplinks([record("em-1", 1, {"custom_x": "text"})])  # a field type conflict
        assert store.flush(5)
        health = store.health()
        # only the refused line is kept aside (issue 8): the batch's other two were written
        assert health.extra["rejected_lines"] == 1
        assert "field type conflict" in str(health.extra["last_rejection"])
        assert health.uplinks == 2
    finally:
        store.close()


def test_partial_write_sets_aside_only_the_refused_line(influxd: Influxd, spool_path: Path) -> None:
    """Issue 8: one refused line among 600 must not send the whole batch to 'rejected'."""
    store = _open(influxd.new_database_url(), spool_path, batch_lines=5_000)
    try:
        store.write_uplinks([record("em-1", 0, {"custom_x": 1.5})])
        assert store.flush(5)
        good = [record("em-1", 1 + m, {"energy_import_kwh": float(m)}) for m in range(200)]
        bad = record("em-1", 500, {"custom_x": "text"})  # a field type conflict
        store.write_uplinks([*good[:100], bad, *good[100:]])
        assert store.flush(10)
        health = store.health()
        assert health.extra["rejected_lines"] == 1
        assert health.uplinks == 202  # the bad uplink's raw and radio lines were taken too
        rows = store.readings("em-1", at(0), at(1000), fields=["energy_import_kwh"])
        assert len(rows) == 200
        with sqlite3.connect(spool_path) as db:
            (body,) = db.execute("SELECT body FROM rejected").fetchone()
        assert 'custom_x="text"' in body and "\n" not in body
    finally:
        store.close()


def test_hanging_influxdb_times_out_and_spools(tmp_path: Path) -> None:
    """A server that accepts connections and never answers (a hung influxd, a dead proxy)."""
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(64)
        url = f"influxdb://127.0.0.1:{hung.getsockname()[1]}/lorameter"
        store = _open(url, tmp_path / "s.db", timeout_s=0.5, close_timeout_s=0.5)
        try:
            started = time.monotonic()
            for minute in range(20):
                store.write_uplinks([record("em-1", minute)])
            assert time.monotonic() - started < 0.5  # the writer never waits on InfluxDB
            assert not store.flush(5)
            health = store.health()
            assert time.monotonic() - started < 5
            assert not health.ok
            assert health.extra["error_kind"] == "timeout"
            assert "did not answer in time" in _one_line(health.detail)
            assert health.extra["spool_depth"] == 60
        finally:
            store.close()


def test_a_full_disk_does_not_block_the_spool_once_influxdb_answers(
    influxd: Influxd, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 8: deleting sent batches needs free space. On a full disk the sender must go on
    (not re-send the same batch forever), and the log must say to free disk space."""
    url = influxd.new_database_url()
    with small_disk(tmp_path / "disk", 4096) as disk:
        store = _open(url, disk / "spool.db", flush_interval_s=60, batch_lines=3)
        try:
            for minute in range(10):
                store.write_uplinks([record("em-1", minute)])
            filler = fill_disk(disk)
            assert store.flush(10)  # every batch sent although none could be deleted
            assert _count(influxd, url) == 10
            assert store.sender.sent_batches == 10  # each sent once, not again and again
            health = store.health()
            assert health.extra["spool_depth"] == 0
            assert not health.ok and "free disk space" in health.detail
            advice = [r.getMessage() for r in caplog.records if "cannot delete" in r.getMessage()]
            assert len(advice) == 1 and "free disk space" in advice[0]
            assert "get InfluxDB answering" not in caplog.text
            filler.unlink()
            store.write_uplinks([record("em-1", 11)])  # room again: the next send deletes
            assert store.flush(10)
            with sqlite3.connect(disk / "spool.db") as db:
                assert db.execute("SELECT count(*) FROM spool").fetchone()[0] == 0
        finally:
            store.close()


def test_a_second_store_on_the_same_spool_is_refused(tmp_path: Path) -> None:
    url = f"influxdb://127.0.0.1:{free_port()}/lorameter"
    first = _open(url, tmp_path / "spool.db", close_timeout_s=0.2)
    try:
        with pytest.raises(StoreError, match="in use by another lorameter process"):
            _open(url, tmp_path / "spool.db")
    finally:
        first.close()
    _open(url, tmp_path / "spool.db", close_timeout_s=0.2).close()  # free again after close


def test_a_crash_in_the_sender_is_counted_and_survived(
    influxd: Influxd, spool_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = influxd.new_database_url()
    store = _open(url, spool_path)
    try:
        original, calls = store.spool.head, []

        def crash_once(max_lines: int):
            calls.append(max_lines)
            if len(calls) == 1:
                raise RuntimeError("injected fault")
            return original(max_lines)

        monkeypatch.setattr(store.spool, "head", crash_once)
        store.write_uplinks([record("em-1", 0)])
        deadline = time.monotonic() + 10
        while _count(influxd, url) < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _count(influxd, url) == 1
        extra = store.health().extra
        assert extra["sender_crashes"] == 1 and extra["sender_alive"] is True
    finally:
        store.close()


def _write_directly(server: Influxd, url: str, line: str) -> None:
    """A point another process wrote (InfluxDB's own /write, not this store)."""
    response = httpx.post(
        f"{server.base_url}/write", params={"db": _db(url), "precision": "ns"}, content=line
    )
    assert response.status_code == 204, response.text


def test_health_counts_are_kept_own_writes_added_others_seen_after_the_ttl(
    influxd: Influxd, spool_path: Path
) -> None:
    url = influxd.new_database_url()
    store = _open(url, spool_path, counts_ttl_s=0.5)
    try:
        store.write_uplinks([record("em-1", m) for m in range(3)])
        assert store.flush(5)
        assert store.health().uplinks == 3
        _write_directly(influxd, url, "uplink,device=other f_port=1i 1")
        store.write_uplinks([record("em-1", 3)])  # own write: counted at once
        store.write_dead_letters([dead_letter(0), dead_letter(1, "bad_base64")])
        health = store.health()
        assert (health.uplinks, dict(health.dead_letters)) == (4, {"not_json": 1, "bad_base64": 1})
        time.sleep(0.6)
        store.health()  # older than counts_ttl_s: recounted in the background
        deadline = time.monotonic() + 5
        while store.health().uplinks != 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        health = store.health()
        assert (health.uplinks, dict(health.dead_letters)) == (5, {"not_json": 1, "bad_base64": 1})
        assert health.ok, health.detail
    finally:
        store.close()


def test_a_reader_keeps_counts_but_sees_influxdb_go_down(server: Influxd, spool_path: Path) -> None:
    url = server.new_database_url()
    writer = _open(url, spool_path)
    writer.write_uplinks([record("em-1", 0)])
    assert writer.flush(5)
    writer.close()
    reader = _open(url, spool_path, sender=False)
    try:
        assert reader.health().ok and reader.health().uplinks == 1
        server.stop()
        health = reader.health()
        assert not health.ok and health.extra["error_kind"] == "unreachable"
    finally:
        reader.close()


def test_device_summaries_are_kept_for_a_while_and_own_writes_show_at_once(
    influxd: Influxd, spool_path: Path
) -> None:
    url = influxd.new_database_url()
    store = _open(url, spool_path, summary_ttl_s=2.0)
    try:
        store.write_uplinks([record("em-1", 0)])
        assert store.device("em-2") is None  # one device asked for: kept as well
        _write_directly(influxd, url, uplink_lines(record("em-2", 1))[0])
        assert store.device("em-2") is None
        time.sleep(2.1)
        assert store.device("em-2") is not None
        assert [d.device for d in store.devices()] == ["em-1", "em-2"]
        other = record("em-2", 5)
        for line in uplink_lines(other):
            _write_directly(influxd, url, line)
        kept = store.device("em-2")
        assert kept is not None and kept.uplinks == 1  # kept
        summary = store.device("em-1")
        assert summary is not None and summary.uplinks == 1
        store.write_uplinks([record("em-1", 15)])  # own write: not kept any more
        summary = store.device("em-1")
        assert summary is not None and (summary.uplinks, summary.last_seen) == (2, at(15))
        assert [d.device for d in store.devices()] == ["em-1", "em-2"]
        _write_directly(influxd, url, uplink_lines(record("em-3", 5))[0])
        time.sleep(2.1)  # older than summary_ttl_s: asked again
        assert [d.device for d in store.devices()] == ["em-1", "em-2", "em-3"]
    finally:
        store.close()


def test_readings_see_a_field_written_after_the_field_types_were_kept(
    influxd: Influxd, spool_path: Path
) -> None:
    url = influxd.new_database_url()
    store = _open(url, spool_path)
    try:
        store.write_uplinks([record("em-1", 0, {"energy_import_kwh": 1.0})])
        assert [dict(r.values) for r in store.readings("em-1", at(0), at(1))] == [
            {"energy_import_kwh": 1.0}
        ]
        store.write_uplinks([record("em-1", 1, {"energy_import_kwh": 2.0, "error_flags": 3})])
        _write_directly(influxd, url, 'electricity,device=em-1 custom_note="hi" 1')
        rows = store.readings("em-1", at(0), at(2))
        assert [dict(r.values) for r in rows] == [
            {"energy_import_kwh": 1.0},
            {"energy_import_kwh": 2.0, "error_flags": 3},
        ]
        assert type(rows[1].values["error_flags"]) is int
        (note,) = store.readings("em-1", from_ns(0), from_ns(1_000))
        assert dict(note.values) == {"custom_note": "hi"}
    finally:
        store.close()


def test_own_writes_kept_for_counting_stay_bounded_in_an_outage(
    server: Influxd, spool_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("storage.influx._MAX_SPOOLED", 10)
    url = server.new_database_url()
    server.query(f'CREATE DATABASE "{_db(url)}"')
    store = _open(url, spool_path, close_timeout_s=0.5)
    try:
        assert store.health().uplinks == 0
        server.stop()
        for minute in range(30):
            store.write_uplinks([record("em-1", minute)])
        store.write_dead_letters([dead_letter(0)])
        assert len(store._spooled) <= 10
        assert (store.health().uplinks, dict(store.health().dead_letters)) == (30, {"not_json": 1})
        server.start()
        assert store.flush(10)
        assert _count(server, url) == 30
        store.delete_dead_letters([])  # counts again
        assert (store.health().uplinks, dict(store.health().dead_letters)) == (30, {"not_json": 1})
    finally:
        store.close()


def _json_only_influxdb(upstream: str) -> tuple[FastAPI, list[str]]:
    """A server in front of influxd that answers JSON whatever the Accept header asks (as
    InfluxDB 3's /query does), or, with ``app.state.garbage``, a body that is not what its
    Content-Type says; the Accept headers it was sent."""
    app = FastAPI()
    app.state.garbage = False
    accepts: list[str] = []

    @app.api_route("/{path:path}", methods=["GET", "POST"])
    async def forward(path: str, request: Request) -> Response:
        accepts.append(request.headers.get("accept", ""))
        if app.state.garbage and path == "query":
            return Response(b"\xc1 not MessagePack", media_type=MSGPACK)
        async with httpx.AsyncClient(base_url=upstream) as client:
            answer = await client.request(
                request.method,
                f"/{path}",
                params=request.query_params,
                content=await request.body(),
                headers={"content-type": request.headers.get("content-type", "text/plain")},
            )
        return Response(
            answer.content,
            status_code=answer.status_code,
            media_type=answer.headers.get("content-type"),
        )

    return app, accepts


def test_reads_take_messagepack_or_json_as_the_server_answers(
    influxd: Influxd, spool_path: Path, tmp_path: Path
) -> None:
    url = influxd.new_database_url()
    direct = _open(url, spool_path)
    app, accepts = _json_only_influxdb(influxd.base_url)
    try:
        direct.write_uplinks(
            [
                record("em-1", 0, {"energy_import_kwh": 95.0, "error_flags": 3}),
                record("em-1", 10, {"energy_import_kwh": 96.5, "error_flags": 4}),
            ]
        )
        assert direct.flush(10)
        expected = direct.readings("em-1", at(0), at(20))
        assert [type(r.values["energy_import_kwh"]) for r in expected] == [float, float]
        with serve(app) as proxy:
            host = proxy.removeprefix("http://")
            via = InfluxStore(
                f"influxdb://{host}/{_db(url)}", spool_path=tmp_path / "reader.db", sender=False
            )
            try:
                rows = via.readings("em-1", at(0), at(20))
                assert accepts and set(accepts) == {MSGPACK}  # asked for MessagePack, got JSON
                assert rows == expected
                assert type(rows[0].values["energy_import_kwh"]) is float  # JSON wrote 95
                assert type(rows[0].values["error_flags"]) is int
                app.state.garbage = True
                with pytest.raises(StoreError, match="answered a body that is not") as failed:
                    via.readings("em-1", at(0), at(20))
                _one_line(str(failed.value))
            finally:
                via.close()
    finally:
        direct.close()


def test_messagepack_answers_keep_floats_and_influxdb_error_messages(
    influxd: Influxd, spool_path: Path
) -> None:
    url = influxd.new_database_url()
    store = _open(url, spool_path)
    try:
        store.write_uplinks([record("em-1", 0, {"energy_import_kwh": 95.0, "error_flags": 3})])
        assert store.flush(10)
        q = "SELECT energy_import_kwh, error_flags FROM electricity"
        response = httpx.post(
            f"{influxd.base_url}/query",
            data={"q": q, "db": _db(url), "epoch": "ns"},
            headers={"Accept": MSGPACK},
        )
        assert response.headers["content-type"] == MSGPACK
        answer = decode_body(response)
        as_json = influxd.query(q, db=_db(url)).json()
        assert answer == as_json  # the same document: 95.0 == 95
        values = [answer, as_json]
        kinds = [[type(v) for v in d["results"][0]["series"][0]["values"][0]] for d in values]
        assert kinds == [[int, float, int], [int, int, int]]  # JSON prints 95.0 as 95
        # influxd's own words, from its MessagePack error body
        with pytest.raises(
            StoreError, match="HTTP 400: error parsing query: found SELEC"
        ) as failed:
            store.target.query(store._client(), ["SELEC energy_import_kwh FROM electricity"])
        _one_line(str(failed.value))
    finally:
        store.close()
