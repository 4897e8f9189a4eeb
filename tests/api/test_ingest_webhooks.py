"""Webhooks (POST /api/v1/ingest/{tts,chirpstack}) over HTTP into a real store of each backend:
answered 2xx only once durably kept, duplicates stored once, bad bodies kept as dead letters,
and the shared secret."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.deps import ApiOptions
from api.main import create_app
from ingest.devices import parse_registry
from ingest.pipeline import Pipeline
from ingest.webhook import WebhookReceiver
from ingest.writer import Writer
from storage import Store, open_store
from tests.helpers import chirpstack_up, tts_up

pytestmark = pytest.mark.integration

ESI = bytes.fromhex("03010BB8010101A0860100000010270000")  # 10 kWh, 100 W
REGISTRY = parse_registry({"devices": [{"dev_eui": "a84041ffff1c0042", "decoder": "elv_lw_esi"}]})
SECRET = "s3cr3t-for-webhooks"
HEADER = {"X-Lorameter-Webhook-Secret": SECRET}


@dataclass
class Setup:
    client: TestClient
    store: Store
    writer: Writer


@pytest.fixture
def make(store_url: str, spool_path: Path) -> Iterator[object]:
    opened: list[tuple[TestClient, Writer]] = []
    store = open_store(store_url, spool_path=spool_path)

    def build(*, start: bool = True, timeout_s: float = 10.0, **options: object) -> Setup:
        writer = Writer(store)
        if start:
            writer.start()
        receiver = WebhookReceiver(Pipeline(REGISTRY), writer, timeout_s=timeout_s)
        app = create_app(store, None, ApiOptions(**options), ingestor=receiver)  # type: ignore[arg-type]
        client = TestClient(app)
        opened.append((client, writer))
        return Setup(client, store, writer)

    yield build
    for client, writer in opened:
        client.close()
        writer.stop(timeout=2)
    store.close()


def uplinks(store: Store) -> int:
    if hasattr(store, "flush"):
        store.flush()
    return len(store.raw_uplinks())


def tts_body(f_cnt: int = 1) -> bytes:
    return tts_up("esi-9", ESI, f_port=10, brand="elv", model="elv-lw-esi", f_cnt=f_cnt)


def test_tts_uplink_stored_once_however_often_it_is_posted(make) -> None:
    s = make(webhook_secret=SECRET)
    for _ in range(2):
        answer = s.client.post("/api/v1/ingest/tts", content=tts_body(), headers=HEADER)
        assert (answer.status_code, answer.json()) == (200, {"status": "stored"})
    assert uplinks(s.store) == 1  # answered only once stored: no waiting needed here
    stats = s.writer.stats.snapshot()
    assert (stats["accepted"], stats["duplicates"]) == (1, 1)
    device = s.store.device("esi-9")
    assert device is not None and device.last_reading["energy_import_kwh"] == pytest.approx(10)


def test_chirpstack_up_is_stored_and_other_events_ignored(make) -> None:
    s = make(webhook_secret=SECRET)
    body = chirpstack_up("a84041ffff1c0042", ESI)
    answer = s.client.post("/api/v1/ingest/chirpstack?event=up", content=body, headers=HEADER)
    assert (answer.status_code, answer.json()) == (200, {"status": "stored"})
    join = b'{"deviceInfo": {"devEui": "a84041ffff1c0042"}, "devAddr": "00aabbcc"}'
    answer = s.client.post("/api/v1/ingest/chirpstack?event=join", content=join, headers=HEADER)
    assert answer.status_code == 200 and answer.json()["status"] == "ignored"
    assert uplinks(s.store) == 1 and s.store.dead_letters() == []
    missing = s.client.post("/api/v1/ingest/chirpstack", content=body, headers=HEADER)
    assert missing.status_code == 422  # ChirpStack always says which event it posts


def test_bad_bodies_are_dead_letters_with_their_bytes(make) -> None:
    s = make(webhook_secret=SECRET)
    answer = s.client.post("/api/v1/ingest/tts", content=b"{not json", headers=HEADER)
    assert answer.status_code == 202
    assert answer.json()["status"] == "dead_letter" and answer.json()["reason"] == "not_json"
    unknown = tts_up("nobody", ESI, f_port=10)  # no version_ids, not in the registry
    answer = s.client.post("/api/v1/ingest/tts", content=unknown, headers=HEADER)
    assert (answer.status_code, answer.json()["reason"]) == (202, "unknown_device")
    letters = s.store.dead_letters()
    assert {d.raw for d in letters} == {b"{not json", unknown}
    assert {d.topic for d in letters} == {"webhook/tts"}
    assert uplinks(s.store) == 0


def test_secret_is_required_and_checked(make) -> None:
    s = make(webhook_secret=SECRET)
    name = "X-Lorameter-Webhook-Secret"
    for headers in ({}, {name: "wrong"}, {name: ""}, {name: SECRET[:-1]}):
        answer = s.client.post("/api/v1/ingest/tts", content=tts_body(), headers=headers)
        assert answer.status_code == 401
        assert "LORAMETER_WEBHOOK_SECRET" in answer.json()["detail"]
        assert SECRET not in answer.text
    assert uplinks(s.store) == 0
    closed = make(open_without_keys=False)  # listening beyond loopback without a secret
    answer = closed.client.post("/api/v1/ingest/tts", content=tts_body())
    assert answer.status_code == 403 and "LORAMETER_WEBHOOK_SECRET" in answer.json()["detail"]
    local = make()  # loopback only, no secret: open, as the rest of the API
    assert local.client.post("/api/v1/ingest/tts", content=tts_body(2)).status_code == 200


def test_no_2xx_before_the_uplink_is_stored(make) -> None:
    s = make(start=False, timeout_s=0.5)  # the writer never writes
    answer = s.client.post("/api/v1/ingest/tts", content=tts_body())
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "10"
    assert uplinks(s.store) == 0


def test_a_process_without_ingest_says_where_to_send(store_url: str, spool_path: Path) -> None:
    store = open_store(store_url, spool_path=spool_path)
    with TestClient(create_app(store)) as client:
        answer = client.post("/api/v1/ingest/tts", content=tts_body())
    store.close()
    assert answer.status_code == 503 and "lorameter run" in answer.json()["detail"]
