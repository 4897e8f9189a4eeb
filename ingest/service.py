"""The ingest service: MQTT messages through the pipeline into the batching writer."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ingest.alarm_service import AlarmService
from ingest.backfill import BackfillWorker, GapTracker, StorageApi
from ingest.devices import DeviceRegistry
from ingest.mqtt import MqttSource
from ingest.pipeline import Accepted, Pipeline, Rejected
from ingest.stats import IngestStats
from ingest.webhook import WebhookReceiver
from ingest.writer import Writer
from storage.base import Store, StoreError

__all__ = ["IngestService"]

log = logging.getLogger("lorameter.ingest")


class IngestService:
    """Receives uplinks from the broker and stores readings; ``stats`` counts everything."""

    def __init__(
        self,
        store: Store,
        devices: DeviceRegistry | None = None,
        *,
        mqtt_url: str,
        topics: list[str],
        client_id: str = "",
        qos: int = 1,
        ca_file: str = "",
        max_message_bytes: int = 256 * 1024,
        max_queue: int = 20_000,
        stall_after_s: float = 60.0,
        alarms: AlarmService | None = None,
        backfill: StorageApi | None = None,
        backfill_delay_s: float = 5.0,
        backfill_margin_s: float = 60.0,
    ) -> None:
        self.stats = IngestStats()
        self.pipeline = Pipeline(devices, max_bytes=max_message_bytes)
        self.writer = Writer(store, self.stats, max_queue=max_queue)
        self.stall_after_s = stall_after_s
        self.alarms = alarms
        if alarms is not None:
            self.writer.on_stored = alarms.on_stored
        self.webhooks = WebhookReceiver(self.pipeline, self.writer)  # POST /api/v1/ingest/*
        self.mqtt = MqttSource(
            mqtt_url, topics, self._handle, client_id=client_id, qos=qos, ca_file=ca_file,
            on_crash=self.stats.crash,
        )  # fmt: skip
        self._disconnected_since: float | None = time.monotonic()
        # Gap backfill from TTS's Storage Integration after every (re)connection (issue 12).
        self.gaps: GapTracker | None = None
        self.backfill: BackfillWorker | None = None
        if backfill is not None:
            try:
                newest = store.last_uplink_at("tts")  # persisted: a restart backfills too
            except StoreError as exc:
                log.error("cannot read the newest stored TTS uplink, no backfill on start: %s",
                          exc)  # fmt: skip
                newest = None
            self.gaps = GapTracker(newest)
            self.backfill = BackfillWorker(
                backfill, self.pipeline, self._submit_backfilled, self.gaps,
                lambda: self.mqtt.connects, delay_s=backfill_delay_s, margin_s=backfill_margin_s,
                on_crash=self.stats.crash,
            )  # fmt: skip

    def _submit_backfilled(self, outcome: Accepted | Rejected, done: Callable[[], None]) -> None:
        while not self.writer.submit(outcome, done, timeout=0.5):
            if self.mqtt.worker.stopping.is_set():
                return  # not stored: the next start backfills this window again

    def _handle(self, topic: str, message: bytes, ack: Callable[[], None]) -> None:
        started = time.monotonic()
        outcome = self.pipeline.process(topic, message, datetime.now(UTC))
        self.stats.decode_seconds.observe(time.monotonic() - started)
        if self.gaps is not None:
            raw = outcome.record.raw if isinstance(outcome, Accepted) else None
            tts = raw is not None and raw.network == "tts"
            self.gaps.observe(self.mqtt.connects, raw.received_at if raw and tts else None)
        # Back-pressure: wait while the queue is full, but never past a shutdown; a message
        # not queued is not acknowledged, so the broker keeps it.
        while not self.writer.submit(outcome, ack, timeout=0.5):
            if self.mqtt.worker.stopping.is_set():
                self.stats.count(unacked=1)
                return

    def start(self) -> None:
        self.writer.start()
        self.mqtt.start()
        if self.backfill is not None:
            self.backfill.start()
        if self.alarms is not None:
            self.alarms.start()

    def stop(self, timeout: float = 4.0) -> None:
        """Stop receiving, then store what was received; bounded by ``timeout`` s in all.

        What cannot be stored in time stays unacknowledged: the broker redelivers it.
        """
        deadline = time.monotonic() + timeout
        if self.backfill is not None:
            self.backfill.stop(timeout=min(1.0, timeout / 4))
        self.mqtt.stop(timeout=min(2.0, timeout / 2))
        self.writer.stop(timeout=max(0.5, deadline - time.monotonic() - 0.5))
        if self.alarms is not None:
            self.alarms.stop(timeout=max(0.2, deadline - time.monotonic()))

    @property
    def fatal(self) -> str | None:
        return self.mqtt.fatal

    def problems(self) -> list[str]:
        """Why ingestion does not work right now; empty when it does (/health's 503 reasons)."""
        now = time.monotonic()
        found: list[str] = []
        if self.mqtt.fatal:
            found.append(f"mqtt: {self.mqtt.fatal}")
        elif not self.mqtt.alive:
            found.append("mqtt: the network thread is not running")
        connected = self.mqtt.connected.is_set()
        if connected:
            self._disconnected_since = None
        elif self._disconnected_since is None:
            self._disconnected_since = now
        down = now - self._disconnected_since if self._disconnected_since is not None else 0.0
        if not self.mqtt.fatal and down > self.stall_after_s:
            found.append(
                f"mqtt: not connected to {self.mqtt.address} for {down:.0f} s"
                + (f" ({self.mqtt.last_error})" if self.mqtt.last_error else "")
            )
        busy = self.mqtt.busy_since
        if busy is not None and now - busy > self.stall_after_s:
            found.append(
                f"mqtt: stalled for {now - busy:.0f} s handing a message to the full writer queue"
            )
        if not self.writer.worker.alive:
            found.append("writer: the writer thread is not running")
        if self.writer.failing_since is not None:
            found.append(
                f"writer: store writes have been failing for"
                f" {now - self.writer.failing_since:.0f} s: {self.stats.last_store_error}"
            )
        age = self.writer.oldest_age_s()
        if age > self.stall_after_s:
            found.append(
                f"writer: the queue is not draining ({self.writer.depth} waiting, the oldest"
                f" for {age:.0f} s)"
            )
        return found

    def health(self) -> dict[str, Any]:
        return {
            "mqtt": {
                "broker": str(self.mqtt.address),
                "client_id": self.mqtt.client_id,
                "connected": self.mqtt.connected.is_set(),
                "thread_alive": self.mqtt.alive,
                "connects": self.mqtt.connects,
                "last_error": self.mqtt.last_error,
                "topics": self.mqtt.topics,
            },
            "writer": {"thread_alive": self.writer.worker.alive},
            "queue_depth": self.writer.depth,
            "oldest_unwritten_age_s": round(self.writer.oldest_age_s(), 3),
            "problems": self.problems(),
            "alarms": self.alarms.health() if self.alarms is not None else None,
            "backfill": self.backfill.health() if self.backfill is not None else None,
            **self.stats.snapshot(),
        }
