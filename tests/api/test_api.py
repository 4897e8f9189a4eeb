"""The HTTP API over a real store of each backend (a SQLite file, an InfluxDB database)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import esi


def test_health(client: TestClient) -> None:
    body = client.get("/health").json()
    assert body["status"] == "ok"
    assert body["store"]["uplinks"] == 8
    assert body["store"]["dead_letters"] == {"not_json": 1}
    assert body["ingest"] is None  # no ingest in this process


def test_devices_list_and_one(client: TestClient) -> None:
    devices = client.get("/api/v1/devices").json()
    assert [d["device"] for d in devices] == ["esi-1"]
    device = client.get("/api/v1/devices/esi-1").json()
    assert device["meter"] == "E-1" and device["decoder"] == "elv_lw_esi"
    assert device["medium"] == "electricity"
    assert device["uplinks"] == 8
    assert device["last_f_cnt"] == 8
    assert device["last_reading"]["values"] == {"energy_import_kwh": 1007.0, "power_w": 507.0}
    assert device["last_reading"]["time"] == "2025-11-20T11:45:00Z"
    assert device["rssi_dbm"] == -97 and device["snr_db"] == 7.25


def test_unknown_device_is_404_with_a_hint(client: TestClient) -> None:
    for path in ("/api/v1/devices/nope", "/api/v1/devices/nope/readings"):
        response = client.get(path)
        assert response.status_code == 404
        assert "GET /api/v1/devices" in response.json()["detail"]


def test_readings_window_and_fields(client: TestClient) -> None:
    response = client.get(
        "/api/v1/devices/esi-1/readings",
        params={"from": "2025-11-20T10:15:00Z", "to": "2025-11-20T11:00:00Z"},
    )
    body = response.json()
    assert [r["time"] for r in body["readings"]] == [
        "2025-11-20T10:15:00Z",
        "2025-11-20T10:30:00Z",
        "2025-11-20T10:45:00Z",
    ]
    assert body["readings"][0]["values"] == {"energy_import_kwh": 1001.0, "power_w": 501.0}
    assert body["from"] == "2025-11-20T10:15:00Z"
    units = {f["name"]: (f["unit"], f["kind"]) for f in body["fields"]}
    assert units == {"energy_import_kwh": ("kWh", "counter"), "power_w": ("W", "gauge")}
    only = client.get(
        "/api/v1/devices/esi-1/readings",
        params={"from": "2025-11-20T00:00:00Z", "to": "2025-11-21T00:00:00Z", "field": "power_w"},
    ).json()
    assert [r["values"] for r in only["readings"]][-1] == {"power_w": 507.0}
    assert len(only["readings"]) == 8 and not only["truncated"]


def test_readings_limit_says_truncated(client: TestClient) -> None:
    body = client.get(
        "/api/v1/devices/esi-1/readings",
        params={"from": "2025-11-20T00:00:00Z", "to": "2025-11-21T00:00:00Z", "limit": 3},
    ).json()
    assert len(body["readings"]) == 3 and body["truncated"]


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"from": "yesterday"}, "'from': 'yesterday' is not an RFC 3339 time"),
        ({"from": "2025-11-21T00:00:00Z", "to": "2025-11-20T00:00:00Z"}, "before"),
        ({"from": "2025-11-20T00:00:00"}, "with an offset"),
        ({"field": "energy_kwh_typo"}, "unknown field"),
        ({"field": 'power_w" OR 1=1 --'}, "unknown field"),
        ({"limit": 0}, "greater than"),
    ],
)
def test_bad_readings_parameters_are_422(
    client: TestClient, params: dict[str, str], words: str
) -> None:
    response = client.get("/api/v1/devices/esi-1/readings", params=params)
    assert response.status_code == 422
    assert words in str(response.json()["detail"])


def test_decoders_listed_with_units(client: TestClient) -> None:
    decoders = {d["id"]: d for d in client.get("/api/v1/decoders").json()}
    assert "elv_lw_esi" in decoders and "elvaco_cmi4110" in decoders
    fields = {f["name"]: f for f in decoders["elv_lw_esi"]["fields"]}
    assert fields["energy_import_kwh"]["unit"] == "kWh"
    assert fields["energy_import_kwh"]["kind"] == "counter"


def test_decode_endpoint(client: TestClient) -> None:
    ok = client.post(
        "/api/v1/decode",
        json={"decoder": "elv_lw_esi", "f_port": 10, "payload_hex": esi(12.5, -300).hex()},
    )
    assert ok.status_code == 200
    assert ok.json()["readings"] == [{"time": None, "energy_import_kwh": 12.5, "power_w": -300.0}]
    bad = client.post(
        "/api/v1/decode", json={"decoder": "elv_lw_esi", "f_port": 10, "payload_base64": "AwE="}
    )
    assert bad.status_code == 422
    assert "offset" in bad.json()["detail"] and bad.json()["detail"]["error"]
    unknown = client.post("/api/v1/decode", json={"decoder": "x", "f_port": 1, "payload_hex": "00"})
    assert unknown.status_code == 404
    both = client.post(
        "/api/v1/decode",
        json={"decoder": "elv_lw_esi", "f_port": 1, "payload_hex": "00", "payload_base64": "AA=="},
    )
    assert both.status_code == 422


def test_dead_letters_keep_raw_message(client: TestClient) -> None:
    letters = client.get("/api/v1/dead-letters").json()
    assert letters[0]["reason"] == "not_json"
    assert letters[0]["raw_base64"] == "Z2FyYmFnZQ=="


def test_openapi_documents_the_routes(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/health", "/api/v1/devices", "/api/v1/devices/{device_id}/readings",
                 "/api/v1/decoders", "/api/v1/decode"):  # fmt: skip
        assert path in paths
