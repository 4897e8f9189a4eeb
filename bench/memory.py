"""Memory under back-pressure: ``lorameter ingest`` while InfluxDB is down, then the drain.

Starts mosquitto and influxd on free ports, stops influxd, runs ``lorameter ingest`` as a
process, publishes uplinks (TTS JSON, QoS 1) until the spool holds them all, and prints the
peak RSS of the ingest process (``VmHWM`` of /proc/<pid>/status) and the spool's size on disk
(file + WAL). Then starts influxd, waits until InfluxDB holds every uplink and the spool has
drained, and prints the spool's size again (it gives its free pages back once drained).

    .venv/bin/python bench/memory.py [--uplinks 50000] [--devices 500]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import uplinks_in
from bench.e2e import messages
from bench.influx_write import machine
from tests.influxd import start_influxd
from tests.services import free_port, start_mosquitto

MIB = 2**20


def status_kib(pid: int, key: str) -> int:
    """A ``/proc/<pid>/status`` figure in KiB (VmHWM: peak resident set, VmRSS: now)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {key} in /proc/{pid}/status")


def spool_bytes(path: Path) -> int:
    """The spool file and its WAL, in bytes."""
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())


def spooled_lines(path: Path) -> int:
    """Lines waiting in the spool, read as another process would."""
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
            return int(db.execute("SELECT total(lines) FROM spool").fetchone()[0])
    except sqlite3.Error:
        return 0


def wait(what: str, done: object, timeout: float, app: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not done():  # type: ignore[operator]
        if time.monotonic() > deadline or app.poll() is not None:
            raise RuntimeError(f"{what} did not happen in {timeout:.0f} s:\n{log.read_text()}")
        time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uplinks", type=int, default=50_000)
    parser.add_argument("--devices", type=int, default=500)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    broker = start_mosquitto(work / "mosquitto")
    server = start_influxd(work / "influxd")
    url = server.new_database_url()
    db = url.rsplit("/", 1)[1]
    server.query(f'CREATE DATABASE "{db}"')
    server.stop()  # InfluxDB is down while the uplinks arrive
    spool = work / "spool.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LORAMETER_")}
    env.update(
        LORAMETER_MQTT_URL=broker.url,
        LORAMETER_STORE_URL=url,
        LORAMETER_SPOOL_PATH=str(spool),
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
        wait("subscribing", lambda: "subscribed" in log.read_text(errors="replace"), 30, app, log)
        print(f"machine: {machine()}")
        idle_kib = status_kib(app.pid, "VmRSS")
        batch = messages(args.uplinks, args.devices)
        client.max_inflight_messages_set(1000)
        client.connect("127.0.0.1", broker.port)
        client.loop_start()
        started = time.perf_counter()
        for info in [client.publish(topic, body, qos=1) for topic, body in batch]:
            info.wait_for_publish(120)
        lines = 3 * args.uplinks  # raw uplink, reading and radio line per uplink
        wait("spooling", lambda: spooled_lines(spool) >= lines, 600, app, log)
        spooled_s = time.perf_counter() - started
        peak_kib = status_kib(app.pid, "VmHWM")
        full = spool_bytes(spool)
        print(
            f"{args.uplinks} uplinks of {args.devices} devices with InfluxDB down: spooled in"
            f" {spooled_s:.1f} s; ingest RSS idle {idle_kib / 1024:.0f} MiB, peak (VmHWM)"
            f" {peak_kib / 1024:.0f} MiB; spool {full / MIB:.1f} MiB"
            f" ({full / args.uplinks:,.0f} bytes/uplink)"
        )
        server.start()
        started = time.perf_counter()
        wait("draining", lambda: uplinks_in(server, db)() >= args.uplinks, 600, app, log)
        wait("the spool emptying", lambda: spooled_lines(spool) == 0, 60, app, log)
        drained_s = time.perf_counter() - started
        time.sleep(2.0)  # the sender shrinks the file right after its last batch
        after = spool_bytes(spool)
        peak_kib = status_kib(app.pid, "VmHWM")
        print(
            f"InfluxDB back: drained in {drained_s:.1f} s; spool after draining"
            f" {after / MIB:.2f} MiB ({after / max(full, 1):.0%} of its peak); peak RSS over"
            f" the whole run {peak_kib / 1024:.0f} MiB (target < 150 MiB)"
        )
    finally:
        client.loop_stop()
        app.terminate()
        app.wait(30)
        server.stop()
        broker.stop()


if __name__ == "__main__":
    main()
