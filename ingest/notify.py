"""Alarm notifications from the durable outbox: MQTT (retained state) and an HTTP webhook.

Each raise, clear and ack is written to the outbox in the same transaction as the alarm change
(``storage/alarms.py``); this thread delivers each channel's items in order and deletes an item
only once its receiver took it, so nothing is lost across a restart or a receiver outage
(at least once: a receiver may see an item twice after a crash mid-delivery; the
``X-Lorameter-Delivery`` header tells repeats apart). A failed item waits with exponential
backoff and holds back the items after it, so a receiver sees every alarm's events in order.

Webhook: ``POST`` with the JSON body ``{"event": "raised|cleared|acknowledged", "alarm": {...}}``
and ``X-Lorameter-Signature: sha256=<hex HMAC-SHA256 of the raw body with the shared secret>``
(the GitHub webhook convention), so the receiver can check it came from us, unchanged.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from collections.abc import Callable

import httpx

from storage.alarms import OutboxItem, SQLiteAlarms
from storage.base import StoreError

__all__ = ["Notifier", "sign"]

log = logging.getLogger("lorameter.alarms")

SIGNATURE_HEADER = "X-Lorameter-Signature"

# (topic, body) -> whether the broker took it
Publish = Callable[[str, bytes], bool]


def sign(body: bytes, secret: str) -> str:
    """The signature header's value: ``sha256=`` + hex HMAC-SHA256 of the body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Notifier:
    """Delivers the outbox to MQTT and the webhook from one background thread."""

    def __init__(
        self,
        alarms: SQLiteAlarms,
        *,
        publish: Publish | None = None,
        topic: str = "lorameter/alarms/{device}/{kind}",
        webhook_url: str = "",
        secret: str = "",
        retry_max_s: float = 300.0,
        timeout_s: float = 10.0,
    ) -> None:
        self.alarms = alarms
        self.publish = publish
        self.topic = topic
        self.webhook_url = webhook_url
        self.secret = secret
        self.retry_max_s = retry_max_s
        self.timeout_s = timeout_s
        self.delivered = 0
        self.failed = 0
        self.last_error = ""
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="lorameter-alarm-notify", daemon=True
        )

    @property
    def channels(self) -> tuple[str, ...]:
        return tuple(
            name
            for name, on in (
                ("mqtt", self.publish is not None),
                ("webhook", bool(self.webhook_url)),
            )
            if on
        )

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop delivering; what is not sent stays in the durable outbox."""
        self._stop.set()
        self._wake.set()
        if timeout > 0 and self._thread.is_alive():
            self._thread.join(min(timeout, self.timeout_s))

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        with httpx.Client(timeout=self.timeout_s) as client:
            while not self._stop.is_set():
                try:
                    self.deliver(client)
                except StoreError as exc:
                    log.error("alarm outbox: %s", exc)
                self._wake.wait(0.5)
                self._wake.clear()

    def deliver(self, client: httpx.Client) -> int:
        """Send what is due on every channel; the number delivered."""
        sent = 0
        for channel in self.channels:
            for item in self.alarms.outbox(channel, time.time()):
                if self._stop.is_set():
                    return sent
                error = self._send(client, item)
                if error is None:
                    self.alarms.delivered(item)
                    self.delivered += 1
                    sent += 1
                    continue
                delay = min(2.0**item.attempts, self.retry_max_s)
                self.failed += 1
                if error != self.last_error:
                    log.warning("alarm %s delivery failed, retrying: %s", channel, error)
                self.last_error = error
                self.alarms.retry(item, time.time() + delay, error)
                break  # the rest of this channel waits, in order
        return sent

    def _send(self, client: httpx.Client, item: OutboxItem) -> str | None:
        """None when the receiver took the item, else what went wrong."""
        if item.channel == "mqtt":
            assert self.publish is not None
            device, _, kind = item.topic.partition("/")
            topic = self.topic.format(device=device, kind=kind)
            return None if self.publish(topic, item.body) else f"broker did not take {topic}"
        headers = {
            "Content-Type": "application/json",
            "X-Lorameter-Delivery": str(item.id),
        }
        if self.secret:
            headers[SIGNATURE_HEADER] = sign(item.body, self.secret)
        try:
            response = client.post(self.webhook_url, content=item.body, headers=headers)
        except httpx.HTTPError as exc:
            return f"webhook: {type(exc).__name__}: {exc}"
        if response.is_success:
            return None
        return f"webhook answered HTTP {response.status_code}"

    def health(self) -> dict[str, object]:
        return {
            "channels": list(self.channels),
            "outbox": self.alarms.outbox_depth(),
            "delivered": self.delivered,
            "failed_attempts": self.failed,
            "last_error": self.last_error or None,
        }
