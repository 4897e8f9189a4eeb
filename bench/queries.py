"""Query figures through the HTTP API, on SQLite and on InfluxDB.

Loads each store with ``--devices`` Elvaco CMi4110 heat meters (10,000 by default, two uplinks
each) and one more heat meter with a year of 15-minute uplinks (35,040), every uplink decoded by
the real pipeline from TTS v3 JSON, then serves the API (uvicorn, in a thread of this process,
``tests.services.serve``)
over the store and times, as medians of ``--rounds`` requests:

1. ``GET /api/v1/devices`` (target < 200 ms),
2. ``GET /api/v1/devices/<meter>/readings`` for the year, one page (target < 200 ms),
3. ``GET /health`` (target < 20 ms).

Each row is anchored in the same run to (a) the store call alone, in-process (``devices()``,
``reading_table()``, ``health()``), and (b) the HTTP floor: a request the server answers at once
(``GET /api/v1/nothing``, a 404 through the same middleware); on InfluxDB the year also to
(c) influxd alone: the store's statement for it, asked of influxd directly (MessagePack, as the
store asks), the body read but not decoded, the floor no InfluxDB store can go below. The API,
the store call and (c) are timed in interleaved rounds. Starts its own influxd (Debian's
1.6); the InfluxDB store writes through its spool, flushed before timing. The process gets
the GC settings of ``lorameter api`` (``lorameter.runtime``) unless ``--default-gc``.

    .venv/bin/python bench/queries.py [--devices 10000] [--rounds 7] [--backend sqlite|influx|both]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from api.deps import ApiOptions
from api.main import create_app
from bench import common
from decoders.registry import by_id
from ingest.pipeline import Accepted, Pipeline
from lorameter.runtime import tune_gc
from storage.base import Store
from storage.influx import InfluxStore
from storage.influx_http import MSGPACK
from storage.influx_readings import reading_statement
from storage.schema import UplinkRecord, to_ns
from storage.sqlite import SQLiteStore
from tests.helpers import tts_up
from tests.influxd import Influxd, start_influxd
from tests.services import serve

YEAR = datetime(2025, 1, 1, tzinfo=UTC)
YEAR_END = YEAR + timedelta(days=365)
YEAR_METER = "heat-year"
QUARTERS = 365 * 96


def _payload() -> bytes:
    decoder = by_id("elvaco_cmi4110")
    assert decoder is not None
    example = next(e for e in decoder.examples if e.title.startswith("standard message"))
    return bytes.fromhex(example.hex.replace(" ", ""))


def records(devices: int) -> Iterator[list[UplinkRecord]]:
    """Batches of decoded uplinks: the fleet (two each), then the year of one meter."""
    payload = _payload()
    pipeline = Pipeline()
    now = datetime.now(UTC)

    def up(device: str, n: int, at: datetime) -> UplinkRecord:
        stamp = at.isoformat().replace("+00:00", "Z")
        body = tts_up(device, payload, brand="elvaco", model="cmi4110", dev_eui="",
                      f_cnt=n, received_at=stamp)  # fmt: skip
        outcome = pipeline.process(f"v3/bench@ttn/devices/{device}/up", body, now)
        assert isinstance(outcome, Accepted), outcome
        return outcome.record

    batch: list[UplinkRecord] = []
    for i in range(devices):
        for n in (1, 2):
            batch.append(up(f"heat-{i:05}", n, YEAR + timedelta(days=200, minutes=15 * n)))
        if len(batch) >= 1000:
            yield batch
            batch = []
    for n in range(QUARTERS):
        batch.append(up(YEAR_METER, n + 1, YEAR + timedelta(minutes=15 * n, seconds=13)))
        if len(batch) >= 1000:
            yield batch
            batch = []
    yield batch


def median_ms(fn: Callable[[], object], rounds: int) -> float:
    return medians_ms([fn], rounds)[0]


def medians_ms(fns: list[Callable[[], object]], rounds: int) -> list[float]:
    """The median time of each function, over rounds that call them in turn."""
    times: list[list[float]] = [[] for _ in fns]
    for fn in fns:
        fn()  # warm-up: caches, connections, imports
    for _ in range(rounds):
        for fn, taken in zip(fns, times, strict=True):
            started = time.perf_counter()
            fn()
            taken.append((time.perf_counter() - started) * 1000)
    return [statistics.median(taken) for taken in times]


def influxd_alone(server: Influxd, store: InfluxStore) -> Callable[[], object]:
    """The year's statement, as the store sends it, asked of influxd directly."""
    statement = reading_statement(YEAR_METER, to_ns(YEAR), to_ns(YEAR_END), [], 100_001)
    client = httpx.Client(base_url=server.base_url, timeout=120)

    def ask() -> bytes:
        return (
            client.post(
                "/query",
                params={"db": store.target.database, "epoch": "ns"},
                data={"q": statement},
                headers={"Accept": MSGPACK},
            )
            .raise_for_status()
            .content
        )

    return ask


