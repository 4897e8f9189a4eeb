"""Issue 8 figures, through a real mosquitto into ``lorameter ingest`` (its own process, SQLite):

1. bad-input flood: 10,000 mixed bad messages, then 1,000 good uplinks: all good ones stored,
   every bad one dead-lettered, peak RSS of the ingest process; anchor: the same 1,000 good
   uplinks alone, in the same run;
2. SIGKILL loss with default settings (no LORAMETER_MQTT_CLIENT_ID): a 400/s QoS 1 stream,
   ``lorameter ingest`` killed mid-stream, mosquitto (with persistence) restarted, ingest
   started again.

    .venv/bin/python bench/robustness.py [--bad 10000] [--good 1000] [--stream 4000]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import contextlib

from bench.common import machine
from tests.helpers import tts_up
from tests.services import Mosquitto, free_port, start_mosquitto

ESI = bytes.fromhex("03010BB8010101A0860100000010270000")  # ELV LW-ESI: 10 kWh, 100 W
TOPIC = "v3/meters@ttn/devices/{}/up"


def good(n: int) -> tuple[str, bytes]:
    stamp = f"2025-11-{1 + n // 1440 % 28:02d}T{n // 60 % 24:02d}:{n % 60:02d}:00Z"
    body = tts_up("esi-9", ESI, f_port=10, brand="elv", model="elv-lw-esi", dev_eui="",
                  f_cnt=n + 1, received_at=stamp)  # fmt: skip
    return TOPIC.format("esi-9"), body


def bad(n: int, rng: random.Random) -> bytes:
    """One of twelve kinds of bad input, in turn."""
    template = json.loads(good(n)[1])
    up = template["uplink_message"]
    kind = n % 12
    if kind == 0:
        return rng.randbytes(rng.randint(0, 300))
    if kind == 1:
        return b"[" * rng.randint(1_000, 100_000)
    if kind == 2:
        up["f_cnt"] = 2**63 + n
    elif kind == 3:
        up["received_at"] = "9999-12-31T23:59:59Z"
    elif kind == 4:
        template["end_device_ids"]["device_id"] = f"esi-\ud800-{n}"
    elif kind == 5:
        template["end_device_ids"]["device_id"] = f"esi\r\n\x00{n}"
    elif kind == 6:
        up["frm_payload"] = "***not base64***"
    elif kind == 7:
        up["frm_payload"] = base64.b64encode(ESI[:3]).decode()  # decode error
    elif kind == 8:
        template["end_device_ids"]["device_id"] = f"stranger-{n}"
        del up["version_ids"]  # unknown device
    elif kind == 9:
        del up["frm_payload"]  # no payload
    elif kind == 10:
        return json.dumps({"uplink_message": [n], "end_device_ids": "x"}).encode()
    else:
        return b"x" * 300_000  # too large
    return json.dumps(template).encode()


def count(db: Path, table: str) -> int:
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    except sqlite3.Error:
        return 0


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def ingest(broker: Mosquitto, db: Path, **settings: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LORAMETER_")}
    env |= {"LORAMETER_MQTT_URL": broker.url, "LORAMETER_STORE_URL": f"sqlite:///{db}",
            "LORAMETER_API_PORT": str(free_port()), "LORAMETER_LOG_LEVEL": "ERROR"}  # fmt: skip
    env |= {f"LORAMETER_{k.upper()}": v for k, v in settings.items()}
    process = subprocess.Popen([sys.executable, "-m", "lorameter.cli", "ingest"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    time.sleep(2.5)  # connected and subscribed
    return process


class Publisher:
    def __init__(self, port: int) -> None:
        self.client = paho.Client(CallbackAPIVersion.VERSION2)
        self.client.max_inflight_messages_set(1000)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def send(self, messages: Iterator[tuple[str, bytes]], rate: float = 0.0) -> int:
        sent, started, info = 0, time.perf_counter(), None
        for topic, body in messages:
            info = self.client.publish(topic, body, qos=1)
            sent += 1
            if sent % 500 == 0:
                info.wait_for_publish(60)
            if rate:
                time.sleep(max(0.0, started + sent / rate - time.perf_counter()))
        if info is not None:
            info.wait_for_publish(60)
        return sent

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def wait_until(check: Iterator[bool] | object, what: str, timeout: float = 600) -> float:
    started = time.perf_counter()
    while not check():  # type: ignore[operator]
        if time.perf_counter() - started > timeout:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)
    return time.perf_counter() - started


def flood(work: Path, n_bad: int, n_good: int) -> None:
    broker = start_mosquitto(work / "flood")
    rng = random.Random(8)
    try:
        # anchor: the good uplinks alone
        db = work / "anchor.db"
        process = ingest(broker, db)
        pub = Publisher(broker.port)
        started = time.perf_counter()
        pub.send(good(n) for n in range(n_good))
        wait_until(lambda: count(db, "raw_uplinks") == n_good, "the anchor")
        anchor = time.perf_counter() - started
        anchor_rss = peak_rss_mib(process.pid)
        process.terminate()
        process.wait(30)
        # the flood, then the good ones
        db = work / "flood.db"
        process = ingest(broker, db)
        started = time.perf_counter()
        pub.send(("v3/meters@ttn/devices/x/up", bad(n, rng)) for n in range(n_bad))
        pub.send(good(n) for n in range(n_good))
        wait_until(
            lambda: count(db, "raw_uplinks") == n_good and count(db, "dead_letters") == n_bad,
            "the flood",
        )
        elapsed = time.perf_counter() - started
        rss = peak_rss_mib(process.pid)
        alive = process.poll() is None
        process.terminate()
        process.wait(30)
        pub.close()
        with sqlite3.connect(db) as conn:
            reasons = dict(conn.execute("SELECT reason, count(*) FROM dead_letters GROUP BY 1"))
    finally:
        broker.stop()
    print(f"bad-input flood: {n_bad} bad messages (12 kinds) then {n_good} good uplinks")
    print(f"  good stored: {count(db, 'raw_uplinks')} of {n_good}; dead letters: "
          f"{sum(reasons.values())} of {n_bad}; ingest still running: {alive}")  # fmt: skip
    print(f"  dead letters by reason: {json.dumps(reasons, sort_keys=True)}")
    print(f"  all stored after {elapsed:.1f} s ({(n_bad + n_good) / elapsed:.0f} messages/s);"
          f" anchor, {n_good} good alone: {anchor:.1f} s")  # fmt: skip
    print(f"  peak RSS of lorameter ingest: {rss:.0f} MiB (anchor: {anchor_rss:.0f} MiB)")


def sigkill(work: Path, total: int, rate: float) -> None:
    data = work / "mosquitto-data"
    data.mkdir()
    extra = f"persistence true\npersistence_location {data}/\nautosave_interval 1\n"
    broker = start_mosquitto(work / "kill", extra=extra)
    db = work / "kill.db"
    try:
        process = ingest(broker, db)  # default settings: no client id given
        pub = Publisher(broker.port)

        def stream() -> Iterator[tuple[str, bytes]]:
            for n in range(total):
                if n == total // 2:
                    process.kill()  # mid-stream, no warning
                yield good(n)

        sent = pub.send(stream(), rate=rate)
        pub.close()
        process.wait(10)
        at_kill = count(db, "raw_uplinks")
        broker.stop()  # the broker restarts too: the session comes back from its persistence file
        broker = start_mosquitto(work / "kill", port=broker.port, extra=extra)
        again = ingest(broker, db)
        with contextlib.suppress(SystemExit):
            wait_until(lambda: count(db, "raw_uplinks") >= sent, "the redelivery", 120)
        time.sleep(2)  # anything more would be a duplicate; nothing may be missing
        stored = count(db, "raw_uplinks")
        again.terminate()
        again.wait(30)
    finally:
        broker.stop()
    print(f"SIGKILL with default settings, then a mosquitto restart (persistence), {rate:.0f}/s"
          " QoS 1:")  # fmt: skip
    print(
        f"  published {sent}; stored before the kill {at_kill}; stored in the end {stored};"
        f" lost {sent - stored}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bad", type=int, default=10_000)
    parser.add_argument("--good", type=int, default=1_000)
    parser.add_argument("--stream", type=int, default=4_000)
    parser.add_argument("--rate", type=float, default=400.0)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as folder:
        flood(Path(folder), args.bad, args.good)
        sigkill(Path(folder), args.stream, args.rate)


if __name__ == "__main__":
    main()
