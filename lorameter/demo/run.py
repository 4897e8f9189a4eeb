"""``lorameter demo``: embedded broker, simulated fleet with 7 days of history, ingest, API."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from ingest.devices import DeviceRegistry, parse_registry
from ingest.service import IngestService
from lorameter.demo import simulator
from lorameter.demo.broker import start_embedded_broker
from lorameter.rollup import Rollup
from lorameter.settings import Settings
from metering.meter import MeterConfig
from storage.base import Store

__all__ = ["run_demo"]

log = logging.getLogger("lorameter.demo")

DEMO_STORE = "sqlite:///./lorameter-demo.db"


@dataclass
class FleetStatus:
    """How far the simulated fleet is: history uplinks sent of all, and the phase."""

    phase: str = "starting"  # starting | history | live
    history: int = 0
    history_total: int = 0


class Publisher:
    """Publishes the fleet's uplinks to the embedded broker (QoS 1: nothing dropped)."""

    def __init__(self, url_port: int) -> None:
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=f"demo-fleet-{os.getpid()}"
        )
        self.client.max_inflight_messages_set(200)
        self.client.max_queued_messages_set(0)
        self.client.connect("127.0.0.1", url_port)
        self.client.loop_start()
        self.published = 0

    def publish(self, topic: str, body: bytes) -> None:
        info = self.client.publish(topic, body, qos=1)
        self.published += 1
        if self.published % 200 == 0:
            info.wait_for_publish(30)  # keep the broker and ingest ahead of us

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


# The composition root's building blocks the demo reuses (lorameter/cli.py passes them in).
ServeApi = Callable[
    [Settings, Store, IngestService | None, Callable[[], None], Mapping[str, MeterConfig] | None],
    None,
]
MakeIngest = Callable[[Settings, Store, DeviceRegistry | None], IngestService]
OpenStore = Callable[[Settings], Store]


def run_demo(
    settings: Settings,
    args: argparse.Namespace,
    *,
    serve_api: ServeApi,
    ingest_service: MakeIngest,
    open_store: OpenStore,
    fail: type[Exception],
) -> int:
    """Run the demo until Ctrl-C (or ``--duration`` seconds)."""
    if args.meters < 4:
        raise fail("--meters must be at least 4 (one of each kind)")
    if "store_url" not in settings.model_fields_set:
        settings = settings.model_copy(update={"store_url": DEMO_STORE})
    if "alarm_sweep_s" not in settings.model_fields_set:  # alarms show within a minute
        settings = settings.model_copy(update={"alarm_sweep_s": 10.0})
    store = open_store(settings)
    try:
        broker = start_embedded_broker()
    except RuntimeError as exc:
        store.close()
        raise fail(str(exc)) from exc
    log.info("embedded %s broker on %s", broker.kind, broker.url)
    meters = simulator.fleet(args.meters, datetime.now(UTC))
    devices = parse_registry(simulator.registry_document(meters), "demo fleet")
    settings = settings.model_copy(update={"mqtt_url": broker.url, "mqtt_client_id": ""})
    ingest = ingest_service(settings, store, devices)
    ingest.start()
    rollup = Rollup(store, devices.meter_configs(), settings.timezone, every_s=60)
    rollup.start()
    if not ingest.mqtt.wait_connected(15):
        broker.stop()
        raise fail(f"ingest could not connect to the embedded broker: {ingest.mqtt.last_error}")
    stop = threading.Event()
    status = FleetStatus()
    publisher = Publisher(broker.port)
    fleet_thread = threading.Thread(
        target=_run_fleet,
        args=(publisher, meters, args, status, stop),
        name="demo-fleet",
        daemon=True,
    )
    progress = threading.Thread(
        target=_show_progress, args=(ingest, publisher, meters, status, stop), daemon=True
    )

    def started() -> None:
        log.info(
            "API on http://%s:%d (try /api/v1/devices, /health, /docs); Ctrl-C stops",
            settings.api_host,
            settings.api_port,
        )
        fleet_thread.start()
        progress.start()
        if args.duration:
            threading.Timer(args.duration, signal.raise_signal, (signal.SIGTERM,)).start()

    try:
        serve_api(settings, store, ingest, started, devices.meter_configs())
    finally:
        stop.set()
        rollup.stop()
        publisher.close()
        ingest.stop()
        broker.stop()
        store.close()
        s = ingest.stats.snapshot()
        log.info(
            "demo stopped: %d uplinks ingested, %d rejected, data in %s",
            s["accepted"], s["rejected_total"], settings.store_url,
        )  # fmt: skip
    return 0


def _run_fleet(
    publisher: Publisher,
    meters: list[simulator.SimMeter],
    args: argparse.Namespace,
    status: FleetStatus,
    stop: threading.Event,
) -> None:
    try:
        for topic, body in simulator.bad_messages():
            publisher.publish(topic, body)
        now = datetime.now(UTC)
        status.history_total = len(meters) * int(args.history_days * 96 + 1)
        status.phase = "history"
        for topic, body in simulator.history(meters, now, args.history_days):
            if stop.is_set():
                return
            publisher.publish(topic, body)
            status.history += 1
        status.phase = "live"
        while not stop.wait(args.live_interval):
            when = datetime.now(UTC)
            for meter in simulator.live(meters):
                publisher.publish(*meter.uplink(when))
    except Exception:  # the demo must say why its fleet stopped, not die silently
        log.exception("the simulated fleet stopped")


def _show_progress(
    ingest: IngestService,
    publisher: Publisher,
    meters: list[simulator.SimMeter],
    status: FleetStatus,
    stop: threading.Event,
) -> None:
    last = -1
    while not stop.wait(2):
        s = ingest.stats.snapshot()
        if s["received"] == last and status.phase == "live":
            continue
        last = s["received"]
        phase = (
            f"history {status.history}/{status.history_total}"
            if status.phase == "history"
            else status.phase
        )
        log.info(
            "meters %d | %s | published %d | ingested %d | rejected %d | duplicates %d",
            len(meters), phase, publisher.published, s["accepted"], s["rejected_total"],
            s["duplicates"],
        )  # fmt: skip
