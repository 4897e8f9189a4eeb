"""The alarm routes over a real store of each backend and its real alarm tables (the SQLite
store's own file, or the SQLite sidecar next to the InfluxDB spool)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from storage import open_store
from storage.alarms import SQLiteAlarms, alarm_db_path
from storage.schema import to_ns

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


@pytest.fixture
def client(store_url: str, spool_path) -> Iterator[TestClient]:
    store = open_store(store_url, spool_path=spool_path)
    alarms = SQLiteAlarms(alarm_db_path(store_url, spool_path), channels=("webhook",))
    hour = 3_600_000_000_000
    alarms.change("raise", device="wm-1", kind="leak", at_ns=to_ns(T0), reason="leak flag",
                  medium="water", site="rathaus")  # fmt: skip
    alarms.change("repeat", device="wm-1", kind="leak", at_ns=to_ns(T0) + hour, reason="again")
    alarms.change("raise", device="em-1", kind="low_battery", at_ns=to_ns(T0) + 2 * hour,
                  reason="battery 7 %", value=7.0, medium="electricity", site="schule")  # fmt: skip
    alarms.change("raise", device="wm-1", kind="rejoin", at_ns=to_ns(T0) - 48 * hour, reason="r")
    alarms.change("clear", device="wm-1", kind="rejoin", at_ns=to_ns(T0) - 47 * hour, reason="ok")
    with TestClient(create_app(store, alarms=alarms)) as test_client:
        yield test_client
    alarms.close()
    store.close()


def kinds(response) -> list[tuple[str, str]]:
    assert response.status_code == 200, response.text
    return [(a["device"], a["kind"]) for a in response.json()]


def test_list_and_filter(client: TestClient) -> None:
    assert kinds(client.get("/api/v1/alarms")) == [("em-1", "low_battery"), ("wm-1", "leak")]
    assert kinds(client.get("/api/v1/alarms?state=cleared")) == [("wm-1", "rejoin")]
    assert len(kinds(client.get("/api/v1/alarms?state=all"))) == 3
    assert kinds(client.get("/api/v1/alarms?site=rathaus")) == [("wm-1", "leak")]
    assert kinds(client.get("/api/v1/alarms?kind=low_battery")) == [("em-1", "low_battery")]
    assert kinds(client.get("/api/v1/alarms?device=em-1&kind=leak")) == []
    since = (T0 - timedelta(days=1)).isoformat()
    assert len(kinds(client.get("/api/v1/alarms", params={"state": "all", "since": since}))) == 2
    leak = client.get("/api/v1/alarms?kind=leak").json()[0]
    assert leak["count"] == 2 and leak["state"] == "active" and leak["acknowledged"] is False
    assert leak["raised_at"] == "2026-11-20T10:00:00Z"
    assert leak["last_seen_at"] == "2026-11-20T11:00:00Z"
    assert client.get("/api/v1/alarms?since=2026-11-20T10:00:00").status_code == 422
    # a date alone is local midnight in the site's zone (Europe/Berlin: 2026-11-18T23:00Z)
    assert len(kinds(client.get("/api/v1/alarms?state=all&since=2026-11-19"))) == 2
    assert len(kinds(client.get("/api/v1/alarms?state=all&since=2026-11-18"))) == 3
    assert client.get("/api/v1/alarms?state=open").status_code == 422
    device = client.get("/api/v1/devices/wm-1/alarms").json()
    assert [(a["kind"], a["state"]) for a in device] == [("leak", "active"), ("rejoin", "cleared")]


def test_ack(client: TestClient) -> None:
    leak = client.get("/api/v1/alarms?kind=leak").json()[0]
    response = client.post(f"/api/v1/alarms/{leak['id']}/ack", json={"by": "anna", "note": "ok"})
    assert response.status_code == 200, response.text
    acked = response.json()
    assert acked["acknowledged"] and acked["acked_by"] == "anna" and acked["ack_note"] == "ok"
    assert acked["state"] == "active"  # still active until the condition ends
    assert client.get("/api/v1/alarms?kind=leak").json()[0]["acked_by"] == "anna"
    assert client.post("/api/v1/alarms/9999/ack", json={"by": "anna"}).status_code == 404
    assert client.post(f"/api/v1/alarms/{leak['id']}/ack", json={"note": "x"}).status_code == 422


def test_health_counts_active_alarms_by_kind(client: TestClient) -> None:
    alarms = client.get("/health").json()["alarms"]
    assert alarms == {"active": {"leak": 1, "low_battery": 1}, "active_total": 2}


def test_without_alarm_tables(tmp_path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/x.db")
    with TestClient(create_app(store)) as client:
        assert client.get("/api/v1/alarms").status_code == 503
        assert client.get("/health").json()["alarms"] is None
    store.close()


def test_sidecar_next_to_the_spool(tmp_path) -> None:
    assert alarm_db_path("influxdb://h:8086/db", tmp_path / "spool.db") == tmp_path / (
        "spool-alarms.db"
    )
    assert str(alarm_db_path("sqlite:///./data/l.db", "x")) == "data/l.db"