def bench(
    name: str,
    store: Store,
    devices: int,
    rounds: int,
    floor_call: Callable[[], object] | None = None,
) -> None:
    start, end = YEAR, YEAR_END
    query = {"from": start.isoformat(), "to": end.isoformat(), "limit": "100000"}
    with (
        serve(create_app(store, None, ApiOptions())) as base,
        httpx.Client(base_url=base, timeout=120) as client,
    ):

        def get(path: str, **params: str) -> httpx.Response:
            return client.get(path, params=params)

        listed = get("/api/v1/devices").json()
        year = get(f"/api/v1/devices/{YEAR_METER}/readings", **query).json()
        assert len(listed) == devices + 1, len(listed)
        assert len(year["readings"]) == QUARTERS, len(year["readings"])
        assert not year["truncated"]
        floor = median_ms(lambda: get("/api/v1/nothing"), rounds)
        rows: list[tuple[str, Callable[[], object], Callable[[], object], float]] = [
            (
                f"GET /api/v1/devices ({devices + 1} devices)",
                lambda: get("/api/v1/devices"),
                store.devices,
                200,
            ),
            (
                f"GET .../readings, 1 year ({QUARTERS} instants)",
                lambda: get(f"/api/v1/devices/{YEAR_METER}/readings", **query),
                lambda: store.reading_table(YEAR_METER, start, end, [], 100_001),
                200,
            ),
            ("GET /health", lambda: get("/health"), store.health, 20),
        ]
        print(f"{name} (HTTP floor: a 404 in {floor:.1f} ms)")
        for label, api_call, store_call, target in rows:
            floor_here = floor_call if "readings" in label else None
            api, alone, *influxd = medians_ms(
                [api_call, store_call, *([floor_here] if floor_here else [])], rounds
            )
            verdict = "met" if api < target else "NOT met"
            print(
                f"  {label:44} {api:8.1f} ms  (target < {target} ms: {verdict};"
                f" store call alone {alone:.1f} ms"
                + "".join(f"; influxd alone {ms:.1f} ms" for ms in influxd)
                + ")"
            )


def load(store: Store, devices: int) -> float:
    started = time.perf_counter()
    for batch in records(devices):
        store.write_uplinks(batch)
    if isinstance(store, InfluxStore) and not store.flush(timeout=600):
        raise SystemExit("InfluxDB did not take the uplinks within 10 minutes")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--backend", choices=("sqlite", "influx", "both"), default="both")
    parser.add_argument(
        "--default-gc", action="store_true", help="CPython's GC settings, not lorameter's"
    )
    args = parser.parse_args()
    if not args.default_gc:
        tune_gc()  # as `lorameter api` does
    print(f"machine: {common.machine()}")
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        if args.backend in ("sqlite", "both"):
            sqlite = SQLiteStore(tmp / "queries.db")
            took = load(sqlite, args.devices)
            print(f"SQLite loaded in {took:.0f} s")
            try:
                bench("SQLite", sqlite, args.devices, args.rounds)
            finally:
                sqlite.close()
        if args.backend in ("influx", "both"):
            server = start_influxd(tmp / "influxd")
            influx = InfluxStore(server.new_database_url(), spool_path=tmp / "spool.db")
            try:
                took = load(influx, args.devices)
                print(f"InfluxDB loaded in {took:.0f} s")
                bench("InfluxDB", influx, args.devices, args.rounds, influxd_alone(server, influx))
            finally:
                influx.close()
                server.stop()


if __name__ == "__main__":
    main()
