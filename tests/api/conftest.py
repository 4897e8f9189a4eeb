"""The API over a real store of each backend, filled with one device's uplinks and a dead letter."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from ingest.devices import parse_registry
from ingest.pipeline import Accepted, Pipeline, Rejected
from storage import open_store
from tests.helpers import tts_up

T0 = datetime(2025, 11, 20, 10, 0, tzinfo=UTC)
REGISTRY = parse_registry(
    {
        "devices": [
            {"device": "esi-1", "decoder": "elv_lw_esi", "meter": "E-1", "tags": {"site": "a"}}
        ]
    }
)


def esi(kwh: float, watts: float) -> bytes:
    counter = round(kwh * 10_000).to_bytes(5, "little")
    power = round(abs(watts) * 100).to_bytes(4, "little")
    sign = 0x04 if watts < 0 else 0x00
    return bytes.fromhex("03010BB8") + b"\x01\x01\x01" + counter + bytes([sign]) + power


@pytest.fixture
def client(store_url: str, spool_path: Path) -> Iterator[TestClient]:
    store = open_store(store_url, spool_path=spool_path)
    pipeline = Pipeline(REGISTRY)
    records, letters = [], []
    for i in range(8):
        when = (T0 + timedelta(minutes=15 * i)).isoformat().replace("+00:00", "Z")
        message = tts_up("esi-1", esi(1000 + i, 500 + i), f_port=10, f_cnt=i + 1, received_at=when)
        out = pipeline.process("t", message, T0)
        assert isinstance(out, Accepted)
        records.append(out.record)
    bad = pipeline.process("v3/x/devices/y/up", b"garbage", T0)
    assert isinstance(bad, Rejected)
    letters.append(bad.letter)
    store.write_uplinks(records)
    store.write_dead_letters(letters)
    if hasattr(store, "flush"):
        store.flush()
    with TestClient(create_app(store)) as test_client:
        yield test_client
    store.close()
