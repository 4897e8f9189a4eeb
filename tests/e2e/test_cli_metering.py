"""``lorameter consumption`` and ``lorameter register``: what staff without a browser run."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from storage import open_store
from tests.e2e.conftest import lorameter_env
from tests.storage.records import T0, record

pytestmark = pytest.mark.integration

START = datetime(2026, 10, 24, tzinfo=UTC)  # hourly, 2 m³ an hour, across the autumn change


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lorameter.cli", *args],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    store = open_store(f"sqlite:///{tmp_path}/m.db")
    store.write_uplinks(
        [
            record(
                "wm-9",
                (START + timedelta(hours=h) - T0).total_seconds() / 60,
                {"volume_m3": 10.0 + 2 * h},
                medium="water",
                key=f"k{h}",
            )
            for h in range(24 * 4)
        ]
    )
    store.close()
    registry = tmp_path / "devices.yaml"
    registry.write_text(yaml.safe_dump({"devices": [{"device": "wm-9", "meter": "WM-9"}]}))
    return lorameter_env(tmp_path, store_url=f"sqlite:///{tmp_path}/m.db", devices=str(registry))


def test_consumption_table_csv_and_json(env: dict[str, str]) -> None:
    args = ("consumption", "wm-9", "--from", "2026-10-25", "--to", "2026-10-27")
    table = run(*args, env=env)
    assert table.returncode == 0, table.stderr
    assert "wm-9 (meter WM-9), volume_m3 in m3, per day in Europe/Berlin" in table.stdout
    assert "2026-10-25T00:00:00+02:00          50.000  measured" in table.stdout  # 25 h
    assert "total 98.000 m3" in table.stdout
    rows = list(csv.DictReader(io.StringIO(run(*args, "--csv", env=env).stdout)))
    assert [(r["start"], r["consumption"]) for r in rows] == [
        ("2026-10-25T00:00:00+02:00", "50.0"),
        ("2026-10-26T00:00:00+01:00", "48.0"),
    ]
    body = json.loads(run(*args, "--json", "--interval", "hour", env=env).stdout)
    assert len(body["items"]) == 49 and body["total"] == 98.0


def test_register_at_a_key_date(env: dict[str, str]) -> None:
    done = run("register", "wm-9", "--at", "2026-10-26", env=env)
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    assert (body["value"], body["status"]) == (10.0 + 2 * 47, "measured")
    past = run("register", "wm-9", "--at", "2027-01-01", env=env)
    assert past.returncode == 1
    assert "after the last reading" in past.stderr and "never extrapolated" in past.stderr


def test_bad_requests_are_one_line(env: dict[str, str]) -> None:
    for args, reason in (
        (("consumption", "nobody"), "device 'nobody' not found"),
        (("consumption", "wm-9", "--interval", "week"), "--interval must be one of"),
        (("consumption", "wm-9", "--tz", "Mars/Base"), "unknown time zone"),
        (("register", "wm-9", "--at", "soon"), "RFC 3339"),
    ):
        done = run(*args, env=env)
        assert done.returncode in (1, 2), (args, done.stderr)
        assert reason in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
