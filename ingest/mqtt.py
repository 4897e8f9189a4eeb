"""The MQTT subscriber (paho-mqtt 2.x): TLS, TTS credentials, resubscribe on every connect.

``mqtts://app@tenant:NNSXS.KEY@eu1.cloud.thethings.network:8883`` connects with TLS and CA
verification, username ``app@tenant`` and the API key as password. Subscriptions are made in
``on_connect``, so every reconnect resubscribes; a lost connection is retried every second, so
ingestion resumes within about a second of the broker's return. A refused login or a failed
certificate check is fatal (retrying cannot fix it) and says what to check; an unreachable host
is logged in one line per attempt and retried.

At-least-once: the session is persistent (clean session off) under a client id that stays the
same across restarts, and messages are acknowledged only once stored, so a broker that keeps
sessions (mosquitto, ChirpStack's) redelivers whatever a crash left unacknowledged. The network
loop runs as a supervised worker: if it crashes it is logged, counted and started again.
"""

from __future__ import annotations

import hashlib
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from ingest.supervise import Worker
from storage.redact import redact_url

__all__ = ["BrokerAddress", "MqttError", "MqttSource", "default_client_id", "parse_mqtt_url"]

log = logging.getLogger("lorameter.mqtt")

# A message handler gets the topic, the body, and a function that acknowledges the message.
Handler = Callable[[str, bytes, Callable[[], None]], None]

_FATAL_CONNACK = {"Bad user name or password", "Not authorized", "Client identifier not valid"}


class MqttError(RuntimeError):
    """The broker connection cannot work as configured; the message says what to fix."""


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None

    def __str__(self) -> str:
        scheme = "mqtts" if self.tls else "mqtt"
        user = f"{self.username}@" if self.username else ""
        return f"{scheme}://{user}{self.host}:{self.port}"  # never the password


