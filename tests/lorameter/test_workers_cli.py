"""Bad worker counts and combinations (``--workers``, LORAMETER_WORKERS) through the real
``lorameter`` command: one line, exit 2, before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.lorameter.test_config_errors import assert_one_clean_line, lorameter


@pytest.mark.parametrize(
    ("args", "settings", "words"),
    [
        (["ingest", "--workers", "0"], {}, "--workers '0'"),
        (["run", "--workers", "many"], {}, "from 1 to 64"),
        (["ingest", "--workers", "65"], {}, "from 1 to 64"),
        (["ingest"], {"workers": "abc"}, "LORAMETER_WORKERS"),
        (["ingest"], {"workers": "0"}, "LORAMETER_WORKERS"),
        (["ingest", "--workers", "2"], {"worker_id": "1"}, "unset LORAMETER_WORKER_ID"),
        (["run"], {"workers": "2", "mqtt_client_id": "mine"}, "unset it"),
    ],
)
def test_bad_worker_settings_are_one_line_and_exit_2(
    tmp_path: Path, args: list[str], settings: dict[str, str], words: str
) -> None:
    done = lorameter(*args, cwd=tmp_path, mqtt_url="mqtt://127.0.0.1:9", **settings)
    assert_one_clean_line(done)
    assert words in done.stderr
