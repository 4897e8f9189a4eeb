"""Gap backfill end to end: ``lorameter run`` on a real mosquitto that goes away, and a local
server speaking the TTS Storage Integration format (TTS itself cannot run here).

TTS stores every uplink; MQTT delivers only those sent while lorameter is connected. After the
broker's return, and after a restart of lorameter, the missed ones come from the Storage
Integration: every uplink is stored exactly once, the overlap counted as duplicates.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Publisher, Running
from tests.helpers import tts_up
from tests.services import start_mosquitto
from tests.tts_storage import storage_server

pytestmark = pytest.mark.integration

ESI = bytes.fromhex("03010BB8010101A0860100000010270000")
TOPIC = "v3/meters@ttn/devices/esi-9/up"
T0 = datetime(2025, 11, 20, 10, 0, tzinfo=UTC)


def uplink(n: int) -> bytes:
    when = (T0 + timedelta(minutes=n)).isoformat().replace("+00:00", "Z")
    return tts_up("esi-9", ESI, f_port=10, brand="elv", model="elv-lw-esi", f_cnt=n,
                  received_at=when)  # fmt: skip


def test_uplinks_missed_during_an_outage_and_a_restart_are_backfilled(
    tmp_path: Path, run_lorameter
) -> None:
    db = tmp_path / "lorameter.db"

    def stored() -> list[int]:
        with sqlite3.connect(db) as conn:
            rows = conn.execute("SELECT f_cnt FROM raw_uplinks ORDER BY f_cnt").fetchall()
        return [int(r[0]) for r in rows]

    def energy_points() -> int:
        with sqlite3.connect(db) as conn:
            query = "SELECT count(*) FROM points WHERE device = 'esi-9' AND field LIKE 'energy%'"
            return int(conn.execute(query).fetchone()[0])

    broker = start_mosquitto(tmp_path / "broker")
    with storage_server() as tts:
        settings = {
            "mqtt_url": f"mqtt://meters@ttn:{tts.api_key}@127.0.0.1:{broker.port}",
            "tts_api_url": tts.url,
            "backfill_delay_s": "0",
        }
        try:
            app = run_lorameter("run", **settings)
            app.wait_for(lambda: "subscribed to" in app.output(), "the first subscription")
            app.wait_for(lambda: "nothing to backfill" in app.output(), "the first backfill")

            def live(n: int) -> None:  # TTS stores it and MQTT delivers it
                tts.store(uplink(n))
                pub = Publisher(broker.port)
                pub.send(TOPIC, uplink(n))
                pub.close()

            for n in (1, 2, 3):
                live(n)
            app.wait_for(lambda: stored() == [1, 2, 3], "the live uplinks")
            broker.stop()  # the outage: TTS goes on storing what MQTT cannot deliver
            for n in (4, 5, 6):
                tts.store(uplink(n))
            broker = start_mosquitto(tmp_path / "broker", port=broker.port)
            app.wait_for(lambda: app.output().count("subscribed to") == 2, "the reconnect", 90)
            live(7)
            app.wait_for(lambda: stored() == [1, 2, 3, 4, 5, 6, 7], "the backfill", 60)

            def report(running: Running) -> dict[str, Any]:
                last: dict[str, Any] = running.get("/health")["ingest"]["backfill"]["last"]
                return last

            # "stored" counts the writer's confirmations, which follow the rows by a moment
            app.wait_for(lambda: report(app)["stored"] == report(app)["fetched"], "the acks")
            last = report(app)
            # from 60 s before uplink 3, in pages of 2: 3 (a duplicate), 4, 5, 6, and 7 if it
            # was stored in TTS before the backfill read it (a duplicate either way)
            assert last["reason"] == "reconnection 2"
            assert last["after"] == "2025-11-20T10:02:00Z"
            assert last["finished"] and last["error"] == ""
            assert last["fetched"] in (4, 5) and last["stored"] == last["fetched"]
            assert "backfill (reconnection 2) after 2025-11-20T10:02:00Z" in app.output()
            assert app.stop() == 0

            for n in (8, 9):  # while lorameter is down
                tts.store(uplink(n))
            again = run_lorameter("run", **settings)
            again.wait_for(lambda: stored() == list(range(1, 10)), "the restart backfill", 60)
            again.wait_for(
                lambda: report(again)["finished"] and report(again)["stored"] == 3,
                "the backfill report",
            )
            health = again.get("/health")["ingest"]
            assert health["backfill"]["last"]["reason"] == "restart"
            assert health["backfill"]["last"]["after"] == "2025-11-20T10:06:00Z"
            assert (health["accepted"], health["duplicates"]) == (2, 1)  # 8, 9 new; 7 again
            assert energy_points() == 9  # one reading per uplink, none twice
            assert again.stop() == 0
            assert "Traceback" not in app.output() + again.output()
        finally:
            broker.stop()
