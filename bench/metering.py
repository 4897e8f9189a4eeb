"""Metering figures: consumption of one meter over a year, and of a fleet over a day.

Prints (medians of several rounds, with the bare read each is anchored to):
1. 1 meter x 1 year of 15-minute readings -> daily consumption, metering only (target < 20 ms),
   anchored to a bare ``np.diff`` of the same series;
2. the same through the HTTP API on SQLite (target < 100 ms), anchored to the store read alone;
3. a fleet of N meters (default 10,000) x 1 day of 15-minute readings -> daily consumption per
   meter, on SQLite and on InfluxDB (target < 1 s each), anchored to the store read alone, and
   for InfluxDB to what influxd alone takes for the same window (raw points; a count per device).

The fleet is loaded straight into each store's tables (SQLite ``counters``/``devices``, InfluxDB
line protocol), since this measures reading, not ingest. Starts its own influxd (Debian's 1.6).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from api.consumption import Window, fleet_reports
from bench import common
from metering.calendar import interval_bounds, to_ns
from metering.meter import MeterConfig, device_consumption
from storage.base import Store
from storage.influx import InfluxStore
from storage.sqlite import SQLiteStore
from tests.influxd import start_influxd

BERLIN = ZoneInfo("Europe/Berlin")
YEAR_START = datetime(2025, 1, 1, tzinfo=BERLIN)
QUARTER_NS = 15 * 60 * 1_000_000_000


def median_ms(fn: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def year_series() -> tuple[np.ndarray, np.ndarray]:
    start = to_ns(YEAR_START.astimezone(UTC)) - QUARTER_NS  # one reading before the range
    times = start + QUARTER_NS * np.arange(366 * 96 + 2, dtype=np.int64) + 13_000_000_000
    rng = np.random.default_rng(7)
    values = 1000.0 + np.cumsum(rng.gamma(0.5, 0.02, len(times)))
    return times, values


def bench_one_meter(rounds: int, tmp: Path) -> None:
    times, values = year_series()
    end = datetime(2026, 1, 1, tzinfo=BERLIN)
    bounds = interval_bounds(YEAR_START, end, "day", BERLIN)
    config = MeterConfig(expected_interval_s=900)
    only = median_ms(lambda: device_consumption(config, "volume_m3", times, values, bounds), rounds)
    bare = median_ms(lambda: np.diff(values[np.searchsorted(times, bounds)]), rounds)
    print(f"1 meter x 1 year of 15-min readings ({len(times)}) -> {len(bounds) - 1} days:")
    print(f"  metering only        {only:8.2f} ms   (target < 20 ms; bare np.diff {bare:.2f} ms)")

    from fastapi.testclient import TestClient

    from api.main import create_app

    store = SQLiteStore(tmp / "year.db")
    _load_sqlite(store, {"wm-year": (times, values)}, "water")
    client = TestClient(create_app(store))
    params = {"from": "2025-01-01", "to": "2026-01-01", "interval": "day"}
    answer = client.get("/api/v1/devices/wm-year/consumption", params=params)
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["items"]) == 365
    path = "/api/v1/devices/wm-year/consumption"
    api = median_ms(lambda: client.get(path, params=params), rounds)
    read = median_ms(
        lambda: store.series("volume_m3", YEAR_START, end, devices=["wm-year"]), rounds
    )
    print(
        f"  through the API      {api:8.2f} ms   (target < 100 ms; SQLite read alone {read:.2f} ms)"
    )
    store.close()


def fleet_series(meters: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    day = to_ns(datetime(2025, 6, 2, tzinfo=BERLIN).astimezone(UTC))
    times = day - QUARTER_NS + QUARTER_NS * np.arange(98, dtype=np.int64) + 7_000_000_000
    rng = np.random.default_rng(11)
    out = {}
    for i in range(meters):
        values = 100.0 * i + np.cumsum(rng.gamma(0.5, 0.02, len(times)))
        out[f"wm-{i:05d}"] = (times, values)
    return out


Fleet = dict[str, tuple[np.ndarray, np.ndarray]]


def _load_sqlite(store: SQLiteStore, series: Fleet, medium: str) -> None:
    db = store._db()
    with db:
        db.executemany(
            "INSERT INTO counter_series (id, device, field) VALUES (?,?,?)",
            ((i + 1, device, "volume_m3") for i, device in enumerate(series)),
        )
        db.executemany(
            "INSERT INTO counters VALUES (?,?,?)",
            (
                (i + 1, int(t), float(v))
                for i, (times, values) in enumerate(series.values())
                for t, v in zip(times.tolist(), values.tolist(), strict=True)
            ),
        )
        db.executemany(
            "INSERT INTO devices (device, dev_eui, decoder, medium, meter, first_ns, last_ns,"
            " uplinks, last_f_cnt) VALUES (?,?,?,?,?,?,?,?,?)",
            (
                (d, "", "", medium, "", int(t[0]), int(t[-1]), len(t), 0)
                for d, (t, _) in series.items()
            ),
        )


def _load_influx(base: str, database: str, series: Fleet) -> None:
    with httpx.Client(base_url=base, timeout=120) as client:
        client.post("/query", data={"q": f'CREATE DATABASE "{database}"'}).raise_for_status()
        lines: list[str] = []
        for device, (times, values) in series.items():
            lines.extend(
                f"water,device={device} volume_m3={v!r} {t}"
                for t, v in zip(times.tolist(), values.tolist(), strict=True)
            )
            if len(lines) >= 100_000:
                _write(client, database, lines)
                lines = []
        if lines:
            _write(client, database, lines)


def _write(client: httpx.Client, database: str, lines: list[str]) -> None:
    client.post("/write", params={"db": database}, content="\n".join(lines)).raise_for_status()


def bench_fleet(meters: int, rounds: int, tmp: Path) -> None:
    series = fleet_series(meters)
    day = Window(
        datetime(2025, 6, 2, tzinfo=BERLIN), datetime(2025, 6, 3, tzinfo=BERLIN), "day", BERLIN
    )
    start, end = day.start, day.end
    print(f"fleet of {meters} meters x 1 day of 15-min readings -> daily consumption per meter:")
    sqlite = SQLiteStore(tmp / "fleet.db")
    _load_sqlite(sqlite, series, "water")
    server = start_influxd(tmp / "influxd")
    try:
        url = server.new_database_url()
        database = url.rsplit("/", 1)[-1]
        _load_influx(server.base_url, database, series)
        influx = InfluxStore(url, spool_path=tmp / "spool.db")
        stores: tuple[tuple[str, Store], ...] = (("SQLite", sqlite), ("InfluxDB", influx))
        for name, store in stores:

            def run(store: Store = store) -> None:
                reports = list(fleet_reports(store, {}, day, medium="water"))
                assert len(reports) == meters
                assert reports[0].intervals.status[0] == "measured"

            def read_only(store: Store = store) -> None:
                store.series("volume_m3", start, end, medium="water")

            whole = median_ms(run, rounds)
            read = median_ms(read_only, rounds)
            print(
                f"  {name:9}  {whole / 1000:6.3f} s   (target < 1 s;"
                f" store read alone {read / 1000:.3f} s, metering {(whole - read) / 1000:.3f} s)"
            )
        influxd_floor(server.base_url, database, start, end, rounds)
        influx.close()
    finally:
        server.stop()
        sqlite.close()


def influxd_floor(base: str, database: str, start: datetime, end: datetime, rounds: int) -> None:
    """What influxd itself takes for the window, before any parsing on our side: the raw
    register points (what the rules need), and the cheapest question asked of every device's
    series (a count). The exact rules need the readings bracketing each bound and every step
    between them, so no correct read of the fleet costs less than a few of these."""
    window = f"time >= {to_ns(start)} AND time <= {to_ns(end)}"
    queries = {
        "raw points of the window": f"SELECT volume_m3 FROM water WHERE {window} GROUP BY device",
        "count() per device": f"SELECT count(volume_m3) FROM water WHERE {window} GROUP BY device",
    }
    with httpx.Client(base_url=base, timeout=300) as client:
        for label, q in queries.items():

            def ask(q: str = q) -> None:
                client.post(
                    "/query",
                    params={"db": database, "epoch": "ns"},
                    data={"q": q},
                    headers={"Accept": "application/x-msgpack"},
                ).raise_for_status()

            print(f"  influxd alone, {label:26} {median_ms(ask, rounds) / 1000:6.3f} s (msgpack)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meters", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"machine: {common.machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        bench_one_meter(args.rounds * 4, Path(tmp))
        bench_fleet(args.meters, args.rounds, Path(tmp))


if __name__ == "__main__":
    main()
