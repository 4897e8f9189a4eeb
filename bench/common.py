"""Shared helpers for the benchmark scripts."""

from __future__ import annotations

import os
import platform
from collections.abc import Callable
from pathlib import Path

from tests.influxd import Influxd
from tests.services import free_port

__all__ = ["lorameter_env", "machine", "uplinks_in"]


def machine() -> str:
    """CPU model, core count and Python version, e.g. "AMD EPYC 7B13, 2 cores, Python 3.11.7"."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        lines = []
    cpu = next(
        (line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")),
        platform.processor() or platform.machine(),
    )
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def uplinks_in(server: Influxd, db: str) -> Callable[[], int]:
    """Counts the uplinks in an InfluxDB database (one ``f_port`` value each), asked of influxd
    itself: a reading store's /health count of another process's writes is refreshed only now
    and then (storage/influx.py keeps it), too late for a bench's clock."""

    def count() -> int:
        result = server.query("SELECT count(f_port) FROM uplink", db=db).json()["results"][0]
        return int(result["series"][0]["values"][0][1]) if "series" in result else 0

    return count


def lorameter_env(work: Path, mqtt_url: str, store_url: str, **settings: str) -> dict[str, str]:
    """The environment of a ``lorameter`` process under a bench: this one's, without any
    LORAMETER_ setting of the caller's, plus the broker, the store, a spool and a free API port
    in ``work``, INFO logs, and ``settings`` (e.g. ``LORAMETER_WORKERS="2"``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LORAMETER_")}
    env.update(
        LORAMETER_MQTT_URL=mqtt_url,
        LORAMETER_STORE_URL=store_url,
        LORAMETER_SPOOL_PATH=str(work / "spool.db"),
        LORAMETER_API_PORT=str(free_port()),
        LORAMETER_LOG_LEVEL="INFO",
        **settings,
    )
    return env
