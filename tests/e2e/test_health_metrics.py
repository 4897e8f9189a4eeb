"""/health tells the truth and /metrics counts, with a real ingest service on real mosquitto
(issue 8): 503 with a reason for a dead MQTT or writer thread, failing writes, a queue that
does not drain, a stalled MQTT thread; Prometheus text with ingest, decode and write figures."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.main import create_app
from ingest.service import IngestService
from storage.sqlite import SQLiteStore
from tests.e2e.conftest import Publisher
from tests.helpers import tts_up
from tests.services import fill_disk, small_disk

pytestmark = pytest.mark.integration

ESI = bytes.fromhex("03010BB8010101A0860100000010270000")
TOPIC = "v3/meters@ttn/devices/esi-9/up"


def esi(f_cnt: int) -> bytes:
    return tts_up("esi-9", ESI, f_port=10, brand="elv", model="elv-lw-esi", dev_eui="",
                  f_cnt=f_cnt)  # fmt: skip


def wait(check: Callable[[], bool], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def service_factory(mosquitto) -> Iterator[Callable[..., tuple[IngestService, TestClient]]]:
    made: list[tuple[IngestService, SQLiteStore]] = []

    def make(path: Path, **kw: object) -> tuple[IngestService, TestClient]:
        store = SQLiteStore(path)
        kw.setdefault("topics", ["v3/+/devices/+/up"])
        service = IngestService(
            store, mqtt_url=mosquitto.url, client_id=f"test-{time.monotonic_ns()}",
            **kw,  # type: ignore[arg-type]
        )  # fmt: skip
        service.start()
        made.append((service, store))
        assert service.mqtt.wait_connected(10)
        return service, TestClient(create_app(store, service))

    yield make
    for service, store in made:
        service.stop(timeout=3)
        store.close()


def problems(client: TestClient, status: int) -> list[str]:
    response = client.get("/health")
    assert response.status_code == status, response.json()["problems"]
    found: list[str] = response.json()["problems"]
    return found


def test_health_is_503_when_a_thread_is_dead(service_factory, tmp_path: Path) -> None:
    service, client = service_factory(tmp_path / "a.db")
    assert problems(client, 200) == []
    service.writer.stop(2)
    assert any("writer thread is not running" in p for p in problems(client, 503))

    service, client = service_factory(tmp_path / "b.db")
    service.mqtt.stop(2)
    assert any("mqtt: the network thread is not running" in p for p in problems(client, 503))


def test_health_is_503_when_writes_fail_and_the_queue_stalls(
    service_factory, tmp_path: Path
) -> None:
    with small_disk(tmp_path / "disk") as disk:
        service, client = service_factory(disk / "x.db", qos=0, max_queue=5, stall_after_s=1.0)
        publisher = Publisher(service.mqtt.address.port)
        try:
            filler = fill_disk(disk)
            for n in range(12):
                publisher.send(TOPIC, esi(n + 1))
            wait(lambda: service.writer.full, "a full writer queue")
            time.sleep(1.5)
            body = client.get("/health").json()
            found = problems(client, 503)
            assert any("store writes have been failing" in p and "full" in p for p in found)
            assert any("queue is not draining" in p for p in found)
            assert any("mqtt: stalled" in p for p in found)
            assert body["ingest"]["store_errors"] >= 1
            assert body["ingest"]["oldest_unwritten_age_s"] > 1
            filler.unlink()  # room again: everything drains, /health is green again
            wait(lambda: service.stats.snapshot()["accepted"] == 12, "the backlog stored")
            assert problems(client, 200) == []
        finally:
            publisher.close()


def test_a_crashed_mqtt_loop_is_restarted(service_factory, tmp_path: Path) -> None:
    service, client = service_factory(tmp_path / "x.db")
    original = service.mqtt.handler
    calls = itertools.count()

    def crash_once(topic: str, message: bytes, ack: Callable[[], None]) -> None:
        if next(calls) == 0:
            raise RuntimeError("injected fault in the message handler")
        original(topic, message, ack)

    service.mqtt.handler = crash_once
    publisher = Publisher(service.mqtt.address.port)
    try:
        publisher.send(TOPIC, esi(1))
        publisher.send(TOPIC, esi(2))
        # the loop crashed, was restarted and reconnected: the broker redelivered message 1
        wait(lambda: service.stats.snapshot()["accepted"] == 2, "both uplinks stored")
    finally:
        publisher.close()
    body = client.get("/health").json()
    assert body["ingest"]["worker_crashes"] == {"mqtt": 1}
    assert "injected fault" in body["ingest"]["last_crash"]
    assert body["ingest"]["mqtt"]["thread_alive"]
    metrics = client.get("/metrics").text
    assert 'lorameter_worker_crashes_total{worker="mqtt"} 1.0' in metrics


def test_metrics_in_prometheus_text_format(service_factory, tmp_path: Path) -> None:
    service, client = service_factory(tmp_path / "x.db")
    _, other = service_factory(tmp_path / "y.db", topics=["elsewhere/#"])  # its own registry
    publisher = Publisher(service.mqtt.address.port)
    try:
        publisher.send(TOPIC, esi(1))
        publisher.send(TOPIC, b"not json")
        wait(lambda: service.stats.snapshot()["rejected_total"] == 1, "the dead letter")
        wait(lambda: service.stats.snapshot()["accepted"] == 1, "the uplink")
    finally:
        publisher.close()
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    for line in [
        "lorameter_messages_received_total 2.0",
        "lorameter_uplinks_stored_total 1.0",
        'lorameter_dead_letters_total{reason="not_json"} 1.0',
        'lorameter_dead_letters_total{reason="decode_error"} 0.0',
        "lorameter_decode_seconds_count 2.0",
        "lorameter_write_seconds_count",
        'lorameter_thread_alive{thread="mqtt"} 1.0',
        'lorameter_thread_alive{thread="writer"} 1.0',
        "lorameter_queue_depth 0.0",
        "lorameter_mqtt_connected 1.0",
        "lorameter_ingest_healthy 1.0",
    ]:
        assert line in text, line
    assert "lorameter_messages_received_total 0.0" in other.get("/metrics").text


def test_metrics_without_ingest(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "x.db")
    try:
        text = TestClient(create_app(store, None)).get("/metrics").text
        assert "lorameter_messages_received_total" not in text
    finally:
        store.close()


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _tts_shaped(uplink: object, ids: object) -> bytes:
    return json.dumps({"end_device_ids": ids, "uplink_message": uplink}).encode()


MESSAGES = st.one_of(
    st.binary(max_size=512),
    JSON.map(lambda v: json.dumps(v).encode()),
    st.builds(_tts_shaped, JSON, JSON),
    st.builds(
        lambda f_cnt, stamp, device: (
            esi(1)
            .replace(b'"f_cnt": 1', f'"f_cnt": {f_cnt}'.encode())
            .replace(b"2025-11-20T10:15:42.866470312Z", stamp.encode())
            .replace(b'"esi-9"', json.dumps(device).encode())
        ),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.sampled_from(["9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "x", "2025-11-20"]),
        st.text(max_size=6),
    ),
)


def test_arbitrary_input_never_stops_ingestion(mosquitto, tmp_path: Path) -> None:
    """Hypothesis publishes arbitrary bytes and JSON through mosquitto, each followed by one
    good uplink, which must be stored; every message is accounted for."""
    store = SQLiteStore(tmp_path / "p.db")
    service = IngestService(store, mqtt_url=mosquitto.url, topics=[TOPIC],
                            client_id=f"prop-{time.monotonic_ns()}")  # fmt: skip
    service.start()
    assert service.mqtt.wait_connected(10)
    publisher = Publisher(mosquitto.port)
    sequence = itertools.count(1_000)

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(MESSAGES)
    def check(message: bytes) -> None:
        good = next(sequence)
        before = service.stats.snapshot()
        publisher.send(TOPIC, message)
        publisher.send(TOPIC, esi(good))
        wait(lambda: service.stats.snapshot()["received"] == before["received"] + 2, "both", 10)
        service.writer.flush(10)
        assert any(u.f_cnt == good for u in store.raw_uplinks(limit=100_000))
        assert service.mqtt.alive and service.writer.worker.alive
        assert service.stats.snapshot()["worker_crashes"] == {}

    try:
        check()
    finally:
        publisher.close()
        service.stop(timeout=3)
        store.close()
