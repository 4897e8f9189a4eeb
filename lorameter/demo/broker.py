"""The demo's embedded MQTT broker: mosquitto as a child process when installed, else amqtt.

Both are real brokers speaking MQTT 3.1.1 on 127.0.0.1; nothing here is a stand-in.
"""

from __future__ import annotations

import asyncio
import ctypes
import getpass
import logging
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["EmbeddedBroker", "start_embedded_broker"]

log = logging.getLogger("lorameter.broker")


class EmbeddedBroker:
    """A running broker; ``url`` to connect, ``stop()`` to end it."""

    def __init__(self, kind: str, port: int, stopper: Any) -> None:
        self.kind = kind
        self.port = port
        self._stopper = stopper

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self._stopper()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def _mosquitto_binary() -> str | None:
    for candidate in (shutil.which("mosquitto"), "/usr/sbin/mosquitto"):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def _die_with_parent() -> None:
    """In the child: ask Linux to end the broker when the demo process dies, even by SIGKILL."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def start_embedded_broker(prefer: str = "auto") -> EmbeddedBroker:
    """Start a broker on a free loopback port: mosquitto if installed (or asked), else amqtt."""
    port = _free_port()
    binary = _mosquitto_binary()
    if prefer in ("auto", "mosquitto") and binary:
        folder = Path(tempfile.mkdtemp(prefix="lorameter-broker-"))
        config = folder / "mosquitto.conf"
        config.write_text(
            f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            "max_inflight_messages 100\nmax_queued_messages 100000\n"
            # stay the current user: dropping privileges would also drop _die_with_parent
            f"user {getpass.getuser()}\n"
        )
        process = subprocess.Popen(
            [binary, "-c", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        if _wait_for_port(port, 10):

            def stop() -> None:
                process.terminate()
                try:
                    process.wait(5)
                except subprocess.TimeoutExpired:
                    process.kill()

            return EmbeddedBroker("mosquitto", port, stop)
        process.kill()
        log.warning("mosquitto did not start; using the embedded amqtt broker")
    return _start_amqtt(port)


def _start_amqtt(port: int) -> EmbeddedBroker:
    try:
        from amqtt.broker import Broker
    except ImportError as exc:
        raise RuntimeError(
            "the demo needs a broker: install mosquitto, or the demo extra"
            " (pip install 'lorameter[demo]'; `make demo` does this)"
        ) from exc

    ready = threading.Event()
    loop = asyncio.new_event_loop()
    failure: list[BaseException] = []
    holder: dict[str, Any] = {}

    async def serve() -> None:
        broker = Broker(
            {
                "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
                "plugins": {
                    "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
                },
            },
            loop=loop,
        )
        holder["broker"] = broker
        await broker.start()
        ready.set()

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(serve())
            loop.run_forever()
        except BaseException as exc:  # reported to the starting thread
            failure.append(exc)
            ready.set()

    for name in ("amqtt", "transitions"):
        logging.getLogger(name).setLevel(logging.WARNING)
    thread = threading.Thread(target=run, name="lorameter-amqtt", daemon=True)
    thread.start()
    if not ready.wait(15) or failure:
        raise RuntimeError(f"the embedded amqtt broker did not start: {failure[:1]}")

    def stop() -> None:
        broker = holder.get("broker")
        if broker is not None:
            asyncio.run_coroutine_threadsafe(broker.shutdown(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)

    return EmbeddedBroker("amqtt", port, stop)
