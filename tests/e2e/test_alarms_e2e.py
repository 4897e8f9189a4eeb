"""End to end: uplinks through a real mosquitto into ``lorameter run`` raise, repeat and clear
an alarm; an ack through the API; a restart in between; a real local HTTP webhook receiver that
is down for a while gets every notification, signed, in order, once it is up; the MQTT alarm
topic keeps the retained state."""

from __future__ import annotations

import hashlib
import hmac
import json
import struct
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.e2e.conftest import Publisher, lorameter_env
from tests.helpers import tts_up
from tests.services import free_port

pytestmark = pytest.mark.integration

SECRET = "s3cret-shared"
REGISTRY = """
devices:
  - device: wm-1
    decoder: axioma_qalcosonic_w1
    medium: water
    tags: {site: rathaus}
    params: {frame_format: standard}
"""
T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def uplink(hour: int, status: int) -> bytes:
    """An Axioma W1 standard frame (meter time, status, litres) received 20 s later."""
    when = T0 + timedelta(hours=hour)
    frame = struct.pack("<IBI", int(when.timestamp()), status, 100_000 + hour)
    stamp = (when + timedelta(seconds=20)).isoformat().replace("+00:00", "Z")
    return tts_up("wm-1", frame, f_port=100, f_cnt=hour + 1, received_at=stamp, dev_eui="")


class Receiver:
    """A real HTTP server that records every webhook POST (headers and body)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.posts: list[tuple[dict[str, str], bytes]] = []
        received = self.posts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((dict(self.headers), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def retained(port: int, topic: str) -> dict[str, Any]:
    """The retained message a new subscriber gets on ``topic``."""
    got: list[bytes] = []
    done = threading.Event()
    client = paho.Client(CallbackAPIVersion.VERSION2)

    def on_message(c, userdata, message) -> None:
        if message.retain:
            got.append(message.payload)
            done.set()

    client.on_message = on_message
    client.on_connect = lambda c, *a: c.subscribe(topic, qos=1)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        assert done.wait(10), f"no retained message on {topic}"
    finally:
        client.disconnect()
        client.loop_stop()
    found: dict[str, Any] = json.loads(got[0])
    return found


def test_alarm_lifecycle_notifications_and_restart(
    mosquitto, publisher: Publisher, run_lorameter, tmp_path: Path
) -> None:
    (tmp_path / "alarms.yaml").write_text(REGISTRY)
    hook_port = free_port()  # nothing listens here yet: the receiver is down
    settings = {
        "mqtt_url": mosquitto.url,
        "devices": str(tmp_path / "alarms.yaml"),
        "alarm_webhook_url": f"http://127.0.0.1:{hook_port}/hooks/lorameter",
        "alarm_webhook_secret": SECRET,
        "alarm_retry_max_s": "1",
        "alarm_sweep_s": "3600",
    }
    topic = "v3/meters@ttn/devices/wm-1/up"
    app = run_lorameter("run", **settings)
    app.wait_for(lambda: app.get("/health")["ingest"]["mqtt"]["connected"], "MQTT")

    def leak() -> dict[str, Any]:
        found = app.get("/api/v1/alarms", state="all", kind="leak")
        assert len(found) <= 1, found  # one alarm per device and kind, never a second
        return found[0] if found else {}

    publisher.send(topic, uplink(0, 0x30))  # status: temporary error, leak
    app.wait_for(lambda: leak().get("state") == "active", "the leak alarm")
    assert app.get("/health")["alarms"] == {"active": {"leak": 1}, "active_total": 1}
    publisher.send(topic, uplink(1, 0x30))  # the leak goes on
    app.wait_for(lambda: leak()["count"] == 2, "the repeat")
    assert leak()["last_seen_at"] == "2026-11-20T11:00:00Z"
    assert len(app.get("/api/v1/alarms", state="all")) == 1  # one alarm, not two
    acked = httpx.post(f"{app.api}/api/v1/alarms/{leak()['id']}/ack",
                       json={"by": "anna", "note": "crew on the way"}, timeout=10)  # fmt: skip
    assert acked.status_code == 200 and acked.json()["acked_by"] == "anna"
    app.wait_for(lambda: app.get("/health")["ingest"]["alarms"]["failed_attempts"] >= 2,
                 "webhook attempts against the receiver that is down")  # fmt: skip
    assert app.stop() == 0

    # a restart: the alarm, its count and the undelivered notifications are all still there
    app = run_lorameter("run", **settings)
    app.wait_for(lambda: app.get("/health")["ingest"]["mqtt"]["connected"], "MQTT again")
    assert (leak()["state"], leak()["count"], leak()["acked_by"]) == ("active", 2, "anna")
    publisher.send(topic, uplink(1, 0x30))  # a redelivery of the last leak uplink: no change
    publisher.send(topic, uplink(2, 0x00))  # the meter reports no more leak
    app.wait_for(lambda: leak()["state"] == "cleared", "the clear")
    alarm = leak()
    assert (alarm["count"], alarm["cleared_at"]) == (2, "2026-11-20T12:00:00Z")
    assert app.get("/health")["alarms"]["active_total"] == 0

    receiver = Receiver(hook_port)  # the receiver comes back
    try:
        app.wait_for(lambda: len(receiver.posts) >= 3, "every webhook delivery", 30)
        events = []
        for headers, body in receiver.posts:
            expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
            assert headers["X-Lorameter-Signature"] == expected
            assert headers["Content-Type"] == "application/json"
            events.append(json.loads(body))
        assert [e["event"] for e in events] == ["raised", "acknowledged", "cleared"]
        assert {e["alarm"]["id"] for e in events} == {alarm["id"]}
        assert events[0]["alarm"]["raised_at"] == "2026-11-20T10:00:00Z"
        assert events[2]["alarm"]["acked_by"] == "anna"
        app.wait_for(lambda: app.get("/health")["ingest"]["alarms"]["outbox"] == {}, "outbox")
    finally:
        receiver.stop()
    assert len(receiver.posts) == 3  # nothing twice

    state = retained(mosquitto.port, "lorameter/alarms/wm-1/leak")
    assert state["event"] == "cleared" and state["alarm"]["state"] == "cleared"
    assert app.stop() == 0
    assert "Traceback" not in app.output()


def test_bad_alarm_settings_are_one_line(tmp_path: Path) -> None:
    def run(**settings: str) -> subprocess.CompletedProcess[str]:
        env = lorameter_env(tmp_path, **settings)
        return subprocess.run([sys.executable, "-m", "lorameter.cli", "api"], env=env,
                              cwd=tmp_path, capture_output=True, text=True, timeout=60)  # fmt: skip

    cases = {
        "LORAMETER_ALARM_WEBHOOK_URL: must be an http": run(
            alarm_webhook_url="ftp://hooks.example", alarm_webhook_secret="topsecret-42"
        ),
        "LORAMETER_ALARM_MQTT_TOPIC: may only use the placeholders": run(
            alarm_mqtt_topic="alarms/{dev}"
        ),
        "LORAMETER_ALARM_MQTT_TOPIC: a publish topic cannot hold": run(
            alarm_mqtt_topic="alarms/+/{device}"
        ),
    }
    (tmp_path / "bad.yaml").write_text("devices:\n  - device: x\n    alarms: {leek: {}}\n")
    cases["unknown alarm kind 'leek'"] = run(devices=str(tmp_path / "bad.yaml"))
    for expected, done in cases.items():
        assert done.returncode == 2, done.stderr
        assert expected in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert "topsecret" not in done.stderr + done.stdout
