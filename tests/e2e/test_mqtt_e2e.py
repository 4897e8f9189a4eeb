"""End to end: TTS and ChirpStack JSON through a real mosquitto into ``lorameter run``, read
back through its HTTP API; every kind of bad input counted, kept, and survived."""

from __future__ import annotations

import base64
import json
import sqlite3
from pathlib import Path

import pytest

from tests.e2e.conftest import Publisher
from tests.helpers import chirpstack_up, tts_up
from tests.services import start_mosquitto

pytestmark = pytest.mark.integration

ESI = bytes.fromhex("03010BB8010101A0860100000010270000")  # 10 kWh, 100 W
PULSES = bytes.fromhex("01755C0367040105C8E8030000")  # battery 92 %, 1000 pulses
TTS_TOPIC = "v3/meters@ttn/devices/{}/up"
CS_TOPIC = "application/8e2c1a47/device/{}/event/up"


def connected(running) -> bool:
    return bool(running.get("/health")["ingest"]["mqtt"]["connected"])


def test_uplinks_and_bad_input_end_to_end(mosquitto, publisher: Publisher, run_lorameter) -> None:
    app = run_lorameter("run", mqtt_url=mosquitto.url)
    app.wait_for(lambda: connected(app), "the MQTT connection")

    # good uplinks: TTS via version_ids, TTS via the registry, ChirpStack via the registry
    publisher.send(
        TTS_TOPIC.format("esi-9"),
        tts_up("esi-9", ESI, f_port=10, brand="elv", model="elv-lw-esi", dev_eui=""),
    )
    publisher.send(
        TTS_TOPIC.format("pulse-1"),
        tts_up("pulse-1", PULSES, f_port=85, dev_eui="70B3D5E50000AAAA"),
    )
    publisher.send(CS_TOPIC.format("a84041ffff1c0042"), chirpstack_up("a84041ffff1c0042", ESI))

    # bad input, one of each kind
    bad_b64 = json.loads(tts_up("esi-9", ESI, f_port=10, brand="elv", model="elv-lw-esi"))
    bad_b64["uplink_message"]["frm_payload"] = "***"
    bad = {
        "not_json": b"\x00\x01 definitely not json",
        "bad_envelope": json.dumps({"end_device_ids": 5, "uplink_message": []}).encode(),
        "bad_base64": json.dumps(bad_b64).encode(),
        "unknown_device": tts_up("stranger", b"\x01", f_port=1, dev_eui=""),
        "decode_error": tts_up(
            "esi-9",
            b"\x03\x01\x0b",
            f_port=10,
            brand="elv",
            model="elv-lw-esi",
            dev_eui="",
            f_cnt=2,
        ),
        "no_payload": tts_up("esi-9", None, f_port=None, dev_eui="", f_cnt=3),
        "too_large": tts_up("esi-9", b"\x01" * 800_000, f_port=10, dev_eui="", f_cnt=4),
    }
    for body in bad.values():
        publisher.send(TTS_TOPIC.format("esi-9"), body)
    # ... and the next good uplink after all of them is processed
    publisher.send(
        TTS_TOPIC.format("esi-9"),
        tts_up("esi-9", ESI, f_port=10, brand="elv", model="elv-lw-esi", dev_eui="", f_cnt=5,
               received_at="2025-11-20T11:15:42Z"),
    )  # fmt: skip
    # a redelivered uplink is a duplicate, not a second reading
    publisher.send(CS_TOPIC.format("a84041ffff1c0042"), chirpstack_up("a84041ffff1c0042", ESI))

    app.wait_for(lambda: app.get("/health")["ingest"]["received"] == 12, "12 messages")
    app.wait_for(lambda: app.get("/health")["ingest"]["queue_depth"] == 0, "the queue to drain")
    health = app.get("/health")
    ingest, store = health["ingest"], health["store"]
    assert ingest["accepted"] == 4
    assert ingest["duplicates"] == 1
    assert {k: v for k, v in ingest["rejected"].items() if v} == dict.fromkeys(bad, 1)
    assert store["dead_letters"] == dict.fromkeys(bad, 1)
    assert store["uplinks"] == 4

    # each rejection logged once, with its reason
    output = app.output()
    for reason in bad:
        assert output.count(f": {reason}: ") == 1, reason
    assert "Traceback" not in output

    # dead letters keep the raw message
    letters = {d["reason"]: d for d in app.get("/api/v1/dead-letters")}
    assert base64.b64decode(letters["not_json"]["raw_base64"]) == bad["not_json"]
    assert len(base64.b64decode(letters["too_large"]["raw_base64"])) == len(bad["too_large"])

    devices = {d["device"]: d for d in app.get("/api/v1/devices")}
    assert set(devices) == {"esi-9", "pulse-1", "a84041ffff1c0042"}
    assert devices["pulse-1"]["meter"] == "W-42"
    assert devices["pulse-1"]["last_reading"]["values"]["volume_m3"] == pytest.approx(110.5)
    assert devices["pulse-1"]["battery_pct"] == 92
    assert devices["a84041ffff1c0042"]["uplinks"] == 1
    assert devices["esi-9"]["rssi_dbm"] == -97
    readings = app.get(
        "/api/v1/devices/esi-9/readings",
        **{"from": "2025-11-20T00:00:00Z", "to": "2025-11-21T00:00:00Z"},
    )["readings"]
    assert [r["time"] for r in readings] == ["2025-11-20T10:15:42.866470Z", "2025-11-20T11:15:42Z"]
    assert readings[1]["values"] == {"energy_import_kwh": 10.0, "power_w": 100.0}

    assert app.stop() == 0


def test_reconnect_resubscribes(tmp_path: Path, run_lorameter) -> None:
    broker = start_mosquitto(tmp_path / "broker")
    try:
        app = run_lorameter("ingest", mqtt_url=broker.url)
        db = tmp_path / "lorameter.db"
        pub = Publisher(broker.port)
        app.wait_for(lambda: "subscribed to" in app.output(), "the first subscription")
        pub.send(TTS_TOPIC.format("esi-9"), tts_up("esi-9", ESI, f_port=10, brand="elv",
                                                   model="elv-lw-esi", f_cnt=1))  # fmt: skip
        pub.close()
        broker.stop()  # the broker goes away, forgetting every subscription
        broker = start_mosquitto(tmp_path / "broker", port=broker.port)
        app.wait_for(lambda: app.output().count("subscribed to") == 2, "the resubscription", 90)
        pub = Publisher(broker.port)
        pub.send(TTS_TOPIC.format("esi-9"), tts_up("esi-9", ESI, f_port=10, brand="elv",
                 model="elv-lw-esi", f_cnt=2, received_at="2025-11-20T12:00:00Z"))  # fmt: skip
        pub.close()

        def stored() -> int:
            with sqlite3.connect(db) as conn:
                return int(conn.execute("SELECT count(*) FROM raw_uplinks").fetchone()[0])

        app.wait_for(lambda: stored() == 2, "the uplink sent after the reconnect")
        assert app.stop() == 0  # SIGTERM: stores what it has, then exits cleanly
        assert "Traceback" not in app.output()
    finally:
        broker.stop()
