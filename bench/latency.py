"""Latency publish → queryable at a steady rate: Elvaco CMi4110 uplinks (TTS v3 JSON) published
at QoS 1 at ``--rate`` per second for ``--seconds`` into a local mosquitto, taken by ``lorameter
run`` (one process: ingest with alarms, and the API) into SQLite and/or a real influxd.

An uplink counts as queryable once the store, opened by this script as a reader, counts it
(SQLite: ``Store.health().uplinks``; InfluxDB: ``count(f_port)`` asked of influxd; polled back
to back): one process keeps the broker's order, so
when the count passes n, uplinks 0..n-1 are stored. Latency = first poll that sees it minus its
publish call; the poll interval (printed) bounds the error. The anchor, measured in the same
run at the same rate: a bare paho-mqtt QoS 1 subscriber's publish → receive latency (what the
broker and Python's MQTT client take alone). Target (issue 13): p99 < 1 s at 1,000 uplinks/s.

    .venv/bin/python bench/latency.py [--backend both] [--rate 1000] [--seconds 30]
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import lorameter_env, machine, uplinks_in
from bench.e2e import messages
from storage import open_store
from tests.influxd import Influxd, start_influxd
from tests.services import start_mosquitto


def steady(port: int, batch: list[tuple[str, bytes]], rate: float) -> list[float]:
    """Publish at ``rate`` per second (QoS 1, not waiting for acks); each publish call's time."""
    client = paho.Client(CallbackAPIVersion.VERSION2)
    client.max_inflight_messages_set(0)  # unlimited: the rate, not the window, paces it
    client.connect("127.0.0.1", port)
    client.loop_start()
    times: list[float] = []
    start = time.perf_counter()
    for n, (topic, body) in enumerate(batch):
        due = start + n / rate
        if (wait := due - time.perf_counter()) > 0:
            time.sleep(wait)
        times.append(time.perf_counter())
        client.publish(topic, body, qos=1)
    time.sleep(0.5)
    client.disconnect()
    client.loop_stop()
    return times


def percentiles(latencies: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return {"p50": cuts[49], "p99": cuts[98], "max": max(latencies)}


def bare(work: Path, batch: list[tuple[str, bytes]], rate: float) -> dict[str, float]:
    """The anchor: publish → receive by a bare paho QoS 1 subscriber (message n → n-th)."""
    broker = start_mosquitto(work / "broker-bare")
    received: list[float] = []
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv311)
    client.on_message = lambda c, u, m: received.append(time.perf_counter())
    try:
        client.connect("127.0.0.1", broker.port)
        client.subscribe("v3/+/devices/+/up", qos=1)
        client.loop_start()
        time.sleep(0.5)
        sent = steady(broker.port, batch, rate)
        deadline = time.monotonic() + 60
        while len(received) < len(sent) and time.monotonic() < deadline:
            time.sleep(0.05)
        client.loop_stop()
        if len(received) < len(sent):
            raise RuntimeError(f"bare paho received {len(received)} of {len(sent)}")
        return {**percentiles([r - s for s, r in zip(sent, received, strict=True)]),
                "rate": len(sent) / (sent[-1] - sent[0])}  # fmt: skip
    finally:
        broker.stop()


def lorameter(
    work: Path,
    batch: list[tuple[str, bytes]],
    rate: float,
    store_url: str,
    count: Callable[[], int] | None = None,
) -> dict[str, float]:
    """``count``: the stored uplinks asked of the database itself (InfluxDB); default: the
    store's /health count (SQLite keeps it in the file)."""
    broker = start_mosquitto(work / "broker")
    env = lorameter_env(work, broker.url, store_url)
    log = work / "lorameter.log"
    with log.open("wb") as handle:
        process = subprocess.Popen([sys.executable, "-m", "lorameter.cli", "run"], env=env,
                                   stdout=handle, stderr=subprocess.STDOUT, cwd=work)  # fmt: skip
    polls: list[tuple[float, int]] = []  # (time, stored count), in time order
    done = threading.Event()
    try:
        deadline = time.monotonic() + 60
        while "subscribed to" not in log.read_text(errors="replace"):
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"lorameter run did not subscribe:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)
        store = open_store(store_url, spool_path=str(work / "reader-spool.db"), writer=False)

        def poll() -> None:
            while not done.is_set():
                n = count() if count is not None else store.health().uplinks
                polls.append((time.perf_counter(), n))
                if n >= len(batch):
                    return
                time.sleep(0.005)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        sent = steady(broker.port, batch, rate)
        poller.join(120)
        done.set()
        store.close()
        if polls[-1][1] < len(batch):
            raise RuntimeError(f"only {polls[-1][1]} of {len(batch)} stored within 120 s")
        counts = [count for _, count in polls]
        latencies = [polls[bisect.bisect_right(counts, n)][0] - at for n, at in enumerate(sent)]
        gaps = [b[0] - a[0] for a, b in itertools.pairwise(polls)]
        return {**percentiles(latencies), "rate": len(sent) / (sent[-1] - sent[0]),
                "poll_s": statistics.median(gaps)}  # fmt: skip
    finally:
        done.set()
        process.terminate()
        process.wait(60)
        broker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "influx", "both"), default="both")
    parser.add_argument("--rate", type=float, default=1000.0, help="uplinks per second")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--devices", type=int, default=1000)
    args = parser.parse_args()

    backends = ["sqlite", "influx"] if args.backend == "both" else [args.backend]
    work = Path(tempfile.mkdtemp(prefix="bench-latency-"))
    batch = messages(int(args.rate * args.seconds), args.devices)
    print(f"machine: {machine()}; load average at start {os.getloadavg()[0]:.1f}")
    print(f"{len(batch)} Elvaco CMi4110 uplinks of {args.devices} devices at {args.rate:,.0f}/s"
          f" for {args.seconds:.0f} s, QoS 1")  # fmt: skip
    rows = [("bare paho (anchor)", bare(work, batch, args.rate))]
    server: Influxd | None = start_influxd(work / "influxd") if "influx" in backends else None
    try:
        for backend in backends:
            if backend == "sqlite":
                url = f"sqlite:///{work / 'lorameter.db'}"
            count = None
            if backend == "influx":
                assert server is not None
                url = server.new_database_url()
                count = uplinks_in(server, url.rsplit("/", 1)[-1])
            (work / backend).mkdir()
            result = lorameter(work / backend, batch, args.rate, url, count)
            rows.append((f"lorameter run → {backend}", result))
    finally:
        if server is not None:
            server.stop()
    print(f"\n{'':26} | {'sent/s':>7} | {'p50 ms':>7} | {'p99 ms':>7} | {'max ms':>7} | p99 < 1 s")
    for name, r in rows:
        verdict = "" if "anchor" in name else ("met" if r["p99"] < 1.0 else "NOT met")
        poll = f" (poll every {r['poll_s'] * 1000:.0f} ms)" if "poll_s" in r else ""
        print(f"{name:26} | {r['rate']:7,.0f} | {r['p50'] * 1000:7,.1f} | {r['p99'] * 1000:7,.1f}"
              f" | {r['max'] * 1000:7,.0f} | {verdict}{poll}")  # fmt: skip
    print(f"load average at the end {os.getloadavg()[0]:.1f} (other work on the machine skews all)")


if __name__ == "__main__":
    main()
