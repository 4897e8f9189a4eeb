"""Issue 12 part 3 through real mosquitto and a real influxd: three ``lorameter ingest`` workers
share the stream through ``$share/<group>/…``; one is SIGKILLed mid-stream and restarted under
its worker id, and every uplink is stored exactly once."""

from __future__ import annotations

import re
import signal
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.e2e.conftest import Publisher, Running
from tests.helpers import tts_up
from tests.services import start_mosquitto

pytestmark = pytest.mark.integration

ESI = bytes.fromhex("03010BB8010101A0860100000010270000")  # ELV LW-ESI: 10 kWh, 100 W
DEVICES = 40
STOP_LINE = re.compile(
    r"worker (\w+) stopped: ingested (\d+) uplinks, rejected (\d+), duplicates (\d+)"
)


def uplink(n: int) -> tuple[str, bytes]:
    """Uplink ``n`` of the stream: its own device and time, so it is one InfluxDB point."""
    device = f"esi-{n % DEVICES}"
    minutes = n // DEVICES
    stamp = f"2025-11-{1 + minutes // 1440:02d}T{minutes // 60 % 24:02d}:{minutes % 60:02d}:00Z"
    body = tts_up(device, ESI, f_port=10, brand="elv", model="elv-lw-esi", dev_eui="",
                  f_cnt=minutes + 1, received_at=stamp)  # fmt: skip
    return f"v3/meters@ttn/devices/{device}/up", body


def stored(influxd: Any, db: str, measurement: str = "uplink", field: str = "f_cnt") -> int:
    result = influxd.query(f'SELECT count("{field}") FROM "{measurement}"', db=db).json()
    series = result["results"][0].get("series")
    return int(series[0]["values"][0][1]) if series else 0


def seen_keys(spool: Path) -> int:
    """Uplinks a worker's spool accepted over its life (its dedup keys), killed or not."""
    with sqlite3.connect(spool) as conn:
        return int(conn.execute("SELECT count(*) FROM seen").fetchone()[0])


def stop_line(worker: Running) -> tuple[str, int, int, int]:
    lines = STOP_LINE.findall(worker.output())
    assert len(lines) == 1, worker.output()[-2000:]
    name, ingested, rejected, duplicates = lines[0]
    return name, int(ingested), int(rejected), int(duplicates)


def subscribed(running: Running) -> Callable[[], bool]:
    return lambda: "subscribed to $share/meters/" in running.output()


def test_three_workers_share_the_stream_and_a_killed_one_loses_nothing(
    tmp_path: Path, influxd: Any, run_lorameter: Callable[..., Running]
) -> None:
    broker = start_mosquitto(tmp_path / "broker")
    store_url = influxd.new_database_url()
    db = store_url.rsplit("/", 1)[1]
    try:

        def worker(n: int) -> Running:
            return run_lorameter(
                "ingest", mqtt_url=broker.url, store_url=store_url, mqtt_share_group="meters",
                worker_id=str(n), rollup_interval_s="0",
            )  # fmt: skip

        workers = {n: worker(n) for n in (1, 2, 3)}
        for running in workers.values():
            running.wait_for(subscribed(running), "the shared subscription")
        publisher = Publisher(broker.port)
        total, third = 3000, 1000
        sent = [publisher.client.publish(*uplink(n), qos=1) for n in range(third)]
        for info in sent:
            info.wait_for_publish(30)
        workers[2].wait_for(lambda: stored(influxd, db) >= third // 2, "a part stored", 60)
        workers[2].process.send_signal(signal.SIGKILL)  # mid-stream: it holds unacked messages
        workers[2].process.wait(10)
        sent = [publisher.client.publish(*uplink(n), qos=1) for n in range(third, 2 * third)]
        for info in sent:
            info.wait_for_publish(30)
        # The same worker id: the same client id, so it finds its persistent session (what the
        # broker queued for it and what it had not acknowledged) and its spool again.
        workers[4] = worker(2)
        sent = [publisher.client.publish(*uplink(n), qos=1) for n in range(2 * third, total)]
        for info in sent:
            info.wait_for_publish(30)
        publisher.close()

        workers[4].wait_for(lambda: stored(influxd, db) == total, f"all {total} stored", 120)
        for n in (1, 3, 4):
            assert workers[n].stop() == 0
        assert stored(influxd, db) == total  # every uplink once: one point per uplink
        assert stored(influxd, db, "electricity", "energy_import_kwh") == total  # and its reading
        lines = {n: stop_line(workers[n]) for n in (1, 3, 4)}
        assert [lines[n][0] for n in (1, 3, 4)] == ["1", "3", "2"]
        assert all(line[2] == 0 for line in lines.values())  # nothing rejected
        assert all(line[1] > 0 for line in lines.values()), lines  # the stream was shared
        spools = {n: seen_keys(tmp_path / f"spool.{n}.db") for n in (1, 2, 3)}
        # A stop line counts what its worker stored; the killed worker printed none, and its
        # spool's dedup keys hold what it stored before the kill as well as after the restart.
        assert lines[1][1] == spools[1] and lines[3][1] == spools[3]
        before_kill = spools[2] - lines[4][1]
        assert before_kill > 0
        assert lines[1][1] + lines[3][1] + lines[4][1] + before_kill == total
    finally:
        broker.stop()


def test_workers_have_their_own_stable_client_ids(tmp_path: Path, run_lorameter) -> None:
    """Two workers of one group on one host: two sessions; the same worker again: the same."""
    broker = start_mosquitto(tmp_path / "broker")
    try:
        ids = []
        for worker_id in ("a", "b", "a"):
            running = run_lorameter("ingest", mqtt_url=broker.url, mqtt_share_group="g",
                                    worker_id=worker_id, rollup_interval_s="0")  # fmt: skip
            running.wait_for(lambda r=running: "subscribed to" in r.output(), "the subscription")
            assert running.stop() == 0
            ids.append(re.findall(r"\(client id (lorameter-\w+)\)", running.output())[0])
        assert ids[0] != ids[1] and ids[0] == ids[2]
    finally:
        broker.stop()


def test_mosquitto_hands_each_message_to_one_mqtt_3_1_1_member(tmp_path: Path) -> None:
    """What the workers rely on: mosquitto 2 honours $share for MQTT 3.1.1 clients."""
    broker = start_mosquitto(tmp_path / "broker")
    got: list[list[bytes]] = [[], []]
    clients = []
    try:
        for box in got:
            client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv311)
            client.on_message = lambda c, u, m, box=box: box.append(m.payload)
            client.connect("127.0.0.1", broker.port)
            client.subscribe("$share/g/t/#", qos=1)
            client.loop_start()
            clients.append(client)
        publisher = Publisher(broker.port)
        for n in range(100):
            publisher.send("t/x", str(n).encode())
        publisher.close()
        deadline = time.monotonic() + 10
        while sum(map(len, got)) < 100 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sorted(int(p) for p in got[0] + got[1]) == list(range(100))
        assert got[0] and got[1]
    finally:
        for client in clients:
            client.disconnect()
            client.loop_stop()
        broker.stop()
