"""Fixtures that run ``lorameter`` itself as a process against real services."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.services import free_port

REGISTRY_YAML = """
devices:
  - device: pulse-1
    dev_eui: 70B3D5E50000AAAA
    decoder: milesight_em300_di
    medium: water
    meter: W-42
    tags: {site: rathaus}
    params: {pulse_factor: 10, pulse_unit: l, pulse_offset: 100.5}
  - dev_eui: a84041ffff1c0042
    decoder: elv_lw_esi
    meter: E-7
"""


@dataclass
class Running:
    """A ``lorameter`` process and where its API and log are."""

    process: subprocess.Popen[bytes]
    api: str
    log: Path
    env: dict[str, str]

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def get(self, path: str, **params: Any) -> Any:
        return httpx.get(self.api + path, params=params, timeout=10).json()

    def wait_for(self, check: Callable[[], bool], what: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if check():
                    return
            except (httpx.HTTPError, KeyError, TypeError, json.JSONDecodeError):
                pass
            if self.process.poll() is not None:
                raise AssertionError(f"lorameter exited while waiting for {what}:\n{self.output()}")
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}:\n{self.output()[-3000:]}")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait()


def lorameter_env(tmp_path: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LORAMETER_")}
    env["LORAMETER_STORE_URL"] = f"sqlite:///{tmp_path}/lorameter.db"
    env["LORAMETER_SPOOL_PATH"] = str(tmp_path / "spool.db")
    env["LORAMETER_API_PORT"] = str(free_port())
    env.update({f"LORAMETER_{k.upper()}": v for k, v in settings.items()})
    return env


def start(tmp_path: Path, command: list[str], env: dict[str, str]) -> Running:
    log = tmp_path / f"lorameter-{command[0]}-{time.monotonic_ns()}.log"
    with log.open("wb") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "lorameter.cli", *command],
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=tmp_path,
        )
    return Running(process, f"http://127.0.0.1:{env['LORAMETER_API_PORT']}", log, env)


@pytest.fixture
def run_lorameter(tmp_path: Path) -> Iterator[Callable[..., Running]]:
    """Start ``lorameter <command>`` with LORAMETER_* settings; stopped after the test."""
    started: list[Running] = []
    (tmp_path / "devices.yaml").write_text(REGISTRY_YAML)

    def launch(*command: str, **settings: str) -> Running:
        settings.setdefault("devices", str(tmp_path / "devices.yaml"))
        running = start(tmp_path, list(command), lorameter_env(tmp_path, **settings))
        started.append(running)
        return running

    yield launch
    for running in started:
        running.stop()


class Publisher:
    """A paho client publishing at QoS 1 and waiting for each PUBACK."""

    def __init__(self, port: int) -> None:
        self.client = paho.Client(CallbackAPIVersion.VERSION2)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def send(self, topic: str, body: bytes) -> None:
        self.client.publish(topic, body, qos=1).wait_for_publish(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def publisher(mosquitto: Any) -> Iterator[Publisher]:
    pub = Publisher(mosquitto.port)
    yield pub
    pub.close()
