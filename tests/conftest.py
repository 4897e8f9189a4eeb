"""Shared fixtures: real SQLite files, a real mosquitto, a real influxd (see DESIGN.md)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.services import Mosquitto, start_mosquitto

BACKENDS = ["sqlite", "influxdb"]


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """One mosquitto broker for the session, on a free port."""
    broker = start_mosquitto(tmp_path_factory.mktemp("mosquitto"))
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def influxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One influxd (Debian's 1.6) for the session, on free ports with a temp config and data."""
    from tests.influxd import start_influxd

    server = start_influxd(tmp_path_factory.mktemp("influxd"))
    yield server
    server.stop()


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty store of each backend: a new SQLite file, or a new InfluxDB database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/lorameter.db"
    server = request.getfixturevalue("influxd")
    return str(server.new_database_url())


@pytest.fixture
def spool_path(tmp_path: Path) -> Path:
    return tmp_path / "spool.db"
