"""``lorameter replay`` reads JSON lines or one JSON document, and fails when nothing was stored."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingest.replay import ReplayError, read_messages
from tests.helpers import chirpstack_up, tts_up
from tests.lorameter.test_config_errors import lorameter

ESI = bytes.fromhex("03010BB8010101A0860100000010270000")


def uplink(n: int) -> dict[str, object]:
    message = tts_up(f"esi-{n}", ESI, f_port=10, f_cnt=n, brand="elv", model="elv-lw-esi")
    loaded: dict[str, object] = json.loads(message)
    return loaded


def test_pretty_printed_document_is_one_uplink(tmp_path: Path) -> None:
    path = tmp_path / "one.json"
    path.write_text(json.dumps(uplink(1), indent=2))
    messages = list(read_messages(path))
    assert len(messages) == 1
    assert json.loads(messages[0][1]) == uplink(1)
    done = lorameter("replay", str(path), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "replayed 1 messages" in done.stdout and "1 stored" in done.stdout


def test_array_of_uplinks_and_wrapped_ones(tmp_path: Path) -> None:
    path = tmp_path / "many.json"
    wrapped = {
        "topic": "application/x/device/a84041ffff1c0042/event/up",
        "payload": json.loads(chirpstack_up("a84041ffff1c0042", ESI)),
    }
    path.write_text(json.dumps([uplink(1), uplink(2), wrapped], indent=1))
    topics = [topic for topic, _ in read_messages(path)]
    assert topics == ["many.json:1", "many.json:2", wrapped["topic"]]
    done = lorameter("replay", str(path), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "2 stored" in done.stdout  # the ChirpStack one is an unknown device
    assert "unknown_device 1" in done.stdout


def test_json_lines_with_a_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "lines.jsonl"
    path.write_text(f"{json.dumps(uplink(1))}\n{{broken\n\n{json.dumps(uplink(2))}\n")
    assert [t for t, _ in read_messages(path)] == [
        "lines.jsonl:1",
        "lines.jsonl:2",
        "lines.jsonl:4",
    ]


def test_broken_document_is_one_line_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{\n  "end_device_ids": {\n  "x": \n}')
    with pytest.raises(ReplayError, match="line 4"):
        list(read_messages(path))
    done = lorameter("replay", str(path), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and len(done.stderr.splitlines()) == 1


def test_nothing_stored_is_exit_1_but_all_duplicates_is_fine(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.jsonl"
    garbage.write_text("not json\n{}\n")
    done = lorameter("replay", str(garbage), cwd=tmp_path)
    assert done.returncode == 1
    assert "0 stored" in done.stdout and "no uplink" in done.stderr
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps(uplink(1)) + "\n")
    assert lorameter("replay", str(good), cwd=tmp_path).returncode == 0
    again = lorameter("replay", str(good), cwd=tmp_path)
    assert again.returncode == 0 and "1 duplicates" in again.stdout


def test_decode_of_a_crashing_decoder_is_one_line(tmp_path: Path) -> None:
    done = lorameter(
        "decode", "milesight_em300_di", "01755C0367040105C8E8030000", "--fport", "85",
        "--param", "medium=[1]", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.startswith("error: milesight_em300_di")
    assert "Traceback" not in done.stderr
