"""Issue 8 through real mosquitto: no message stops ingestion, shutdown is bounded, a second
process on one spool is refused, a fatal error under ``run`` is reported, reconnects are fast,
and a SIGKILL with default settings loses nothing."""

from __future__ import annotations

import base64
import json
import signal
import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from storage.influx import InfluxStore
from tests.e2e.conftest import Publisher
from tests.helpers import tts_up
from tests.services import fill_disk, free_port, small_disk, start_mosquitto
from tests.storage.records import record

pytestmark = pytest.mark.integration

ESI = bytes.fromhex("03010BB8010101A0860100000010270000")  # 10 kWh, 100 W
TOPIC = "v3/meters@ttn/devices/esi-9/up"


def esi(f_cnt: int, minute: int = 0, device: str = "esi-9") -> bytes:
    return tts_up(device, ESI, f_port=10, brand="elv", model="elv-lw-esi", dev_eui="",
                  f_cnt=f_cnt, received_at=f"2025-11-20T10:{minute:02d}:00Z")  # fmt: skip


def poison() -> dict[str, bytes]:
    """The single messages of issue 8 that used to stop ingestion, one of each."""

    def edited(change: dict[str, object], device: str | None = None) -> bytes:
        document = json.loads(esi(99))
        document["uplink_message"].update(change)
        if device is not None:
            document["end_device_ids"]["device_id"] = device
        return json.dumps(document).encode()

    return {
        "nested": b"[" * 100_000,
        "nested-in-tts": b'{"uplink_message": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        "f_cnt-2^63": edited({"f_cnt": 2**63}),
        "f_cnt-2^32": edited({"f_cnt": 2**32}),
        "year-9999": edited({"received_at": "9999-12-31T23:59:59Z"}),
        "year-1": edited({"received_at": "0001-01-01T00:00:00+01:00"}),
        "lone-surrogate": edited({}, device="esi-\ud800"),
        "carriage-return": edited({}, device="esi\r\n9"),
        "nul": edited({}, device="esi\x009"),
    }


def health(app) -> httpx.Response:
    return httpx.get(app.api + "/health", timeout=10)


@pytest.mark.parametrize("backend", ["sqlite", "influxdb"])
def test_no_single_message_stops_ingestion(
    backend: str, request: pytest.FixtureRequest, mosquitto, publisher: Publisher, run_lorameter
) -> None:
    settings = {"mqtt_url": mosquitto.url}
    if backend == "influxdb":
        settings["store_url"] = request.getfixturevalue("influxd").new_database_url()
    app = run_lorameter("run", **settings)
    app.wait_for(lambda: app.get("/health")["ingest"]["mqtt"]["connected"], "the connection")
    bad = poison()
    for n, body in enumerate(bad.values()):
        publisher.send(TOPIC, body)
        publisher.send(TOPIC, esi(n + 1, minute=n))  # each followed by a good uplink
    app.wait_for(
        lambda: app.get("/health")["ingest"]["accepted"] == len(bad), "every good uplink", 60
    )
    response = health(app)
    body = response.json()
    assert response.status_code == 200, body["problems"]
    ingest = body["ingest"]
    assert ingest["mqtt"]["thread_alive"] and ingest["writer"]["thread_alive"]
    assert ingest["rejected_total"] == len(bad)
    assert ingest["rejected"]["not_json"] + ingest["rejected"]["bad_envelope"] == len(bad)
    assert ingest["worker_crashes"] == {}
    app.wait_for(lambda: app.get("/health")["store"]["dead_letters_total"] == len(bad), "letters")
    letters = app.get("/api/v1/dead-letters", limit=100)
    assert len(letters) == len(bad)
    kept = {base64.b64decode(d["raw_base64"]) for d in letters}
    assert kept == set(bad.values())  # every raw message kept whole
    assert app.stop() == 0
    assert "Traceback" not in app.output()


def test_sigterm_with_a_full_queue_ends_within_10_s(tmp_path: Path, mosquitto, run_lorameter):
    """The store fails (a full disk), the writer queue fills up, paho's thread waits on it:
    SIGTERM still ends the process within 10 s, and what was not stored is not acked."""
    with small_disk(tmp_path / "disk", 4096) as disk:
        app = run_lorameter(
            "run", mqtt_url=mosquitto.url, mqtt_qos="0", store_url=f"sqlite:///{disk}/x.db"
        )
        app.wait_for(lambda: app.get("/health")["ingest"]["mqtt"]["connected"], "connected")
        fill_disk(disk)
        publisher = Publisher(mosquitto.port)
        body = esi(1)
        sent = [
            publisher.client.publish(TOPIC, body.replace(b'"f_cnt": 1', f'"f_cnt": {n}'.encode()))
            for n in range(21_000)
        ]
        sent[-1].wait_for_publish(30)
        publisher.close()
        app.wait_for(lambda: app.get("/health")["ingest"]["queue_depth"] >= 20_000, "a full queue")
        response = health(app)
        assert response.status_code == 503
        assert any("failing" in p for p in response.json()["problems"])
        started = time.monotonic()
        app.process.send_signal(signal.SIGTERM)
        code = app.process.wait(15)
        took = time.monotonic() - started
        assert took < 10, f"{took:.1f} s\n{app.output()[-2000:]}"
        assert code == 0
        assert "not stored at shutdown; the broker keeps them" in app.output()


