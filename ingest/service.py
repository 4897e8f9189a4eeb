"""The ingest service: MQTT messages through the pipeline into the batching writer."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ingest.devices import DeviceRegistry
from ingest.mqtt import MqttSource
from ingest.pipeline import Pipeline
from ingest.writer import IngestStats, Writer
from storage.base import Store

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
    ) -> None:
        self.stats = IngestStats()
        self.pipeline = Pipeline(devices, max_bytes=max_message_bytes)
        self.writer = Writer(store, self.stats)
        self.mqtt = MqttSource(
            mqtt_url, topics, self._handle, client_id=client_id, qos=qos, ca_file=ca_file
        )

    def _handle(self, topic: str, message: bytes, ack: Callable[[], None]) -> None:
        outcome = self.pipeline.process(topic, message, datetime.now(UTC))
        self.writer.submit(outcome, ack)

    def start(self) -> None:
        self.writer.start()
        self.mqtt.start()

    def stop(self) -> None:
        """Stop receiving, then store everything already received."""
        self.mqtt.stop()
        self.writer.stop()

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
            **self.stats.snapshot(),
        }
