"""End-to-end uplinks per second: TTS v3 JSON published to a local mosquitto → ``lorameter
ingest`` (its own process) → SQLite, timed from the first publish until every uplink is stored.

    .venv/bin/python bench/e2e_sqlite.py [--uplinks 20000]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine
from lorameter.demo import simulator
from tests.services import free_port, start_mosquitto


def stored(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return int(conn.execute("SELECT count(*) FROM raw_uplinks").fetchone()[0])
    except sqlite3.Error:
        return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--uplinks", type=int, default=20_000)
    args = parser.parse_args()
    meters = simulator.fleet(32)
    days = args.uplinks / (32 * 96)
    messages = list(simulator.history(meters, datetime(2025, 11, 20, tzinfo=UTC), days))
    messages = messages[: args.uplinks]
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        broker = start_mosquitto(work / "mosquitto")
        registry = work / "devices.yaml"
        import yaml

        registry.write_text(yaml.safe_dump(simulator.registry_document(meters)))
        db = work / "bench.db"
        env = {k: v for k, v in os.environ.items() if not k.startswith("LORAMETER_")}
        env |= {
            "LORAMETER_MQTT_URL": broker.url,
            "LORAMETER_STORE_URL": f"sqlite:///{db}",
            "LORAMETER_DEVICES": str(registry),
            "LORAMETER_API_PORT": str(free_port()),
            "LORAMETER_MQTT_CLIENT_ID": "bench-ingest",  # persistent session: QoS 1 kept
        }
        ingest = subprocess.Popen(
            [sys.executable, "-m", "lorameter.cli", "ingest"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            time.sleep(2)  # connected and subscribed
            client = paho.Client(CallbackAPIVersion.VERSION2)
            client.max_inflight_messages_set(1000)
            client.connect("127.0.0.1", broker.port)
            client.loop_start()
            started = time.perf_counter()
            for n, (topic, body) in enumerate(messages, 1):
                info = client.publish(topic, body, qos=1)
                if n % 1000 == 0:
                    info.wait_for_publish(60)
            published = time.perf_counter() - started
            while stored(db) < len(messages):
                if time.perf_counter() - started > 600:
                    raise SystemExit(f"only {stored(db)} of {len(messages)} stored after 600 s")
                time.sleep(0.05)
            elapsed = time.perf_counter() - started
            client.disconnect()
            client.loop_stop()
        finally:
            ingest.terminate()
            ingest.wait(30)
            broker.stop()
    print(f"machine: {machine()}")
    print(f"{len(messages)} uplinks of 32 meters (heat, water, electricity, pulse), QoS 1")
    print(f"published in {published:.2f} s; all stored after {elapsed:.2f} s")
    print(f"end to end MQTT → SQLite: {len(messages) / elapsed:8.0f} uplinks/s")


if __name__ == "__main__":
    main()
