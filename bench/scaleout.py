"""Scale-out: uplinks/s of 1, 2 and 3 ``lorameter ingest`` workers on one shared subscription.

Each round starts its own mosquitto and a fresh InfluxDB database (one influxd for the run),
starts the workers of a share group once (so the broker holds a persistent session with the
subscription ``$share/bench/v3/+/devices/+/up`` for each), stops them, and **preloads** the
uplinks at QoS 1 into those sessions (mosquitto hands each message to one member of the group,
queued while it is away). Then it starts the workers again under the same worker ids and times
the drain: from the first uplink in InfluxDB to the last (so process start-up does not count),
polling ``SELECT count(f_port) FROM uplink`` every 50 ms. Rounds are interleaved (1, 2, 3, 1,
2, 3, ...) and the median is printed with its ratio to 1 worker, the anchor measured in the same
run, plus the CPU time per uplink of the workers, influxd and mosquitto, and the InfluxDB field
writes/s (every field value stored, counted in InfluxDB) against the single-node guideline of
~750,000 field writes/s (InfluxDB v1 hardware sizing guide, /work/shared/reference/anchors.md).
Each wait is bounded (``--timeout``), so the script always ends.

    .venv/bin/python bench/scaleout.py [--uplinks 20000] [--devices 500] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine, uplinks_in
from tests.helpers import tts_up
from tests.influxd import Influxd, start_influxd
from tests.services import Mosquitto, start_mosquitto

ESI = bytes.fromhex("03010BB8010101A0860100000010270000")  # ELV LW-ESI: 10 kWh, 100 W
T0 = datetime(2025, 11, 20, tzinfo=UTC)
GROUP = "bench"
STOP_LINE = re.compile(r"worker \w+ stopped: ingested (\d+) uplinks, rejected (\d+)")
TICKS = os.sysconf("SC_CLK_TCK")
GUIDELINE_FIELDS_S = 750_000  # InfluxDB OSS single node, v1 hardware sizing guide


def messages(count: int, devices: int) -> list[tuple[str, bytes]]:
    out = []
    for n in range(count):
        device = f"esi-{n % devices}"
        stamp = (T0 + timedelta(seconds=n)).isoformat().replace("+00:00", "Z")
        body = tts_up(device, ESI, f_port=10, brand="elv", model="elv-lw-esi", dev_eui="",
                      f_cnt=n + 1, received_at=stamp)  # fmt: skip
        out.append((f"v3/bench@ttn/devices/{device}/up", body))
    return out


def field_values(server: Influxd, db: str) -> int:
    """Every field value in the database: what InfluxDB's sizing guide calls field writes."""
    result = server.query("SELECT count(*) FROM /.*/", db=db).json()["results"][0]
    return sum(int(v) for s in result.get("series", []) for v in s["values"][0][1:] if v)


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


class Workers:
    """``count`` workers of the share group, each ``lorameter ingest`` in its own process."""

    def __init__(self, work: Path, broker: Mosquitto, store_url: str, count: int) -> None:
        self.work, self.count = work, count
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("LORAMETER_")}
        self.env.update(
            LORAMETER_MQTT_URL=broker.url,
            LORAMETER_STORE_URL=store_url,
            LORAMETER_SPOOL_PATH=str(work / "spool.db"),
            LORAMETER_MQTT_SHARE_GROUP=GROUP,
            LORAMETER_ROLLUP_INTERVAL_S="0",
        )
        self.processes: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []

    def start(self, tag: str) -> None:
        self.processes, self.logs = [], []
        for n in range(1, self.count + 1):
            log = self.work / f"worker-{n}-{tag}.log"
            env = {**self.env, "LORAMETER_WORKER_ID": str(n)}
            with log.open("wb") as handle:
                process = subprocess.Popen(
                    [sys.executable, "-m", "lorameter.cli", "ingest"],
                    stdout=handle, stderr=subprocess.STDOUT, cwd=self.work, env=env,
                )  # fmt: skip
            self.processes.append(process)
            self.logs.append(log)

    def wait_subscribed(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for process, log in zip(self.processes, self.logs, strict=True):
            while "subscribed to $share/" not in log.read_text(errors="replace"):
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"a worker did not subscribe:\n{log.read_text()[-2000:]}")
                time.sleep(0.05)

    def cpu_s(self) -> float:
        return sum(cpu_s(p.pid) for p in self.processes)

    def stop(self) -> int:
        """SIGTERM all, wait; the sum of their stop lines' ``ingested``."""
        for process in self.processes:
            process.terminate()
        total = 0
        for process, log in zip(self.processes, self.logs, strict=True):
            process.wait(60)
            found = STOP_LINE.findall(log.read_text(errors="replace"))
            if not found:
                raise RuntimeError(f"no stop line in {log}")
            total += int(found[-1][0])
        return total


