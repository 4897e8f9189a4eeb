"""What a client may send: bounded bodies and decodes, and a 4xx with a reason for bad input."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from api.deps import ApiOptions
from api.main import create_app
from storage.sqlite import SQLiteStore
from tests.api.conftest import esi


@pytest.fixture
def small(tmp_path: Path) -> Iterator[TestClient]:
    """An API with a 4 KiB body limit over an empty SQLite store."""
    store = SQLiteStore(tmp_path / "x.db")
    options = ApiOptions(timezone=ZoneInfo("Europe/Berlin"), max_body_bytes=4096)
    with TestClient(create_app(store, None, options)) as client:
        yield client
    store.close()


def test_a_body_over_the_limit_is_413_before_it_is_read(small: TestClient) -> None:
    big = {"decoder": "elv_lw_esi", "f_port": 10, "payload_hex": "00" * 5000}
    response = small.post("/api/v1/decode", json=big)
    assert response.status_code == 413
    assert "larger than 4096 bytes" in response.json()["detail"]


def test_a_chunked_body_over_the_limit_is_413(small: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"decoder": "elv_lw_esi", "f_port": 10, "payload_hex": "'
        for _ in range(100):
            yield b"00" * 100
        yield b'"}'

    response = small.post(
        "/api/v1/decode", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert "LORAMETER_API_MAX_BODY_BYTES" in response.json()["detail"]


def test_a_body_under_the_limit_is_decoded(small: TestClient) -> None:
    body = {"decoder": "elv_lw_esi", "f_port": 10, "payload_hex": esi(1, 2).hex()}
    assert small.post("/api/v1/decode", json=body).status_code == 200


def test_a_payload_longer_than_lorawan_allows_is_422(client: TestClient) -> None:
    body = {"decoder": "elv_lw_esi", "f_port": 10, "payload_hex": "00" * 256}
    response = client.post("/api/v1/decode", json=body)
    assert response.status_code == 422
    assert "at most 255" in response.json()["detail"]["error"]


def test_a_decoder_crash_is_422_not_500(client: TestClient) -> None:
    # A medium that is a list once crashed milesight_em300_di (TypeError); declared params
    # now refuse it first. Either way the caller gets a 422 with the reason, never a 500.
    body = {
        "decoder": "milesight_em300_di",
        "f_port": 85,
        "payload_hex": "0175 5C 0367 0E01 05 C8 39300000",
        "params": {"medium": [1]},
    }
    response = client.post("/api/v1/decode", json=body)
    assert response.status_code == 422
    error = response.json()["detail"]["error"]
    assert "milesight_em300_di" in error or "param medium must be str" in error


def test_a_decode_over_its_time_budget_is_422(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "x.db")
    options = ApiOptions(decode_timeout_s=1e-9)
    with TestClient(create_app(store, None, options)) as client:
        body = {"decoder": "elv_lw_esi", "f_port": 10, "payload_hex": esi(1, 2).hex()}
        response = client.post("/api/v1/decode", json=body)
    store.close()
    assert response.status_code == 422
    assert "took longer than" in response.json()["detail"]["error"]


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"from": "0001-01-01T00:00:00Z"}, "outside the storable range"),
        ({"to": "9999-12-31T00:00:00Z"}, "outside the storable range"),
        ({"from": "0001-01-01T00:00:00+01:00"}, "is not an RFC 3339 time"),
        ({"to": "2025-02-30"}, "is not an RFC 3339 time"),
        ({"cursor": "abc"}, "cursor"),
        ({"cursor": "1"}, "cursor"),
        ({"limitt": "5"}, "unknown query parameter(s) limitt"),
    ],
)
def test_bad_times_cursors_and_typos_are_422(
    client: TestClient, params: dict[str, str], words: str
) -> None:
    response = client.get("/api/v1/devices/esi-1/readings", params=params)
    assert response.status_code == 422, response.text
    assert words in response.json()["detail"]


@pytest.mark.parametrize("device", ["esi\r\n1", "esi\x001", "a" * 300])
def test_device_ids_with_control_characters_are_422(client: TestClient, device: str) -> None:
    for path in ("", "/readings"):
        response = client.get(f"/api/v1/devices/{quote(device, safe='')}{path}")
        assert response.status_code == 422, response.text
        assert "device id" in response.json()["detail"]


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/devices?mediun=water",
        "/api/v1/devices/esi-1?x=1",
        "/api/v1/decoders?verbose=1",
        "/api/v1/dead-letters?limt=3",
        "/health?deep=1",
    ],
)
def test_unknown_query_parameters_are_422_on_every_route(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 422
    assert "unknown query parameter" in response.json()["detail"]
