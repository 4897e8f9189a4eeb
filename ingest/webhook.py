"""Webhook receiver: one HTTP-delivered uplink through the pipeline and writer, answered only
once it is durably kept (stored, spooled for InfluxDB, or kept as a dead letter).

TTS webhooks post the same ``ApplicationUp`` JSON as its MQTT ``up`` topic, ChirpStack's HTTP
integration the same ``up`` event JSON as its MQTT integration, so the MQTT pipeline parses both.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from ingest.pipeline import Accepted, Pipeline
from ingest.writer import Writer

__all__ = ["Receipt", "WebhookReceiver"]


@dataclass(frozen=True)
class Receipt:
    """What became of one webhook message."""

    stored: bool  # durably kept: as readings (or a duplicate of stored ones), or a dead letter
    status: str  # "stored" | "dead_letter" | "busy" (queue full) | "timeout" (not yet stored)
    reason: str = ""  # the dead-letter reason
    detail: str = ""


class WebhookReceiver:
    """Hands webhook messages to the writer and waits until they are stored."""

    def __init__(self, pipeline: Pipeline, writer: Writer, *, timeout_s: float = 10.0) -> None:
        self.pipeline = pipeline
        self.writer = writer
        self.timeout_s = timeout_s

    def accept(self, topic: str, body: bytes) -> Receipt:
        """Process and store one message; blocks up to ``timeout_s`` (call it off the loop)."""
        deadline = time.monotonic() + self.timeout_s
        outcome = self.pipeline.process(topic, body, datetime.now(UTC))
        stored = threading.Event()
        if not self.writer.submit(outcome, stored.set, timeout=self.timeout_s):
            return Receipt(False, "busy", detail="the writer queue is full; retry later")
        if not stored.wait(max(0.0, deadline - time.monotonic())):
            # It may still be stored later: a retry of the sender is then a duplicate, harmless.
            return Receipt(False, "timeout", detail="not stored in time (is the store down?)")
        if isinstance(outcome, Accepted):
            return Receipt(True, "stored")
        return Receipt(True, "dead_letter", outcome.letter.reason, outcome.letter.detail)
