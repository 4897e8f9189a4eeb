"""``lorameter backfill``: a window from the TTS Storage Integration (a local server speaking its
format), stored once however often it runs; bad settings in one line without the key."""

from __future__ import annotations

from pathlib import Path

from tests.ingest.test_backfill import uplink
from tests.lorameter.test_config_errors import lorameter
from tests.tts_storage import storage_server


def test_backfill_since_then_from_the_store(tmp_path: Path) -> None:
    with storage_server() as tts:
        for n in range(1, 6):
            tts.store(uplink(n))
        settings = {"mqtt_url": f"mqtts://meters@ttn:{tts.api_key}@tts.example:8883",
                    "tts_api_url": tts.url, "devices": "(unset)"}  # fmt: skip
        done = lorameter("backfill", "--since", "2025-11-20T10:02:30Z", cwd=tmp_path, **settings)
        assert done.returncode == 0, done.stderr
        assert "3 uplinks fetched" in done.stdout and "3 stored new" in done.stdout
        assert tts.requests[0]["after"] == ["2025-11-20T10:02:30Z"]
        # no --since: from the newest stored TTS uplink (10:05) less the 60 s margin
        tts.store(uplink(6))
        done = lorameter("backfill", cwd=tmp_path, **settings)
        assert done.returncode == 0, done.stderr
        assert "1 stored new, 1 were already stored" in done.stdout
        assert tts.requests[-1]["after"] == ["2025-11-20T10:04:00Z"]


def test_backfill_errors_are_one_line_without_the_key(tmp_path: Path) -> None:
    done = lorameter("backfill", "--since", "2025-11-20", cwd=tmp_path,
                     mqtt_url="mqtt://127.0.0.1:1883")  # fmt: skip
    assert done.returncode == 2
    assert "LORAMETER_TTS_API_URL" in done.stderr and "Traceback" not in done.stderr
    with storage_server() as tts:
        url = "mqtt://meters@ttn:NNSXS.SECRET@h"
        done = lorameter("backfill", "--since", "2025-11-20", cwd=tmp_path, mqtt_url=url,
                         tts_api_url=tts.url)  # fmt: skip
    assert done.returncode == 1
    assert "RIGHT_APPLICATION_TRAFFIC_READ" in done.stderr
    assert "NNSXS.SECRET" not in done.stderr + done.stdout