def one_round(
    work: Path, server: Influxd, batch: list[tuple[str, bytes]], count: int, timeout: float
) -> dict[str, float]:
    work.mkdir(parents=True)
    broker = start_mosquitto(work / "broker")
    url = server.new_database_url()
    db = url.rsplit("/", 1)[1]
    workers = Workers(work, broker, url, count)
    client = paho.Client(CallbackAPIVersion.VERSION2)
    try:
        workers.start("subscribe")  # the sessions and their shared subscription
        workers.wait_subscribed(timeout)
        workers.stop()
        client.max_inflight_messages_set(1000)
        client.connect("127.0.0.1", broker.port)
        client.loop_start()
        for info in [client.publish(topic, body, qos=1) for topic, body in batch]:
            info.wait_for_publish(timeout)
        client.disconnect()
        client.loop_stop()

        assert server.process is not None
        workers.start("drain")
        deadline = time.monotonic() + timeout
        while (first := uplinks_in(server, db)()) == 0:
            if time.monotonic() > deadline:
                raise RuntimeError("nothing reached InfluxDB")
            time.sleep(0.05)
        started = time.perf_counter()
        cpu0 = workers.cpu_s(), cpu_s(server.process.pid), cpu_s(broker.process.pid)
        while (last := uplinks_in(server, db)()) < len(batch):
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {last} of {len(batch)} uplinks arrived in time")
            time.sleep(0.05)
        seconds = time.perf_counter() - started
        cpu1 = workers.cpu_s(), cpu_s(server.process.pid), cpu_s(broker.process.pid)
        ingested = workers.stop()
        drained = len(batch) - first
        fields = field_values(server, db)
        return {
            "rate": drained / seconds,
            "workers_us": (cpu1[0] - cpu0[0]) / drained * 1e6,
            "influxd_us": (cpu1[1] - cpu0[1]) / drained * 1e6,
            "mosquitto_us": (cpu1[2] - cpu0[2]) / drained * 1e6,
            "fields_per_uplink": fields / len(batch),
            "ingested_sum_ok": float(ingested == len(batch)),
        }
    finally:
        for process in workers.processes:
            if process.poll() is None:
                process.kill()
        broker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uplinks", type=int, default=20_000)
    parser.add_argument("--devices", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--timeout", type=float, default=180.0, help="bound of each wait, s")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-scaleout-"))
    server = start_influxd(work / "influxd")
    batch = messages(args.uplinks, args.devices)
    results: dict[int, list[dict[str, float]]] = {k: [] for k in args.workers}
    print(f"machine: {machine()}; load average at start {os.getloadavg()[0]:.1f}")
    print(
        f"{args.uplinks} ELV LW-ESI uplinks (TTS JSON) of {args.devices} devices preloaded at QoS 1"
        f" into the workers' persistent sessions on $share/{GROUP}/…; drain timed from the first"
        f" to the last uplink in InfluxDB; {args.rounds} interleaved rounds, medians"
    )
    try:
        for r in range(args.rounds):
            for k in args.workers:
                result = one_round(work / f"r{r}-w{k}", server, batch, k, args.timeout)
                results[k].append(result)
                rate = result["rate"]
                print(f"  round {r + 1}, {k} worker(s): {rate:,.0f} uplinks/s", flush=True)
    finally:
        server.stop()
    anchor = statistics.median(r["rate"] for r in results[args.workers[0]])
    print(f"\n{'workers':>7} | {'uplinks/s':>9} | ratio | CPU µs/uplink: workers, influxd, broker")
    for k in args.workers:
        rows = results[k]
        rate = statistics.median(r["rate"] for r in rows)
        cpu = [statistics.median(r[key] for r in rows) for key in
               ("workers_us", "influxd_us", "mosquitto_us")]  # fmt: skip
        print(
            f"{k:>7} | {rate:>9,.0f} | {rate / anchor:4.2f}× | {cpu[0]:,.0f}, {cpu[1]:,.0f},"
            f" {cpu[2]:,.0f}"
        )
    fields = statistics.median(r["fields_per_uplink"] for rows in results.values() for r in rows)
    best = max(statistics.median(r["rate"] for r in rows) for rows in results.values())
    share = best * fields / GUIDELINE_FIELDS_S
    print(
        f"\nfield values per uplink in InfluxDB: {fields:.1f}; at the best rate {best:,.0f}"
        f" uplinks/s that is {best * fields:,.0f} field writes/s = {share:.3f}×"
        f" the single-node guideline ({GUIDELINE_FIELDS_S:,}/s)"
    )
    if not all(r["ingested_sum_ok"] for rows in results.values() for r in rows):
        print("WARNING: in some round the workers' stop lines did not add up to the uplinks sent")
    else:
        print("in every round the workers' stop lines added up to the uplinks sent")
    print(
        f"cores: {os.cpu_count()} (the workers, influxd, mosquitto and the publisher share them);"
        f" load average at the end {os.getloadavg()[0]:.1f} (other work on the machine skews all)"
    )


if __name__ == "__main__":
    main()