def parse_mqtt_url(url: str) -> BrokerAddress:
    """``mqtt[s]://[user[:password]@]host[:port]``; the user may contain '@' (TTS ``app@ttn``)."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
        raise MqttError(
            f"LORAMETER_MQTT_URL {redact_url(url)!r}: scheme must be mqtt:// or mqtts://"
        )
    tls = parts.scheme in ("mqtts", "ssl")
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user, colon, password = userinfo.partition(":")
    host, _, port_text = hostport.rpartition(":") if ":" in hostport else (hostport, "", "")
    if not host:
        raise MqttError(f"LORAMETER_MQTT_URL {redact_url(url)!r} names no host")
    try:
        port = int(port_text) if port_text else (8883 if tls else 1883)
    except ValueError:
        port = -1
    if not 0 < port < 65536:
        raise MqttError(f"LORAMETER_MQTT_URL: port {port_text!r} is not a number from 1 to 65535")
    return BrokerAddress(
        host=host,
        port=port,
        tls=tls,
        username=unquote(user) if user else None,
        password=unquote(password) if colon else None,
    )


def default_client_id(identity: str) -> str:
    """A client id stable across restarts: host name and ``identity`` (the store) hashed.

    22 characters, within the 23 every MQTT 3.1.1 broker must accept (MQTT 3.1.1 §3.1.3.1).
    """
    digest = hashlib.sha256(f"{socket.gethostname()}\n{identity}".encode()).hexdigest()
    return f"lorameter-{digest[:12]}"


class MqttSource:
    """Subscribes to the uplink topics and hands every message to ``handler``."""

    def __init__(
        self,
        url: str,
        topics: list[str],
        handler: Handler,
        *,
        client_id: str = "",
        qos: int = 1,
        ca_file: str = "",
        on_crash: Callable[[str, BaseException], None] | None = None,
    ) -> None:
        self.address = parse_mqtt_url(url)
        self.topics = topics
        self.qos = qos
        self.handler = handler
        self.connected = threading.Event()
        self.fatal: str | None = None
        self.last_error = ""
        self.connects = 0

        def crashed(name: str, exc: BaseException) -> None:
            self.connected.clear()  # the loop is gone: /health must not say connected
            if on_crash is not None:
                on_crash(name, exc)

        self.worker = Worker("mqtt", self._network, on_crash=crashed)
        self._stopping = self.worker.stopping
        # When the current message handler started (None when idle): a handler blocked on a
        # full writer queue shows in /health as a stalled MQTT thread.
        self.busy_since: float | None = None
        self.messages = 0
        self.client_id = client_id or default_client_id(self.address.host)
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            clean_session=False,  # the broker keeps our unacknowledged messages while away
            protocol=paho.MQTTv311,  # TTS speaks 3.1.1 only
            manual_ack=True,
        )
        if self.address.username is not None:
            self.client.username_pw_set(self.address.username, self.address.password)
        if self.address.tls:
            try:
                context = ssl.create_default_context(cafile=ca_file or None)
            except (OSError, ssl.SSLError) as exc:
                raise MqttError(
                    f"LORAMETER_MQTT_CA_FILE {ca_file}: no CA bundle there ({exc})"
                ) from None
            self.client.tls_set_context(context)
        # Back within about 1 s of the broker's return; one attempt a second never hammers it.
        self.client.reconnect_delay_set(min_delay=1, max_delay=1)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.on_connect_fail = self._on_connect_fail

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background (retrying until it works) and start receiving."""
        self.worker.start()

    def stop(self, timeout: float = 3.0) -> None:
        """Disconnect and end the network thread, waiting at most ``timeout`` s."""
        self._stopping.set()
        self.client.disconnect()
        if not self.worker.join(timeout):
            log.warning("the MQTT thread did not end within %.0f s; leaving it", timeout)

    @property
    def alive(self) -> bool:
        return self.worker.alive

    def _network(self) -> None:
        """The supervised body: connect, then run paho's loop (it reconnects) until stopped."""
        while not self._stopping.is_set():
            if not self._connect():
                return
            self.client.loop_forever(retry_first_connection=True)

    def _connect(self) -> bool:
        delay, attempts, logged = 0.5, 0, 0.0
        while not self._stopping.is_set():
            attempts += 1
            try:
                self.client.connect(self.address.host, self.address.port, keepalive=60)
            except ssl.SSLCertVerificationError as exc:
                self._fail(
                    f"TLS certificate of {self.address.host} not trusted ({exc.verify_message});"
                    " set LORAMETER_MQTT_CA_FILE if the broker uses a private CA"
                )
                return False
            except (OSError, ssl.SSLError) as exc:
                self.last_error = f"cannot reach {self.address}: {_describe_os_error(exc)}"
                if time.monotonic() - logged > 60:  # one line a minute, not one a second
                    logged = time.monotonic()
                    log.error("%s; retrying every second (attempt %d)", self.last_error, attempts)
                if self._stopping.wait(delay):
                    return False
                delay = min(delay * 2, 1.0)
                continue
            return True
        return False

    def _fail(self, message: str) -> None:
        self.fatal = message
        self.last_error = message
        log.error("%s", message)
        self._stopping.set()

    # -- callbacks (paho's network thread: keep them short) --------------------------------

    def _on_connect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            text = str(reason)
            if text in _FATAL_CONNACK:
                self._fail(
                    f"{self.address.host} refused the login as {self.address.username!r}:"
                    f" {text}. Check the username (TTS: <application-id>@<tenant>, e.g."
                    " my-app@ttn) and the API key (needs the right to read application traffic)"
                )
                threading.Thread(target=client.disconnect, daemon=True).start()
                return
            self.last_error = f"{self.address.host} refused the connection: {text}"
            log.error("%s; retrying", self.last_error)
            return
        self.connects += 1
        self.last_error = ""
        client.subscribe([(topic, self.qos) for topic in self.topics])

    def _on_subscribe(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reasons: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        refused = [t for t, r in zip(self.topics, reasons, strict=False) if r.is_failure]
        if refused:
            self.last_error = (
                f"{self.address.host} refused the subscription to {', '.join(refused)}: check"
                " LORAMETER_MQTT_TOPICS (TTS allows only v3/<application-id>@<tenant>/...)"
            )
            log.error("%s", self.last_error)
        if len(refused) < len(self.topics):
            self.connected.set()
            log.info("connected to %s, subscribed to %s", self.address, ", ".join(self.topics))

    def _on_disconnect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self.connected.clear()
        if not self._stopping.is_set():
            self.last_error = f"disconnected from {self.address}: {reason}"
            log.warning("%s; reconnecting", self.last_error)

    def _on_connect_fail(self, client: paho.Client, userdata: Any) -> None:
        if not self.last_error.startswith("reconnect"):  # one line per outage, not per second
            log.warning("reconnect to %s failed; retrying every second", self.address)
        self.last_error = f"reconnect to {self.address} failed"

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        mid, qos = message.mid, message.qos
        try:
            topic = message.topic
        except UnicodeDecodeError:  # kept as a dead letter under an escaped topic
            topic = message._topic.decode("utf-8", "backslashreplace")

        def ack() -> None:
            if qos > 0:
                client.ack(mid, qos)

        self.messages += 1
        self.busy_since = time.monotonic()
        try:
            # Whatever escapes here ends paho's loop: the worker counts it and reconnects,
            # and the broker redelivers the unacknowledged message.
            self.handler(topic, bytes(message.payload), ack)
        finally:
            self.busy_since = None

    def wait_connected(self, timeout: float) -> bool:
        """Wait for the first successful connection (False on timeout or a fatal error)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.fatal is None:
            if self.connected.wait(0.1):
                return True
        return False


def _describe_os_error(exc: BaseException) -> str:
    if isinstance(exc, socket.gaierror):
        return f"host name not found ({exc.strerror})"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is the broker running, is the port right?)"
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timed out (firewall, or wrong host?)"
    if isinstance(exc, ssl.SSLError):
        return (
            f"TLS handshake failed ({exc.reason or exc}): is this port TLS (8883) or plain (1883)?"
        )
    return (exc.strerror if isinstance(exc, OSError) else None) or str(exc)
