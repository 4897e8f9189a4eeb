"""InfluxDB write figures: readings/s through the store vs bare bulk POST /write; spool drain.

Starts its own influxd (Debian's 1.6) on free ports in a temp dir. The anchor is a bare bulk
POST of the very lines the store writes (generated beforehand, so it costs nothing of ours);
rounds interleave anchor and store runs, and the ratios are medians over the rounds. The CPU
time each side took (this process, all threads; and influxd) is printed as well: on a shared
machine the wall-clock ratio follows how much CPU the others leave, the CPU times do not.

    .venv/bin/python bench/influx_write.py [--uplinks 50000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common
from storage.influx import InfluxStore
from storage.influx_schema import uplink_lines
from storage.schema import UplinkRecord
from tests.influxd import Influxd, start_influxd
from tests.storage.records import record


def machine() -> str:
    """The machine and the InfluxDB version the figures were measured with."""
    influxd = subprocess.run(["influxd", "version"], capture_output=True, text=True).stdout.strip()
    return f"{common.machine()}, {influxd}"


class Cpu:
    """CPU seconds (user + system) of this process and of influxd over a ``with`` block."""

    def __init__(self, server: Influxd) -> None:
        self.server = server
        self.ours = self.influxd = 0.0

    def _influxd(self) -> float:
        process = self.server.process
        if process is None:
            return 0.0
        stat = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")

    def __enter__(self) -> Cpu:
        self._ours0, self._influxd0 = time.process_time(), self._influxd()
        return self

    def __exit__(self, *_: object) -> None:
        self.ours = time.process_time() - self._ours0
        self.influxd = self._influxd() - self._influxd0


def records(count: int, devices: int = 500) -> list[UplinkRecord]:
    """``count`` uplinks of ``devices`` meters, 15 minutes apart per meter."""
    return [
        record(
            f"em-{i % devices}",
            (i // devices) * 15,
            {"energy_import_kwh": 1000.0 + i, "power_w": 1200.5, "battery_pct": 88.0},
        )
        for i in range(count)
    ]


def bare_post(base: str, db: str, lines: list[str], batch: int) -> float:
    """Seconds to POST the lines in bulk, ``batch`` lines a request, one connection."""
    with httpx.Client(base_url=base, timeout=60) as client:
        client.post("/query", data={"q": f'CREATE DATABASE "{db}"'})
        started = time.perf_counter()
        for i in range(0, len(lines), batch):
            body = "\n".join(lines[i : i + batch]).encode()
            response = client.post("/write", params={"db": db, "precision": "ns"}, content=body)
            response.raise_for_status()
        return time.perf_counter() - started


def through_store(url: str, spool: Path, batch: list[UplinkRecord], per_call: int) -> float:
    """Seconds from the first ``write_uplinks`` until everything is in InfluxDB."""
    store = InfluxStore(url, spool_path=spool)
    try:
        started = time.perf_counter()
        for i in range(0, len(batch), per_call):
            store.write_uplinks(batch[i : i + per_call])
        if not store.flush(120):
            raise RuntimeError(f"store did not drain: {store.health().detail}")
        return time.perf_counter() - started
    finally:
        store.close()


def drain(server: Influxd, url: str, spool: Path, batch: list[UplinkRecord]) -> tuple[float, int]:
    """Spool the batch while influxd is down; seconds to drain it once influxd is back."""
    server.stop()
    store = InfluxStore(url, spool_path=spool, close_timeout_s=1, create_database=False)
    store.write_uplinks(batch)
    depth = store.spool.lines
    store.close()
    server.start()
    store = InfluxStore(url, spool_path=spool)
    try:
        started = time.perf_counter()
        if not store.flush(300):
            raise RuntimeError(f"spool did not drain: {store.health().detail}")
        return time.perf_counter() - started, depth
    finally:
        store.close()


def _cpu(runs: list[Cpu], uplinks: int) -> str:
    ours = statistics.median(c.ours for c in runs) / uplinks * 1e6
    influxd = statistics.median(c.influxd for c in runs) / uplinks * 1e6
    return f"CPU per uplink: this process {ours:.1f} µs, influxd {influxd:.1f} µs (medians)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uplinks", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=5_000, help="lines per bare POST")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved anchor/store rounds")
    parser.add_argument(
        "--per-call", type=int, nargs="+", default=[1000, 1], help="uplinks per write_uplinks"
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-influx-"))
    server = start_influxd(work / "influxd")
    try:
        batch = records(args.uplinks)
        lines = [line for r in batch for line in uplink_lines(r)]
        readings = args.uplinks  # one medium point (3 fields) per uplink, plus radio and raw
        print(f"machine: {machine()}")
        print(f"{args.uplinks} uplinks = {len(lines)} lines (medium point + radio + raw uplink)")

        bares: list[float] = []
        bare_cpu: list[Cpu] = []
        stores: dict[int, list[float]] = {n: [] for n in args.per_call}
        store_cpu: dict[int, list[Cpu]] = {n: [] for n in args.per_call}
        for n in range(args.rounds):
            with Cpu(server) as cpu:
                bares.append(bare_post(server.base_url, f"bare{n}", lines, args.batch))
            bare_cpu.append(cpu)
            for per_call, runs in stores.items():
                url = server.new_database_url()
                spool = work / f"spool-{per_call}-{n}.db"
                with Cpu(server) as cpu:
                    runs.append(through_store(url, spool, batch, per_call))
                store_cpu[per_call].append(cpu)
        bare = statistics.median(bares)
        print(
            f"bare bulk POST /write ({args.batch} lines/request): {len(lines) / bare:,.0f} lines/s"
            f" = {readings / bare:,.0f} readings/s (median of {args.rounds} rounds);"
            f" {_cpu(bare_cpu, readings)}"
        )
        for per_call, times in stores.items():
            seconds = statistics.median(times)
            ratios = [b / s for b, s in zip(bares, times, strict=True)]
            print(
                f"store.write_uplinks ({per_call} uplinks/call) → InfluxDB:"
                f" {readings / seconds:,.0f} readings/s, {len(lines) / seconds:,.0f} lines/s,"
                f" {statistics.median(ratios):.2f} x bare POST (median of the rounds' ratios,"
                f" {min(ratios):.2f} to {max(ratios):.2f}); {_cpu(store_cpu[per_call], readings)}"
            )
        url = server.new_database_url()
        server.query(f'CREATE DATABASE "{url.rsplit("/", 1)[1]}"')
        seconds, depth = drain(server, url, work / "spool-drain.db", batch)
        print(
            f"spool drain after an outage: {depth} lines in {seconds:.2f} s ="
            f" {depth / seconds:,.0f} lines/s, {readings / seconds:,.0f} readings/s"
        )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
