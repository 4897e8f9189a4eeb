"""GET /api/v1/devices?unregistered=true over a real store of each backend: the wireless M-Bus
meters bridges heard that the registry does not list, filled by the pipeline's own records."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.deps import ApiOptions
from api.main import create_app
from ingest.devices import parse_registry
from ingest.pipeline import Accepted, Pipeline
from storage import Store, open_store
from tests.helpers import tts_up

KAMSTRUP = (  # AES mode 5 (key 000102..0F), 12.345 m³: decoders/devices/wmbus_bridge.py
    "2E442D2C785634121B167A2B002005DD336913BCB1302F244F3659210A4DACC4E68A3064E0533242BE21BF5A7A24B9"
)
SENSUS = "1844AE4C4455223368077A55000000041389E20100023B0000"  # plain, 123.529 m³
BRIDGES = [
    {"device": "bridge-n", "decoder": "wmbus_bridge", "tags": {"site": "nord"}},
    {"device": "bridge-s", "decoder": "wmbus_bridge", "tags": {"site": "sued"}},
]
EUI = {"bridge-n": "70B3D57ED0000A01", "bridge-s": "70B3D57ED0000A02"}
LOCAL_CLOCK = datetime(2030, 1, 1, tzinfo=UTC)  # must appear nowhere in what is stored
KAM_ENTRY = {"device": "wm-0815", "wmbus": "KAM-12345678-1B-16", "medium": "water"}


@pytest.fixture
def store(store_url: str, spool_path: Path) -> Iterator[Store]:
    opened = open_store(store_url, spool_path=spool_path)
    pipeline = Pipeline(parse_registry({"devices": BRIDGES}))
    uplinks = [
        ("bridge-n", 1, "2025-11-20T10:00:00Z", KAMSTRUP + SENSUS),
        ("bridge-n", 2, "2025-11-20T10:15:00Z", KAMSTRUP),
        ("bridge-s", 1, "2025-11-20T10:05:00Z", SENSUS),
    ]
    records = []
    for device, f_cnt, when, payload in uplinks:
        message = tts_up(
            device,
            bytes.fromhex(payload),
            f_port=1,
            f_cnt=f_cnt,
            received_at=when,
            dev_eui=EUI[device],  # each bridge its own: the registry finds devices by DevEUI first
        )
        out = pipeline.process("t", message, LOCAL_CLOCK)
        assert isinstance(out, Accepted), out
        records.append(out.record)
    opened.write_uplinks(records)
    yield opened
    opened.close()


def client(store: Store, *entries: Mapping[str, object]) -> TestClient:
    registry = parse_registry({"devices": [*BRIDGES, *entries]})
    return TestClient(create_app(store, options=ApiOptions(meters=registry.meter_configs())))


def test_unregistered_meters_are_listed_per_bridge(store: Store) -> None:
    response = client(store).get("/api/v1/devices?unregistered=true")
    assert response.status_code == 200, response.text
    found = response.json()
    assert [(m["meter"], m["bridge"], m["uplinks"]) for m in found] == [
        ("KAM-12345678-1B-16", "bridge-n", 2),
        ("SEN-33225544-68-07", "bridge-n", 1),
        ("SEN-33225544-68-07", "bridge-s", 1),
    ]
    kam = found[0]
    assert kam["first_seen"] == "2025-11-20T10:00:00Z"  # network server time, not the clock
    assert kam["last_seen"] == "2025-11-20T10:15:00Z"
    assert "no aes_key" in kam["last_error"]
    assert {k: kam[k] for k in ("manufacturer", "identification", "version", "medium")} == {
        "manufacturer": "KAM",
        "identification": "12345678",
        "version": 0x1B,
        "medium": "water",
    }
    assert (kam["device_type"], kam["device_type_name"]) == (0x16, "cold water")
    assert found[1]["last_error"] == ""  # a plain telegram was read
    devices = client(store).get("/api/v1/devices").json()
    assert [d["device"] for d in devices] == ["bridge-n", "bridge-s"]  # the plain list as before


def test_a_meter_the_registry_lists_now_is_no_longer_unregistered(store: Store) -> None:
    found = client(store, KAM_ENTRY).get("/api/v1/devices?unregistered=true").json()
    assert [m["meter"] for m in found] == ["SEN-33225544-68-07"] * 2


def test_unregistered_meters_filter_by_site_text_and_medium(store: Store) -> None:
    api = client(store)

    def meters(query: str) -> list[tuple[str, str]]:
        response = api.get(f"/api/v1/devices?unregistered=true&{query}")
        assert response.status_code == 200, response.text
        return [(m["meter"], m["bridge"]) for m in response.json()]

    assert meters("site=sued") == [("SEN-33225544-68-07", "bridge-s")]
    assert meters("q=kam-1234") == [("KAM-12345678-1B-16", "bridge-n")]
    assert meters("medium=heat") == []
    assert len(meters("medium=water")) == 3
    assert api.get("/api/v1/devices?unregistered=maybe").status_code == 422
