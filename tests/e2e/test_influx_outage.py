"""End to end: TTS uplinks through mosquitto into ``lorameter run`` writing to a real influxd that
is stopped mid-stream and started again; every reading arrives exactly once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.e2e.conftest import Publisher
from tests.helpers import tts_up
from tests.influxd import Influxd, start_influxd

pytestmark = pytest.mark.integration

ESI = bytes.fromhex("03010BB8010101A0860100000010270000")  # 10 kWh, 100 W
TOPIC = "v3/meters@ttn/devices/{}/up"
T0 = datetime(2025, 11, 20, 10, 0, tzinfo=UTC)
DEVICES = ("esi-1", "esi 2, Haus=B")  # the second id needs line-protocol escaping


@pytest.fixture
def influxd_outage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Influxd]:
    """An influxd of this test's own: it is stopped and started again."""
    server = start_influxd(tmp_path_factory.mktemp("outage-influxd"))
    yield server
    server.stop()


def uplink(n: int) -> tuple[str, bytes]:
    device = DEVICES[n % 2]
    stamp = (T0 + timedelta(seconds=n)).isoformat().replace("+00:00", "Z")
    body = tts_up(
        device, ESI, f_port=10, brand="elv", model="elv-lw-esi", f_cnt=n + 1, received_at=stamp
    )
    return TOPIC.format(device), body


def influx_rows(server: Influxd, db: str, q: str) -> list[list[Any]]:
    result = server.query(q, db=db).json()["results"][0]
    return [row for series in result.get("series", []) for row in series["values"]]


def test_nothing_is_lost_while_influxdb_is_down(
    influxd_outage: Influxd, mosquitto: Any, publisher: Publisher, run_lorameter: Any
) -> None:
    server = influxd_outage
    url = server.new_database_url()
    db = url.rsplit("/", 1)[1]
    app = run_lorameter("run", mqtt_url=mosquitto.url, store_url=url)
    app.wait_for(lambda: app.get("/health")["ingest"]["mqtt"]["connected"], "the MQTT connection")

    total = 300
    for n in range(100):
        publisher.send(*uplink(n))
    app.wait_for(lambda: app.get("/health")["ingest"]["accepted"] == 100, "the first 100")

    server.stop()  # mid-stream
    for n in range(100, 200):
        publisher.send(*uplink(n))
    app.wait_for(lambda: app.get("/health")["ingest"]["accepted"] == 200, "200 while down")

    def spooling() -> bool:
        store = app.get("/health")["store"]
        return not store["ok"] and store["error_kind"] == "unreachable" and store["spool_depth"] > 0

    app.wait_for(spooling, "/health to show the outage and the spool")
    health = app.get("/health")
    assert health["status"] == "unhealthy"
    assert "unreachable" in health["store"]["detail"]

    server.start()
    for n in range(200, total):
        publisher.send(*uplink(n))
    for n in (5, 150, 250):  # redeliveries: the same points, no duplicates
        publisher.send(*uplink(n))

    def drained() -> bool:
        store = app.get("/health")["store"]
        return bool(store["ok"] and store["spool_depth"] == 0 and store["uplinks"] == total)

    app.wait_for(drained, "the spool to drain into InfluxDB", timeout=60)
    ingest = app.get("/health")["ingest"]
    assert (ingest["accepted"], ingest["duplicates"]) == (total, 3)

    # Checked in InfluxDB itself, not through the store: every reading exactly once.
    expected = {(T0 + timedelta(seconds=n), DEVICES[n % 2]) for n in range(total)}
    readings = influx_rows(server, db, "SELECT energy_import_kwh, device FROM electricity")
    assert len(readings) == total
    got = {(datetime.fromtimestamp(t / 1e9, UTC), dev) for t, _, dev in readings}
    assert got == expected
    assert {value for _, value, _ in readings} == {10.0}
    counts = influx_rows(server, db, "SELECT count(f_cnt) FROM radio GROUP BY device")
    assert [c[1] for c in counts] == [total // 2, total // 2]
    f_cnts = influx_rows(server, db, "SELECT f_cnt FROM uplink")
    assert sorted(f for _, f in f_cnts) == list(range(1, total + 1))

    assert app.stop() == 0
    assert "Traceback" not in app.output()
