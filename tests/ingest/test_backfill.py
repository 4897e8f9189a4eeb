"""Backfill from the TTS Storage Integration, against a local server speaking its format."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from ingest.backfill import (
    BackfillError,
    BackfillReport,
    GapTracker,
    StorageApi,
    backfill,
    fetch_uplinks,
    storage_api,
)
from ingest.pipeline import Pipeline
from ingest.writer import Writer
from storage import open_store
from tests.helpers import tts_up
from tests.tts_storage import StorageServer, storage_server

T0 = datetime(2025, 11, 20, 10, 0, tzinfo=UTC)
ESI = bytes.fromhex("03010BB8010101A0860100000010270000")


def uplink(n: int) -> bytes:
    when = (T0 + timedelta(minutes=n)).isoformat().replace("+00:00", "Z")
    return tts_up("esi-9", ESI, f_port=10, brand="elv", model="elv-lw-esi", f_cnt=n,
                  received_at=when)  # fmt: skip


def api_for(server: StorageServer, **kw: object) -> StorageApi:
    return StorageApi(server.url, server.application, server.api_key, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("tokens", [True, False], ids=["continuation-token", "by-time"])
def test_pages_through_the_window_in_order(tokens: bool) -> None:
    with storage_server(StorageServer(tokens=tokens, max_page=3)) as server:
        for n in range(1, 11):
            server.store(uplink(n))
        with httpx.Client() as client:
            got = list(
                fetch_uplinks(client, api_for(server, page_limit=3), T0 + timedelta(minutes=2))
            )
    counts = [
        httpx.Response(200, content=body).json()["uplink_message"]["f_cnt"] for _, body in got
    ]
    if tokens:
        assert counts == [3, 4, 5, 6, 7, 8, 9, 10]
        assert "continuation_token" in server.requests[1]
        assert set(server.requests[1]) == {"continuation_token"}  # the token replaces the rest
    else:  # paging by time: each page starts after the newest of the one before
        assert counts == [3, 4, 5, 6, 7, 8, 9, 10]
        assert server.requests[1]["after"] == ["2025-11-20T10:05:00Z"]
    assert got[-1][0] == 3  # three pages
    assert server.requests[0]["order"] == ["received_at"]


def test_before_bounds_the_window() -> None:
    with storage_server() as server:
        for n in range(1, 6):
            server.store(uplink(n))
        with httpx.Client() as client:
            got = list(fetch_uplinks(client, api_for(server), T0, T0 + timedelta(minutes=3)))
    assert len(got) == 2  # minutes 1 and 2


def test_wrong_key_is_a_permanent_error_that_says_what_to_check() -> None:
    with storage_server() as server, httpx.Client() as client:
        api = StorageApi(server.url, server.application, "NNSXS.WRONG")
        with pytest.raises(BackfillError, match="RIGHT_APPLICATION_TRAFFIC_READ") as caught:
            list(fetch_uplinks(client, api, T0))
    assert caught.value.permanent
    assert "NNSXS.WRONG" not in str(caught.value)


def test_storage_integration_not_enabled_is_permanent() -> None:
    with storage_server() as server, httpx.Client() as client:
        api = StorageApi(server.url, "other-app", server.api_key)
        with pytest.raises(BackfillError, match="Storage Integration enabled") as caught:
            list(fetch_uplinks(client, api, T0))
    assert caught.value.permanent


def test_unreachable_server_is_retried_not_permanent() -> None:
    with storage_server() as server:
        url = server.url
    with httpx.Client() as client, pytest.raises(BackfillError) as caught:
        list(fetch_uplinks(client, StorageApi(url, "meters", "k"), T0))
    assert not caught.value.permanent


def test_backfilled_uplinks_stored_once_and_bad_lines_kept(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/l.db")
    writer = Writer(store)
    writer.start()
    pipeline = Pipeline()
    server_state = StorageServer(extra_lines=[b"not json at all", b'{"something": "else"}'])
    with storage_server(server_state) as server, httpx.Client() as client:
        for n in range(1, 6):
            server.store(uplink(n))
        for _ in range(2):  # the same window twice: the second is all duplicates
            report = BackfillReport(after=T0, before=None, reason="test")
            backfill(client, api_for(server), pipeline,
                     lambda o, done: writer.submit(o, done), report)  # fmt: skip
            writer.flush()
    writer.stop()
    stats = writer.stats.snapshot()
    assert (report.fetched, report.accepted, report.rejected, report.stored) == (5, 5, 0, 5)
    assert report.finished and report.pages == 3
    assert (stats["accepted"], stats["duplicates"]) == (5, 5)
    assert len(store.raw_uplinks()) == 5
    letters = store.dead_letters()
    assert sorted(d.reason for d in letters) == ["bad_envelope", "not_json"]
    assert {d.raw for d in letters} == {b"not json at all", b'{"something": "else"}'}
    assert letters[0].topic == "tts-storage/meters"
    store.close()


def test_gap_starts_at_the_newest_uplink_before_each_connection() -> None:
    tracker = GapTracker(T0)  # from the store: a restart backfills from here
    tracker.observe(1, None)  # connection 1 opens; its gap starts at the stored newest
    tracker.observe(1, T0 + timedelta(minutes=5))
    tracker.observe(2, T0 + timedelta(minutes=9))  # arrived after reconnection 2
    tracker.observe(3, None)
    assert tracker.gap_start(1, 1) == T0
    # connections 2 and 3 not yet backfilled: the earlier gap (before 2) wins
    assert tracker.gap_start(2, 3) == T0 + timedelta(minutes=5)
    assert tracker.gap_start(4, 4) == T0 + timedelta(minutes=9)
    assert GapTracker(None).gap_start(1, 1) is None


def test_storage_api_from_the_mqtt_settings() -> None:
    api = storage_api("mqtts://meters@ttn:NNSXS.K@eu1.cloud.thethings.network:8883")
    assert api == StorageApi("https://eu1.cloud.thethings.network", "meters", "NNSXS.K")
    assert "NNSXS.K" not in str(api)
    assert storage_api("mqtt://127.0.0.1:1883") is None  # no app@tenant: not TTS
    assert storage_api("mqtts://meters@ttn:K@h:8883", "off") is None
    over = storage_api("mqtt://chirp:pw@h", "http://tts.local", "app2", "KEY2")
    assert over == StorageApi("http://tts.local", "app2", "KEY2")
    with pytest.raises(ValueError, match="LORAMETER_TTS_API_KEY"):
        storage_api("mqtt://meters@ttn@h", "")
