"""End to end, drain rate: 20,000 Elvaco CMi4110 uplinks (TTS v3 JSON) preloaded at QoS 1 into
persistent sessions on a local mosquitto, drained by three consumers in interleaved rounds:

- **bare paho**: a paho-mqtt 2 QoS 1 subscriber that does nothing with the messages (the anchor:
  what Python can receive at all; its own process),
- **lorameter ingest, 1 process** (acks after the durable write, alarms on),
- **lorameter ingest --workers N** (N = the machine's cores; one shared subscription),

into SQLite and/or a real influxd (``--backend sqlite|influx|both``). Each consumer first starts
once to create its session and subscription, stops, the uplinks are published, and it starts
again; the drain is timed from the first uplink received (paho) or stored (lorameter: the
store's count, polled every 50 ms) to the last, so process start-up does not count. Medians over
the rounds, and each lorameter median as a ratio to the bare paho median of the same run (targets
from issue 13: all cores ≥ 0.5×, one process ≥ 0.35×). CPU per uplink: consumer processes only.

    .venv/bin/python bench/e2e.py [--backend both] [--uplinks 20000] [--rounds 3] [--workers N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import lorameter_env, machine, uplinks_in
from decoders.devices.elvaco_cmi4110 import DECODER as CMI4110
from storage import open_store
from tests.helpers import tts_up
from tests.influxd import Influxd, start_influxd
from tests.services import start_mosquitto

T0 = datetime(2025, 11, 20, tzinfo=UTC)
TOPIC = "v3/+/devices/+/up"
TICKS = os.sysconf("SC_CLK_TCK")
TARGETS = {"1 process": 0.35, "all cores": 0.5}


def messages(count: int, devices: int) -> list[tuple[str, bytes]]:
    """CMi4110 standard messages (the decoder's first example), each its own f_cnt and time."""
    example = CMI4110.examples[0]
    payload = bytes.fromhex(example.hex.replace(" ", ""))
    out = []
    for n in range(count):
        device = f"cmi-{n % devices}"
        stamp = (T0 + timedelta(seconds=n)).isoformat().replace("+00:00", "Z")
        body = tts_up(device, payload, f_port=example.f_port, brand="elvaco", model="cmi4110",
                      dev_eui=f"94193A0103{n % devices:06X}", f_cnt=n // devices + 1,
                      received_at=stamp)  # fmt: skip
        out.append((f"v3/bench@ttn/devices/{device}/up", body))
    return out


def cpu_s(pids: list[int]) -> float:
    """User + system CPU seconds of processes so far (/proc/<pid>/stat)."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / TICKS
    return total


def children(pid: int) -> list[int]:
    """A process and its children (the workers of ``lorameter ingest --workers``)."""
    found = [pid]
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            text = (task / "children").read_text().split()
            found += [int(p) for p in text]
    except OSError:
        pass
    return found


def publish(port: int, batch: list[tuple[str, bytes]], timeout: float) -> None:
    client = paho.Client(CallbackAPIVersion.VERSION2)
    client.max_inflight_messages_set(1000)
    client.connect("127.0.0.1", port)
    client.loop_start()
    for info in [client.publish(topic, body, qos=1) for topic, body in batch]:
        info.wait_for_publish(timeout)
    client.disconnect()
    client.loop_stop()


# -- the anchor: bare paho, in its own process -------------------------------------------------


def bare_subscriber(port: int, count: int) -> None:
    """Connect to the persistent session, receive ``count`` messages at QoS 1, print the drain
    seconds (first to last message) on stdout. Run as ``bench/e2e.py --bare PORT COUNT``."""
    got = 0
    first = last = 0.0

    def on_message(client: paho.Client, userdata: object, message: paho.MQTTMessage) -> None:
        nonlocal got, first, last
        got += 1
        last = time.perf_counter()
        if got == 1:
            first = last

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-bare",
                         clean_session=False, protocol=paho.MQTTv311)  # fmt: skip
    client.on_message = on_message
    client.on_connect = lambda c, *_: c.subscribe(TOPIC, qos=1)
    client.connect("127.0.0.1", port)
    while got < count:
        client.loop(0.1)
    client.disconnect()
    print(f"{count - 1} {last - first}", flush=True)


def bare_round(work: Path, batch: list[tuple[str, bytes]], timeout: float) -> dict[str, float]:
    broker = start_mosquitto(work / "broker")
    try:
        session = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-bare",
                              clean_session=False, protocol=paho.MQTTv311)  # fmt: skip
        session.connect("127.0.0.1", broker.port)
        session.subscribe(TOPIC, qos=1)
        session.loop(1.0)
        session.loop(0.5)
        session.disconnect()
        publish(broker.port, batch, timeout)
        process = subprocess.Popen(
            [sys.executable, __file__, "--bare", str(broker.port), str(len(batch))],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        out, _ = process.communicate(timeout=timeout)
        drained, seconds = out.split()
        return {"rate": int(drained) / float(seconds)}
    finally:
        broker.stop()


# -- lorameter ---------------------------------------------------------------------------------


def lorameter_round(
    work: Path,
    batch: list[tuple[str, bytes]],
    store_url: str,
    workers: int,
    timeout: float,
    count: Callable[[], int] | None = None,
) -> dict[str, float]:
    """``count``: the uplinks stored so far, asked of the database itself (InfluxDB: the store's
    /health count of another process's writes is refreshed only every minute); default: the
    store's /health count (SQLite keeps it in the file)."""
    broker = start_mosquitto(work / "broker")
    env = lorameter_env(work, broker.url, store_url, LORAMETER_ROLLUP_INTERVAL_S="0",
                        LORAMETER_WORKERS=str(workers))  # fmt: skip
    log = work / "lorameter.log"

    def start() -> subprocess.Popen[bytes]:
        with log.open("ab") as handle:
            return subprocess.Popen([sys.executable, "-m", "lorameter.cli", "ingest"],
                                    stdout=handle, stderr=subprocess.STDOUT, env=env,
                                    cwd=work)  # fmt: skip

    def subscribed(process: subprocess.Popen[bytes], times: int) -> None:
        deadline = time.monotonic() + timeout
        while log.read_text(errors="replace").count(", subscribed to ") < times:
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"lorameter did not subscribe:\n{log.read_text()[-3000:]}")
            time.sleep(0.05)

    try:
        process = start()  # the persistent sessions and their subscriptions
        subscribed(process, workers)
        process.terminate()
        process.wait(60)
        publish(broker.port, batch, timeout)
        store = open_store(store_url, spool_path=str(work / "reader-spool.db"), writer=False)
        try:
            process = start()
            stored = count if count is not None else lambda: store.health().uplinks
            deadline = time.monotonic() + timeout
            while (first := stored()) == 0:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"nothing stored:\n{log.read_text()[-3000:]}")
                time.sleep(0.05)
            started = time.perf_counter()
            pids = children(process.pid)
            cpu0 = cpu_s(pids)
            while (last := stored()) < len(batch):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"only {last} of {len(batch)} stored in time")
                time.sleep(0.05)
            seconds = time.perf_counter() - started
            cpu1 = cpu_s(pids)
        finally:
            store.close()
        process.terminate()
        process.wait(60)
        drained = len(batch) - first
        return {"rate": drained / seconds, "cpu_us": (cpu1 - cpu0) / drained * 1e6}
    finally:
        broker.stop()


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--bare":
        bare_subscriber(int(sys.argv[2]), int(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "influx", "both"), default="both")
    parser.add_argument("--uplinks", type=int, default=20_000)
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--timeout", type=float, default=300.0, help="bound of each wait, s")
    args = parser.parse_args()

    backends = ["sqlite", "influx"] if args.backend == "both" else [args.backend]
    work = Path(tempfile.mkdtemp(prefix="bench-e2e-"))
    server: Influxd | None = start_influxd(work / "influxd") if "influx" in backends else None
    batch = messages(args.uplinks, args.devices)
    consumers = ["bare paho", "1 process", "all cores"]
    results: dict[tuple[str, str], list[dict[str, float]]] = {}
    print(f"machine: {machine()}; load average at start {os.getloadavg()[0]:.1f}")
    print(
        f"{args.uplinks} Elvaco CMi4110 uplinks (TTS v3 JSON) of {args.devices} devices preloaded"
        f" at QoS 1; drain timed first to last; {args.rounds} interleaved rounds, medians;"
        f" all cores = --workers {args.workers}"
    )
    try:
        for r in range(args.rounds):
            for backend in backends:
                for consumer in consumers:
                    where = work / f"r{r}-{backend}-{consumer.replace(' ', '-')}"
                    where.mkdir(parents=True)
                    if consumer == "bare paho":
                        result = bare_round(where, batch, args.timeout)
                    else:
                        count: Callable[[], int] | None = None
                        if backend == "sqlite":
                            url = f"sqlite:///{where / 'lorameter.db'}"
                        else:
                            assert server is not None
                            url = server.new_database_url()
                            count = uplinks_in(server, url.rsplit("/", 1)[-1])
                        n = 1 if consumer == "1 process" else args.workers
                        result = lorameter_round(where, batch, url, n, args.timeout, count)
                    results.setdefault((backend, consumer), []).append(result)
                    print(f"  round {r + 1}, {backend:6}, {consumer:9}: {result['rate']:8,.0f}"
                          " uplinks/s", flush=True)  # fmt: skip
    finally:
        if server is not None:
            server.stop()
    print(f"\n{'backend':7} | {'consumer':9} | {'uplinks/s':>9} | × bare paho | target |"
          " CPU µs/uplink")  # fmt: skip
    for backend in backends:
        anchor = statistics.median(x["rate"] for x in results[(backend, "bare paho")])
        for consumer in consumers:
            rows = results[(backend, consumer)]
            rate = statistics.median(x["rate"] for x in rows)
            target = TARGETS.get(consumer)
            verdict = (
                ""
                if target is None
                else f"≥ {target:.2f}× " + ("met" if rate / anchor >= target else "NOT met")
            )
            if consumer == "bare paho":
                print(f"{backend:7} | {consumer:9} | {rate:9,.0f} | {1:10.2f}× | (anchor)     |")
                continue
            cpu = statistics.median(x["cpu_us"] for x in rows)
            print(f"{backend:7} | {consumer:9} | {rate:9,.0f} | {rate / anchor:10.2f}× |"
                  f" {verdict:12} | {cpu:,.0f}")  # fmt: skip
    print(
        f"cores: {os.cpu_count()} (consumers, mosquitto, influxd and this script share them);"
        f" load average at the end {os.getloadavg()[0]:.1f} (other work on the machine skews all)"
    )


if __name__ == "__main__":
    main()
