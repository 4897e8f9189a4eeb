"""Consumption, key-date reads and the fleet over HTTP, on a real SQLite file and a real influxd."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from decoders.core import Reading
from ingest.devices import parse_registry
from storage import open_store
from tests.storage.records import T0, record

pytestmark = pytest.mark.integration

BERLIN = ZoneInfo("Europe/Berlin")
# Hourly readings, 1 m³ an hour, from local midnight of 27 March (stepped in UTC: Python adds
# a timedelta to an aware datetime on the wall clock).
START = datetime(2026, 3, 27, tzinfo=BERLIN).astimezone(UTC)
EXCHANGE = datetime(2026, 3, 30, 12, tzinfo=BERLIN)

REGISTRY = parse_registry(
    {
        "devices": [
            {
                "device": "wm-1",
                "meter": "WM-OLD",
                "tags": {"site": "north"},
                "expected_interval_s": 3600,
            },
            {
                "device": "wm-2",
                "meter": "WM-A",
                "tags": {"site": "north"},
                "exchanges": [
                    {
                        "at": EXCHANGE.isoformat(),
                        "old_end": {"volume_m3": 5084.0},
                        "new_start": {"volume_m3": 0.5},
                        "new_meter": "WM-B",
                    }
                ],
            },
            {"device": "em-1", "meter": "E-1", "tags": {"site": "south"}},
        ]
    }
)


def minutes(moment: datetime) -> float:
    return (moment - T0).total_seconds() / 60


def hourly(device: str, hours: int, start_value: float, **kw: object) -> list:
    out = []
    for h in range(hours):
        moment = START + timedelta(hours=h)
        out.append(
            record(device, minutes(moment), {"volume_m3": start_value + h}, medium="water",
                   key=f"{device}-{h}", **kw)  # type: ignore[arg-type]
        )  # fmt: skip
    return out


@pytest.fixture
def client(store_url: str, spool_path: Path) -> Iterator[TestClient]:
    store = open_store(store_url, spool_path=spool_path)
    records = hourly("wm-1", 24 * 6, 1000.0, meter="WM-OLD")
    # wm-2: old meter up to the exchange at 12:00 on 30 March, new meter from 0.5 after it.
    for h in range(24 * 6):
        moment = START + timedelta(hours=h, minutes=30)
        value = (
            5000.0 + h if moment < EXCHANGE else 0.5 + (moment - EXCHANGE).total_seconds() / 3600
        )
        records.append(record("wm-2", minutes(moment), {"volume_m3": value}, medium="water",
                              key=f"wm-2-{h}"))  # fmt: skip
    # em-1 reports its set-day register at local midnight of 1 April in its own history.
    key_date = datetime(2026, 4, 1, tzinfo=BERLIN)
    records.append(
        record("em-1", minutes(key_date + timedelta(hours=3)), {"energy_import_kwh": 7003.0},
               key="em-1-a", extra_readings=(Reading({"energy_import_kwh": 7000.0}, key_date),))
    )  # fmt: skip
    records.append(record("em-1", minutes(key_date + timedelta(days=1)),
                          {"energy_import_kwh": 7030.0}, key="em-1-b"))  # fmt: skip
    store.write_uplinks(records)
    app = create_app(store, meters=REGISTRY.meter_configs(), timezone="Europe/Berlin")
    with TestClient(app) as test_client:
        yield test_client
    store.close()


def test_daily_consumption_honours_the_dst_day(client: TestClient) -> None:
    answer = client.get(
        "/api/v1/devices/wm-1/consumption",
        params={"from": "2026-03-28", "to": "2026-03-31", "interval": "day"},
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["device"], body["meter"], body["field"], body["unit"]) == (
        "wm-1", "WM-OLD", "volume_m3", "m3",
    )  # fmt: skip
    assert (body["interval"], body["tz"]) == ("day", "Europe/Berlin")
    items = body["items"]
    assert [i["start"] for i in items] == [
        "2026-03-28T00:00:00+01:00",
        "2026-03-29T00:00:00+01:00",
        "2026-03-30T00:00:00+02:00",
    ]
    assert items[1]["end"] == "2026-03-30T00:00:00+02:00"
    assert [i["consumption"] for i in items] == [24.0, 23.0, 24.0]  # the spring day: 23 h
    assert [i["status"] for i in items] == ["measured"] * 3
    assert items[0]["start_reading"] == 1024.0 and items[0]["end_reading"] == 1048.0
    assert items[0]["end_reading"] == items[1]["start_reading"]
    assert body["total"] == 71.0


def test_hourly_intervals_in_another_zone(client: TestClient) -> None:
    body = client.get(
        "/api/v1/devices/wm-1/consumption",
        params={"from": "2026-03-28T10:00:00Z", "to": "2026-03-28T13:00:00Z",
                "interval": "hour", "tz": "UTC"},
    ).json()  # fmt: skip
    assert [i["start"] for i in body["items"]] == [
        "2026-03-28T10:00:00+00:00", "2026-03-28T11:00:00+00:00", "2026-03-28T12:00:00+00:00",
    ]  # fmt: skip
    assert [i["consumption"] for i in body["items"]] == [1.0, 1.0, 1.0]


def test_bounds_past_the_readings_are_incomplete(client: TestClient) -> None:
    body = client.get(
        "/api/v1/devices/wm-1/consumption",
        params={"from": "2026-04-01", "to": "2026-04-03", "interval": "day"},
    ).json()
    assert [i["status"] for i in body["items"]] == ["measured", "incomplete"]
    assert body["items"][1]["consumption"] is None
    assert body["total"] is None


def test_csv_by_accept_header_and_by_format(client: TestClient) -> None:
    params = {"from": "2026-03-28", "to": "2026-03-30", "interval": "day"}
    by_header = client.get(
        "/api/v1/devices/wm-1/consumption", params=params, headers={"Accept": "text/csv"}
    )
    by_format = client.get("/api/v1/devices/wm-1/consumption", params={**params, "format": "csv"})
    assert by_header.headers["content-type"].startswith("text/csv")
    assert by_header.text == by_format.text
    rows = list(csv.DictReader(io.StringIO(by_header.text)))
    assert [(r["start"], r["consumption"], r["status"]) for r in rows] == [
        ("2026-03-28T00:00:00+01:00", "24.0", "measured"),
        ("2026-03-29T00:00:00+01:00", "23.0", "measured"),
    ]


def test_consumption_across_a_meter_exchange(client: TestClient) -> None:
    body = client.get(
        "/api/v1/devices/wm-2/consumption",
        params={"from": "2026-03-30", "to": "2026-03-31", "interval": "day"},
    ).json()
    (day,) = body["items"]
    # 00:00 → 12:00 on the old meter (11.5 h of readings + up to 5084) and 12 h on the new one.
    old_at_midnight = 5000.0 + 70 + 0.5  # readings at :30, 1 m³/h; 70.5 h after the 27th
    assert day["consumption"] == pytest.approx((5084.0 - old_at_midnight) + 12.0)
    assert [e["kind"] for e in day["events"]] == ["exchange"]
    assert day["start_reading"] == pytest.approx(old_at_midnight)
    assert day["end_reading"] == pytest.approx(12.5)  # the new meter's register


def test_register_at_a_key_date(client: TestClient) -> None:
    answer = client.get("/api/v1/devices/wm-1/register", params={"at": "2026-03-30"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["field"], body["unit"], body["status"]) == ("volume_m3", "m3", "measured")
    assert body["at"] == "2026-03-30T00:00:00+02:00"
    assert body["value"] == 1000.0 + 24 * 3 - 1  # 71 h after the 27th's midnight (23 h day)
    assert [r["value"] for r in body["from"]] == [1071.0]
    between = client.get(
        "/api/v1/devices/wm-2/register", params={"at": "2026-03-29T01:00:00+01:00"}
    ).json()
    assert between["status"] == "measured" and between["value"] == pytest.approx(5048.5)
    assert len(between["from"]) == 2


def test_a_meters_own_key_date_register_is_used_and_marked(client: TestClient) -> None:
    body = client.get("/api/v1/devices/em-1/register", params={"at": "2026-04-01"}).json()
    assert (body["field"], body["value"], body["status"]) == (
        "energy_import_kwh", 7000.0, "meter_key_date",
    )  # fmt: skip


def test_no_extrapolation_past_the_last_reading(client: TestClient) -> None:
    answer = client.get("/api/v1/devices/wm-1/register", params={"at": "2027-01-01"})
    assert answer.status_code == 404
    assert "after the last reading" in answer.json()["detail"]
    early = client.get("/api/v1/devices/wm-1/register", params={"at": "2026-03-26"})
    assert early.status_code == 404 and "before the first" in early.json()["detail"]
    far = client.get("/api/v1/devices/wm-1/register", params={"at": "2020-01-01"})
    assert far.status_code == 404 and "never extrapolated" in far.json()["detail"]


def test_the_fleet_as_json_and_csv(client: TestClient) -> None:
    params = {"from": "2026-03-28", "to": "2026-03-29", "interval": "day"}
    body = client.get("/api/v1/consumption", params=params).json()
    assert body["tz"] == "Europe/Berlin"
    by_device = {d["device"]: d for d in body["devices"]}
    assert set(by_device) == {"wm-1", "wm-2", "em-1"}
    assert by_device["wm-1"]["items"][0]["consumption"] == 24.0
    assert by_device["em-1"]["items"][0]["status"] == "incomplete"
    water = client.get("/api/v1/consumption", params={**params, "medium": "water"}).json()
    assert sorted(d["device"] for d in water["devices"]) == ["wm-1", "wm-2"]
    north = client.get("/api/v1/consumption", params={**params, "site": "north"}).json()
    assert sorted(d["device"] for d in north["devices"]) == ["wm-1", "wm-2"]
    table = client.get("/api/v1/consumption", params={**params, "format": "csv"}).text
    rows = list(csv.DictReader(io.StringIO(table)))
    assert sorted(r["device"] for r in rows) == ["em-1", "wm-1", "wm-2"]
    assert {r["field"] for r in rows} == {"volume_m3", "energy_import_kwh"}


@pytest.mark.parametrize(
    ("path", "params", "status", "reason"),
    [
        ("wm-1/consumption", {"interval": "week"}, 422, "interval must be one of"),
        ("wm-1/consumption", {"tz": "Mars/Olympus"}, 422, "unknown time zone"),
        ("wm-1/consumption", {"field": "power_w"}, 422, "is not a register"),
        ("wm-1/consumption", {"from": "2026-03-30", "to": "2026-03-29"}, 422, "must be before"),
        ("wm-1/consumption", {"from": "0001-01-01T00:00:00+01:00"}, 422, "between 1678"),
        ("wm-1/consumption", {"from": "yesterday"}, 422, "RFC 3339"),
        ("nobody/consumption", {}, 404, "not found"),
        ("wm-1/register", {"at": "2026-13-01"}, 422, "RFC 3339"),
        ("nobody/register", {"at": "2026-03-30"}, 404, "not found"),
    ],
)
def test_bad_requests_say_why(
    client: TestClient, path: str, params: dict[str, str], status: int, reason: str
) -> None:
    answer = client.get(f"/api/v1/devices/{path}", params=params)
    assert answer.status_code == status, answer.text
    assert reason in answer.json()["detail"]


def test_default_window_is_said_in_the_answer(client: TestClient) -> None:
    body = client.get("/api/v1/devices/wm-1/consumption", params={"interval": "month"}).json()
    now = datetime.now(UTC)
    assert datetime.fromisoformat(body["to"]) <= now
    assert now - datetime.fromisoformat(body["from"]) > timedelta(days=360)
    assert len(body["items"]) in (13, 14)
