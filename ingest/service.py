"""The ingest service: MQTT messages through the pipeline into the batching writer."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ingest.alarm_service import AlarmService
from ingest.devices import DeviceRegistry
from ingest.mqtt import MqttSource
from ingest.pipeline import Pipeline
from ingest.writer import IngestStats, Writer
from storage.base import Store

__all__ = ["IngestService", "replay_lines"]

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
        alarms: AlarmService | None = None,
    ) -> None:
        self.stats = IngestStats()
        self.pipeline = Pipeline(devices, max_bytes=max_message_bytes)
        self.writer = Writer(store, self.stats)
        self.alarms = alarms
        if alarms is not None:
            self.writer.on_stored = alarms.on_stored
        self.mqtt = MqttSource(
            mqtt_url, topics, self._handle, client_id=client_id, qos=qos, ca_file=ca_file
        )

    def _handle(self, topic: str, message: bytes, ack: Callable[[], None]) -> None:
        outcome = self.pipeline.process(topic, message, datetime.now(UTC))
        self.writer.submit(outcome, ack)

    def start(self) -> None:
        self.writer.start()
        self.mqtt.start()
        if self.alarms is not None:
            self.alarms.start()

    def stop(self) -> None:
        """Stop receiving, then store everything already received."""
        self.mqtt.stop()
        self.writer.stop()
        if self.alarms is not None:
            self.alarms.stop()

    @property
    def fatal(self) -> str | None:
        return self.mqtt.fatal

    def health(self) -> dict[str, Any]:
        return {
            "mqtt": {
                "broker": str(self.mqtt.address),
                "connected": self.mqtt.connected.is_set(),
                "connects": self.mqtt.connects,
                "last_error": self.mqtt.last_error,
                "topics": self.mqtt.topics,
            },
            "queue_depth": self.writer.depth,
            "alarms": self.alarms.health() if self.alarms is not None else None,
            **self.stats.snapshot(),
        }


def replay_lines(
    lines: Iterable[str], writer: Writer, pipeline: Pipeline, source: str = "replay"
) -> int:
    """Feed uplink JSON lines (TTS or ChirpStack) through the pipeline; returns lines read.

    Each line is either the uplink JSON itself or ``{"topic": ..., "payload": {...}}``.
    """
    count = 0
    for n, line in enumerate(lines, 1):
        text = line.strip()
        if not text:
            continue
        count += 1
        topic, body = f"{source}:{n}", text.encode()
        try:
            wrapped = json.loads(text)
        except json.JSONDecodeError:
            wrapped = None
        if isinstance(wrapped, dict) and set(wrapped) == {"topic", "payload"}:
            topic = str(wrapped["topic"])
            body = json.dumps(wrapped["payload"]).encode()
        writer.submit(pipeline.process(topic, body, datetime.now(UTC)))
    return count


def replay_file(path: Path, writer: Writer, pipeline: Pipeline) -> int:
    """Replay a file of uplink JSON lines."""
    with path.open(encoding="utf-8", errors="replace") as handle:
        return replay_lines(handle, writer, pipeline, source=path.name)
