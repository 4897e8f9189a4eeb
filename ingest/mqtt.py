"""The MQTT subscriber (paho-mqtt 2.x): TLS, TTS credentials, resubscribe on every connect.

``mqtts://app@tenant:NNSXS.KEY@eu1.cloud.thethings.network:8883`` connects with TLS and CA
verification, username ``app@tenant`` and the API key as password. Subscriptions are made in
``on_connect``, so every reconnect resubscribes; paho reconnects with backoff (1 s to 60 s).
A refused login or a failed certificate check is fatal (retrying cannot fix it) and says what
to check; an unreachable host is logged in one line per attempt and retried.
"""

from __future__ import annotations

import logging
import os
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

from storage.redact import redact_url

__all__ = ["BrokerAddress", "MqttError", "MqttSource", "parse_mqtt_url"]

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
    ) -> None:
        self.address = parse_mqtt_url(url)
        self.topics = topics
        self.qos = qos
        self.handler = handler
        self.connected = threading.Event()
        self.fatal: str | None = None
        self.last_error = ""
        self.connects = 0
        self._stopping = threading.Event()
        # A fixed client id with a persistent session lets our own broker (ChirpStack's) keep
        # QoS 1 messages while we are away; TTS ignores both and delivers QoS 0.
        persistent = bool(client_id)
        client_id = client_id or f"lorameter-{socket.gethostname()}-{os.getpid()}"
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=not persistent,
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
        self.client.reconnect_delay_set(min_delay=1, max_delay=60)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.on_connect_fail = self._on_connect_fail
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background (retrying until it works) and start receiving."""
        self._thread = threading.Thread(target=self._connect_loop, name="lorameter-mqtt-connect")
        self._thread.daemon = True
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self.client.disconnect()
        self.client.loop_stop()
        if self._thread is not None:
            self._thread.join(5)

    def _connect_loop(self) -> None:
        delay = 1.0
        while not self._stopping.is_set():
            try:
                self.client.connect(self.address.host, self.address.port, keepalive=60)
            except ssl.SSLCertVerificationError as exc:
                self._fail(
                    f"TLS certificate of {self.address.host} not trusted ({exc.verify_message});"
                    " set LORAMETER_MQTT_CA_FILE if the broker uses a private CA"
                )
                return
            except (OSError, ssl.SSLError) as exc:
                self.last_error = f"cannot reach {self.address}: {_describe_os_error(exc)}"
                log.error("%s; retrying in %.0f s", self.last_error, delay)
                if self._stopping.wait(delay):
                    return
                delay = min(delay * 2, 60)
                continue
            self.client.loop_start()
            return

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
        self.last_error = f"reconnect to {self.address} failed"
        log.warning("%s; retrying with backoff", self.last_error)

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        mid, qos = message.mid, message.qos

        def ack() -> None:
            if qos > 0:
                client.ack(mid, qos)

        self.handler(message.topic, bytes(message.payload), ack)

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