def test_a_second_process_on_the_same_spool_is_refused(tmp_path: Path, run_lorameter) -> None:
    influx = f"influxdb://127.0.0.1:{free_port()}/lorameter"  # down: the spool holds everything
    spool = tmp_path / "shared-spool.db"
    earlier = InfluxStore(influx, spool_path=spool, close_timeout_s=0.2, create_database=False)
    earlier.write_uplinks([record("em-1", m) for m in range(3)])  # 9 lines left to send
    earlier.close()
    first = run_lorameter("ingest", mqtt_url=f"mqtt://127.0.0.1:{free_port()}",
                          store_url=influx, spool_path=str(spool))  # fmt: skip
    first.wait_for(lambda: "connection refused" in first.output(), "the first process")
    second = run_lorameter("ingest", mqtt_url=f"mqtt://127.0.0.1:{free_port()}",
                           store_url=influx, spool_path=str(spool))  # fmt: skip
    assert second.process.wait(20) == 2
    lines = [line for line in second.output().splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert "in use by another lorameter process" in lines[0]
    assert f"pid {first.process.pid}" in lines[0]
    # `lorameter api` only reads: it runs beside ingest and shows the spool ingest holds
    api = run_lorameter("api", store_url=influx, spool_path=str(spool))
    api.wait_for(lambda: api.get("/health")["store"]["spool_depth"] == 9, "the shared spool")
    assert api.stop() == 0
    assert "stay in the spool" not in api.output()  # not its spool to warn about
    assert first.process.poll() is None
    started = time.monotonic()
    assert first.stop() == 0
    assert time.monotonic() - started < 10
    assert "9 lines stay in the spool" in first.output()


def test_fatal_mqtt_error_under_run_prints_its_line(tmp_path: Path, run_lorameter) -> None:
    broker = start_mosquitto(tmp_path / "auth", extra="allow_anonymous false\n")
    try:
        app = run_lorameter(
            "run", mqtt_url=f"mqtt://meters@ttn:NNSXS.WRONG@127.0.0.1:{broker.port}"
        )
        code = app.process.wait(30)
        output = app.output()
        assert code == 2, output  # once seen as 1 in a CI-like run, not reproduced: show why
        assert "error: " in output and "refused the login" in output
        assert "Traceback" not in output
    finally:
        broker.stop()


def test_reconnect_within_2_s_of_the_broker_returning(tmp_path: Path, run_lorameter) -> None:
    broker = start_mosquitto(tmp_path / "broker")
    try:
        app = run_lorameter("run", mqtt_url=broker.url)
        app.wait_for(lambda: app.get("/health")["ingest"]["mqtt"]["connected"], "connected")
        broker.stop()
        app.wait_for(lambda: not app.get("/health")["ingest"]["mqtt"]["connected"], "the loss")
        time.sleep(8)  # long enough for a doubling backoff to reach 8 s
        broker = start_mosquitto(tmp_path / "broker", port=broker.port)
        back = time.monotonic()
        app.wait_for(lambda: app.get("/health")["ingest"]["mqtt"]["connected"], "reconnect", 30)
        assert time.monotonic() - back < 2.5  # 2 s, plus the time to ask /health
    finally:
        broker.stop()


def test_sigkill_with_default_settings_loses_nothing(tmp_path: Path, run_lorameter) -> None:
    """At-least-once by default: a stable client id and a persistent session, acks only after
    the write; the broker redelivers to the restarted process what the killed one held."""
    broker = start_mosquitto(tmp_path / "broker")
    try:
        app = run_lorameter("ingest", mqtt_url=broker.url)
        app.wait_for(lambda: "subscribed to" in app.output(), "the subscription")
        publisher = Publisher(broker.port)
        total = 3000
        sent = []
        for n in range(total):
            sent.append(publisher.client.publish(TOPIC, esi(n + 1), qos=1))
            if n == total // 3:
                app.process.kill()  # mid-stream
        for info in sent:
            info.wait_for_publish(30)
        publisher.close()
        app.process.wait(10)
        again = run_lorameter("ingest", mqtt_url=broker.url)
        db = tmp_path / "lorameter.db"

        def stored() -> int:
            with sqlite3.connect(db) as conn:
                return int(conn.execute("SELECT count(*) FROM raw_uplinks").fetchone()[0])

        again.wait_for(lambda: stored() == total, f"all {total} uplinks stored", 90)
        assert again.stop() == 0
    finally:
        broker.stop()
