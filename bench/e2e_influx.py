"""End-to-end uplinks/s: TTS JSON published to mosquitto → ``lorameter ingest`` → InfluxDB.

Starts its own mosquitto and influxd on free ports and ``lorameter ingest`` as a process; times
from the first publish until InfluxDB holds every uplink.

    .venv/bin/python bench/e2e_influx.py [--uplinks 20000] [--devices 200]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.influx_write import machine
from tests.helpers import tts_up
from tests.influxd import Influxd, start_influxd
from tests.services import free_port, start_mosquitto

ESI = bytes.fromhex("03010BB8010101A0860100000010270000")
T0 = datetime(2025, 11, 20, tzinfo=UTC)


def messages(count: int, devices: int) -> list[tuple[str, bytes]]:
    out = []
    for n in range(count):
        device = f"esi-{n % devices}"
        stamp = (T0 + timedelta(seconds=n)).isoformat().replace("+00:00", "Z")
        body = tts_up(
            device, ESI, f_port=10, brand="elv", model="elv-lw-esi", f_cnt=n + 1, received_at=stamp
        )
        out.append((f"v3/bench@ttn/devices/{device}/up", body))
    return out


def stored(server: Influxd, db: str) -> int:
    result = server.query("SELECT count(f_port) FROM uplink", db=db).json()["results"][0]
    return int(result["series"][0]["values"][0][1]) if "series" in result else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uplinks", type=int, default=20_000)
    parser.add_argument("--devices", type=int, default=200)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-e2e-influx-"))
    broker = start_mosquitto(work / "mosquitto")
    server = start_influxd(work / "influxd")
    url = server.new_database_url()
    db = url.rsplit("/", 1)[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LORAMETER_")}
    env.update(
        LORAMETER_MQTT_URL=broker.url,
        LORAMETER_STORE_URL=url,
        LORAMETER_SPOOL_PATH=str(work / "spool.db"),
        LORAMETER_API_PORT=str(free_port()),
        LORAMETER_LOG_LEVEL="INFO",
    )
    log = work / "lorameter.log"
    with log.open("wb") as handle:
        app = subprocess.Popen(
            [sys.executable, "-m", "lorameter.cli", "ingest"],
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=work,
        )
    client = paho.Client(CallbackAPIVersion.VERSION2)
    try:
        deadline = time.monotonic() + 30
        while "subscribed" not in log.read_text(errors="replace"):
            if time.monotonic() > deadline or app.poll() is not None:
                raise RuntimeError(f"lorameter ingest did not subscribe:\n{log.read_text()}")
            time.sleep(0.1)
        batch = messages(args.uplinks, args.devices)
        client.max_inflight_messages_set(1000)
        client.connect("127.0.0.1", broker.port)
        client.loop_start()
        print(f"machine: {machine()}")
        started = time.perf_counter()
        infos = [client.publish(topic, body, qos=1) for topic, body in batch]
        for info in infos:
            info.wait_for_publish(60)
        published = time.perf_counter() - started
        while (count := stored(server, db)) < args.uplinks:
            if time.perf_counter() - started > 600 or app.poll() is not None:
                raise RuntimeError(f"only {count} of {args.uplinks} arrived:\n{log.read_text()}")
            time.sleep(0.05)
        seconds = time.perf_counter() - started
        print(
            f"{args.uplinks} uplinks of {args.devices} devices, QoS 1: published in"
            f" {published:.2f} s ({args.uplinks / published:,.0f}/s); all in InfluxDB after"
            f" {seconds:.2f} s = {args.uplinks / seconds:,.0f} uplinks/s end to end"
        )
    finally:
        client.loop_stop()
        app.terminate()
        app.wait(30)
        server.stop()
        broker.stop()


if __name__ == "__main__":
    main()
