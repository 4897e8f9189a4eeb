"""``lorameter redecode`` as a user runs it, after fixing the device registry."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.ingest.test_redecode import pulse_uplink
from tests.lorameter.test_config_errors import lorameter


def registry(tmp_path: Path, factor: float) -> str:
    path = tmp_path / "devices.yaml"
    path.write_text(
        "devices:\n  - {device: pulse-1, decoder: milesight_em300_di, medium: water,"
        f" params: {{pulse_factor: {factor}, pulse_unit: l}}}}\n"
    )
    return str(path)


def volumes(tmp_path: Path) -> list[float]:
    with sqlite3.connect(tmp_path / "lorameter.db") as db:
        rows = db.execute(
            "SELECT value FROM points WHERE field = 'volume_m3' ORDER BY time_ns"
        ).fetchall()
    return [row[0] for row in rows]


def test_redecode_dead_letters_then_history(tmp_path: Path) -> None:
    uplinks = tmp_path / "uplinks.jsonl"
    uplinks.write_text(b"\n".join(pulse_uplink(n) for n in range(3)).decode() + "\nnot json\n")
    # Replayed before the device was in the registry: all dead letters, exit 1.
    assert lorameter("replay", str(uplinks), cwd=tmp_path).returncode == 1
    devices = registry(tmp_path, 10)
    done = lorameter("redecode", "--reason", "unknown_device", cwd=tmp_path, devices=devices)
    assert done.returncode == 0, done.stderr
    assert "re-processed 3 dead letters: 3 now stored" in done.stdout
    assert volumes(tmp_path) == [10.0] * 3
    again = lorameter("redecode", cwd=tmp_path, devices=devices)
    assert "re-processed 1 dead letters: 0 now stored" in again.stdout
    assert "(not_json 1)" in again.stdout

    fixed = registry(tmp_path, 0.5)
    raw = lorameter("redecode", "--raw", "--device", "pulse-1", cwd=tmp_path, devices=fixed)
    assert raw.returncode == 0, raw.stderr
    assert "decoded 3 raw uplinks of pulse-1 again" in raw.stdout
    assert volumes(tmp_path) == [0.5] * 3


def test_redecode_usage_errors(tmp_path: Path) -> None:
    no_device = lorameter("redecode", "--raw", cwd=tmp_path)
    assert no_device.returncode == 2 and "--device" in no_device.stderr
    unknown = lorameter("redecode", "--raw", "--device", "nobody", cwd=tmp_path)
    assert unknown.returncode == 1 and "no raw uplinks" in unknown.stderr
