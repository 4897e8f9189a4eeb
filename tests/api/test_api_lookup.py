"""Finding devices and paging readings as a person does: by DevEUI or meter, filters, dates."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient


@pytest.mark.parametrize("key", ["esi-1", "0004A30B00F1C0DE", "00-04-a3-0b-00-f1-c0-de", "E-1"])
def test_a_device_by_id_deveui_or_meter_number(client: TestClient, key: str) -> None:
    device = client.get(f"/api/v1/devices/{key}")
    assert device.status_code == 200, device.text
    assert device.json()["device"] == "esi-1"
    readings = client.get(f"/api/v1/devices/{key}/readings", params={"from": "2025-11-20"})
    assert readings.json()["device"] == "esi-1"
    assert len(readings.json()["readings"]) == 8


@pytest.mark.parametrize(
    ("params", "found"),
    [
        ({}, ["esi-1"]),
        ({"medium": "electricity"}, ["esi-1"]),
        ({"medium": "water"}, []),
        ({"site": "a"}, ["esi-1"]),
        ({"site": "b"}, []),
        ({"q": "ESI"}, ["esi-1"]),
        ({"q": "e-1"}, ["esi-1"]),
        ({"q": "f1c0de"}, ["esi-1"]),
        ({"q": "elv_lw"}, ["esi-1"]),
        ({"q": "nothing"}, []),
        ({"medium": "electricity", "site": "a", "q": "esi"}, ["esi-1"]),
    ],
)
def test_device_filters(client: TestClient, params: dict[str, str], found: list[str]) -> None:
    response = client.get("/api/v1/devices", params=params)
    assert response.status_code == 200
    assert [d["device"] for d in response.json()] == found


def test_device_tags_are_shown_and_a_bad_medium_is_422(client: TestClient) -> None:
    assert client.get("/api/v1/devices/esi-1").json()["tags"] == {"site": "a"}
    bad = client.get("/api/v1/devices", params={"medium": "steam"})
    assert bad.status_code == 422 and "unknown medium" in bad.json()["detail"]


def test_a_date_means_local_midnight_and_the_window_is_said(client: TestClient) -> None:
    body = client.get(
        "/api/v1/devices/esi-1/readings", params={"from": "2025-11-20", "to": "2025-11-21"}
    ).json()
    # Europe/Berlin is UTC+1 in November: local midnight is 23:00 UTC the day before.
    assert body["from"] == "2025-11-19T23:00:00Z"
    assert body["to"] == "2025-11-20T23:00:00Z"
    assert body["timezone"] == "Europe/Berlin"
    assert len(body["readings"]) == 8
    early = client.get(
        "/api/v1/devices/esi-1/readings", params={"from": "2025-11-19", "to": "2025-11-20"}
    ).json()
    assert early["readings"] == []


def test_readings_page_with_a_cursor_until_the_end(client: TestClient) -> None:
    params = {"from": "2025-11-20", "to": "2025-11-21", "limit": "3"}
    times: list[str] = []
    pages = 0
    cursor = None
    while True:
        page = client.get(
            "/api/v1/devices/esi-1/readings",
            params={**params, **({"cursor": cursor} if cursor else {})},
        ).json()
        pages += 1
        times += [r["time"] for r in page["readings"]]
        cursor = page["next_cursor"]
        assert page["truncated"] == (cursor is not None)
        if cursor is None:
            break
    assert pages == 3
    assert len(times) == 8 and times == sorted(set(times))
    assert times[0] == "2025-11-20T10:00:00Z" and times[-1] == "2025-11-20T11:45:00Z"
