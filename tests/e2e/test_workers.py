"""``lorameter ingest --workers N`` through a real mosquitto into a real SQLite file: the workers
share the stream on ``$share/lorameter/…``; one is SIGKILLed mid-stream, the supervisor starts it
again under its worker id, and every uplink is stored, once."""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from storage import open_store
from tests.e2e.conftest import Publisher, Running
from tests.e2e.test_scaleout import STOP_LINE, uplink
from tests.services import start_mosquitto

pytestmark = pytest.mark.integration

STARTED = re.compile(r"worker (\d+) of share group (\S+) started \(pid (\d+)\)")


def stored(running: Running) -> int:
    store = open_store(running.env["LORAMETER_STORE_URL"], writer=False)
    try:
        return store.health().uplinks
    finally:
        store.close()


def two_workers(run_lorameter: Callable[..., Running], mqtt_url: str) -> Running:
    """``lorameter ingest --workers 2``, once both workers are subscribed."""
    running = run_lorameter("ingest", "--workers", "2", mqtt_url=mqtt_url, rollup_interval_s="0")
    running.wait_for(
        lambda: running.output().count("subscribed to $share/lorameter/") >= 2,
        "both workers subscribed",
    )
    return running


def test_workers_share_the_stream_and_a_killed_one_is_restarted_losing_nothing(
    tmp_path: Path, run_lorameter: Callable[..., Running]
) -> None:
    broker = start_mosquitto(tmp_path / "broker")
    try:
        running = two_workers(run_lorameter, broker.url)
        publisher = Publisher(broker.port)
        total, half = 2000, 1000
        for info in [publisher.client.publish(*uplink(n), qos=1) for n in range(half)]:
            info.wait_for_publish(30)
        running.wait_for(lambda: stored(running) >= half // 3, "a part stored", 60)
        pids = {int(n): int(pid) for n, _, pid in STARTED.findall(running.output())}
        assert sorted(pids) == [1, 2]
        assert pids[2] != running.process.pid  # the worker's own process, not the supervisor
        os.kill(pids[2], signal.SIGKILL)  # mid-stream: it holds unacknowledged messages
        for info in [publisher.client.publish(*uplink(n), qos=1) for n in range(half, total)]:
            info.wait_for_publish(30)
        publisher.close()
        running.wait_for(lambda: len(STARTED.findall(running.output())) == 3, "the restart", 30)
        running.wait_for(lambda: stored(running) == total, f"all {total} stored", 120)
        assert running.stop() == 0
        assert stored(running) == total  # every uplink, once
        output = running.output()
        assert "worker 2 (pid" in output and "restarting it" in output
        lines = {name: int(ingested) for name, ingested, _, _ in STOP_LINE.findall(output)}
        assert set(lines) == {"1", "2"}, output[-3000:]  # both stopped cleanly at the end
        assert lines["1"] > 0 and lines["2"] > 0  # the stream was shared (also after restart)
        assert "alarms are not evaluated" in output
    finally:
        broker.stop()


def test_a_worker_that_cannot_start_ends_all_with_code_2(
    tmp_path: Path, run_lorameter: Callable[..., Running]
) -> None:
    """A store the workers cannot open (a folder, not a file): each says why in one line, and
    the supervisor stops with code 2 rather than restarting them forever."""
    running = run_lorameter("ingest", workers="2", store_url=f"sqlite:///{tmp_path}")
    assert running.process.wait(60) == 2
    output = running.output()
    assert "cannot open SQLite file" in output
    assert "exited with code 2; stopping all workers" in output
    assert "restarting" not in output and "Traceback" not in output


def test_run_with_workers_serves_the_api_and_ingests_in_the_workers(
    tmp_path: Path, run_lorameter: Callable[..., Running]
) -> None:
    broker = start_mosquitto(tmp_path / "broker")
    try:
        app = run_lorameter("run", mqtt_url=broker.url, workers="2", rollup_interval_s="0")
        app.wait_for(lambda: app.output().count("subscribed to $share/lorameter/") >= 2,
                     "both workers subscribed")  # fmt: skip
        app.wait_for(lambda: app.get("/health")["status"] in ("ok", "degraded"), "the API")
        publisher = Publisher(broker.port)
        for n in range(40):
            publisher.send(*uplink(n))
        publisher.close()
        app.wait_for(lambda: stored(app) == 40, "40 uplinks stored", 60)
        devices = {d["device"] for d in app.get("/api/v1/devices")}
        assert devices == {f"esi-{n}" for n in range(40)}
        assert app.stop() == 0
        lines = {name: int(ingested) for name, ingested, _, _ in STOP_LINE.findall(app.output())}
        assert set(lines) == {"1", "2"} and sum(lines.values()) == 40
    finally:
        broker.stop()


def test_workers_end_with_a_killed_supervisor(
    tmp_path: Path, run_lorameter: Callable[..., Running]
) -> None:
    """No orphans: a SIGKILLed supervisor's workers stop cleanly (SIGTERM from the kernel), so a
    new supervisor's workers do not fight them for their MQTT sessions."""
    broker = start_mosquitto(tmp_path / "broker")
    try:
        running = two_workers(run_lorameter, broker.url)
        pids = [int(pid) for _, _, pid in STARTED.findall(running.output())]
        running.process.send_signal(signal.SIGKILL)
        running.process.wait(10)
        deadline = 30.0
        for pid in pids:
            while Path(f"/proc/{pid}").exists() and deadline > 0:
                status = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
                if status == "Z":  # exited; a zombie until reaped by init
                    break
                time.sleep(0.1)
                deadline -= 0.1
        assert deadline > 0, "a worker outlived its supervisor"
        assert len(STOP_LINE.findall(running.output())) == 2  # both stopped cleanly
    finally:
        broker.stop()
