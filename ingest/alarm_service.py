"""The alarm side of ingest: the engine hooked to the writer, the periodic sweep, the notifier."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import paho.mqtt.client as paho

from ingest.alarms import AlarmEngine
from ingest.notify import Notifier
from ingest.pipeline import Accepted, Rejected

__all__ = ["AlarmService", "mqtt_publisher"]

log = logging.getLogger("lorameter.alarms")


class AlarmService:
    """Runs the sweep every ``sweep_s`` seconds (``now`` = the clock) and the notifier."""

    def __init__(
        self,
        engine: AlarmEngine,
        notifier: Notifier,
        *,
        sweep_s: float = 60.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.engine = engine
        self.notifier = notifier
        self.sweep_s = sweep_s
        self.clock = clock
        self.sweeps = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lorameter-alarm-sweep", daemon=True)

    def on_stored(self, outcomes: Sequence[Accepted | Rejected]) -> None:
        """The writer's hook: evaluate the stored batch, then let the notifier send."""
        try:
            self.engine.on_stored(outcomes)
        except Exception:  # an alarm bug must never stop ingest
            log.exception("alarm evaluation failed")
        self.notifier.wake()

    def start(self) -> None:
        self.notifier.start()
        self._thread.start()

    def stop(self, timeout: float = 1.0) -> None:
        """Stop sweeping and sending within ``timeout`` s (SIGTERM must end within 10 s in all).

        The outbox is durable: a delivery or a sweep still running is done again by the next
        process, so threads still busy are left behind (daemons) with the alarm file open.
        """
        deadline = time.monotonic() + timeout
        self._stop.set()
        self.notifier.stop(timeout=0)
        if self._thread.is_alive():
            self._thread.join(max(0.0, deadline - time.monotonic()) / 2)
        self.notifier.stop(timeout=max(0.0, deadline - time.monotonic()))
        if not self._thread.is_alive() and not self.notifier.running:
            self.engine.alarms.close()

    def _run(self) -> None:
        # The first sweep right away: meters that fell silent while lorameter was stopped.
        while True:
            try:
                self.engine.sweep(self.clock())
                self.sweeps += 1
                self.notifier.wake()
            except Exception:  # the sweep must survive anything one device's data does
                log.exception("alarm sweep failed")
            if self._stop.wait(self.sweep_s):
                return

    def health(self) -> dict[str, object]:
        return {"sweeps": self.sweeps, **self.notifier.health()}


def mqtt_publisher(client: paho.Client, timeout_s: float = 10.0) -> Callable[[str, bytes], bool]:
    """Publish retained at QoS 1 on ingest's own broker connection; True once the broker has it."""

    def publish(topic: str, body: bytes) -> bool:
        if not client.is_connected():
            return False
        try:
            info = client.publish(topic, body, qos=1, retain=True)
            info.wait_for_publish(timeout_s)
            return info.is_published()
        except (RuntimeError, ValueError) as exc:
            log.debug("alarm publish to %s failed: %s", topic, exc)
            return False

    return publish
