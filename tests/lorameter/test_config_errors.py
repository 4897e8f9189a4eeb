"""Bad settings through the real ``lorameter`` command: one line, exit 2, no traceback or secret."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import tts_up

SECRET = "S3cret-PW"
TOKEN = "tok-4F9x-very-secret"


def lorameter(*args: str, cwd: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LORAMETER_")}
    env["LORAMETER_STORE_URL"] = f"sqlite:///{cwd}/lorameter.db"
    env["LORAMETER_SPOOL_PATH"] = str(cwd / "spool.db")
    env.update({f"LORAMETER_{k.upper()}": v for k, v in settings.items()})
    env = {k: v for k, v in env.items() if v != "(unset)"}
    return subprocess.run(
        [sys.executable, "-m", "lorameter.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=60,
    )


def uplinks(tmp_path: Path) -> str:
    path = tmp_path / "uplinks.jsonl"
    path.write_text(tts_up("esi-9", bytes.fromhex("03010BB8010101A0860100000010270000"),
                           f_port=10, brand="elv", model="elv-lw-esi").decode() + "\n")  # fmt: skip
    return str(path)


def assert_one_clean_line(done: subprocess.CompletedProcess[str], *words: str) -> None:
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in done.stderr
    for secret in (SECRET, TOKEN):
        assert secret not in done.stderr + done.stdout
    for word in words:
        assert word in lines[0], lines[0]


# Every path by which a setting is refused, each with secrets in the URLs and the token set.
CASES = [
    ({"store_url": f"influxdb://admin:{SECRET}@db.example:xx/meters"}, "port is not a number"),
    ({"store_url": f"influxdb://admin:{SECRET}@db.example:8086"}, "no database"),
    ({"store_url": f"postgres://admin:{SECRET}@db.example/meters"}, "sqlite:// or influxdb://"),
    ({"store_url": f"admin:{SECRET}@db.example"}, "sqlite:// or influxdb://"),
    ({"store_url": "sqlite://"}, "sqlite:///"),
    ({"mqtt_url": f"http://app@ttn:{SECRET}@eu1.cloud.thethings.network"}, "mqtt://"),
    ({"mqtt_url": f"mqtts://app@ttn:{SECRET}@eu1.cloud.thethings.network:88x3"}, "port"),
    ({"mqtt_url": f"mqtt://app@ttn:{SECRET}@:1883"}, "names no host"),
    ({"mqtt_url": f"mqtt://app:{SECRET}@broker:99999"}, "port"),
    ({"log_level": "verbose"}, "LORAMETER_LOG_LEVEL"),
    ({"mqtt_ca_file": "/nonexistent/ca.pem"}, "LORAMETER_MQTT_CA_FILE"),
    ({"devices": "/nonexistent/devices.yaml"}, "LORAMETER_DEVICES"),
    ({"timezone": "Mars/Olympus"}, "LORAMETER_TIMEZONE"),
    ({"api_port": "eighty"}, "LORAMETER_API_PORT"),
    ({"spool_path": "{tmp}/missing/folder/spool.db"}, "LORAMETER_SPOOL_PATH"),
]


@pytest.mark.parametrize(("settings", "words"), CASES, ids=[w for _, w in CASES])
def test_bad_setting_is_one_line_without_secrets(
    tmp_path: Path, settings: dict[str, str], words: str
) -> None:
    secrets = {
        "mqtt_url": f"mqtt://app@ttn:{SECRET}@127.0.0.1:1",
        "influx_token": TOKEN,
        **{k: v.replace("{tmp}", str(tmp_path)) for k, v in settings.items()},
    }
    assert_one_clean_line(lorameter("replay", uplinks(tmp_path), cwd=tmp_path, **secrets), words)
    assert not (tmp_path / "missing").exists()


def test_store_that_cannot_open_names_the_url_without_its_password(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    done = lorameter(
        "replay",
        uplinks(tmp_path),
        cwd=tmp_path,
        store_url=f"influxdb://admin:{SECRET}@127.0.0.1:1/meters",
        spool_path=str(not_a_folder / "spool.db"),
        influx_token=TOKEN,
    )
    assert_one_clean_line(done, "influxdb://admin:***@127.0.0.1:1/meters")


def test_sqlite_file_in_a_missing_folder_is_refused_and_nothing_created(tmp_path: Path) -> None:
    done = lorameter(
        "replay", uplinks(tmp_path), cwd=tmp_path, store_url="sqlite:///nonexistent/dir/x.db"
    )
    assert_one_clean_line(done, "nonexistent/dir does not exist")
    assert not (tmp_path / "nonexistent").exists()


def test_sqlite_file_folder_is_created_when_its_parent_exists(tmp_path: Path) -> None:
    done = lorameter("replay", uplinks(tmp_path), cwd=tmp_path, store_url="sqlite:///data/x.db")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "data" / "x.db").is_file()


@pytest.mark.parametrize(
    ("registry", "words"),
    [
        ("devices: [{device: a, decoder: no_such_decoder}]", "'no_such_decoder' does not exist"),
        ("devices: [{device: a, decoder: milesight_em300_di}]", "no fixed medium"),
    ],
)
def test_registry_mistakes_fail_at_start(tmp_path: Path, registry: str, words: str) -> None:
    (tmp_path / "devices.yaml").write_text(registry)
    done = lorameter(
        "replay", uplinks(tmp_path), cwd=tmp_path, devices=str(tmp_path / "devices.yaml")
    )
    assert_one_clean_line(done, words)


def test_unknown_key_in_the_settings_file(tmp_path: Path) -> None:
    config = tmp_path / "lorameter.toml"
    config.write_text(f'[lorameter]\nstor_url = "influxdb://u:{SECRET}@h:8086/db"\n')
    done = lorameter("--config", str(config), "replay", uplinks(tmp_path), cwd=tmp_path)
    assert_one_clean_line(done, "unknown setting(s) stor_url")


def test_bad_value_in_the_settings_file(tmp_path: Path) -> None:
    config = tmp_path / "lorameter.toml"
    config.write_text(f'store_url = "influxdb://u:{SECRET}@h:xx/db"\n')
    done = lorameter(
        "replay", uplinks(tmp_path), "--config", str(config), cwd=tmp_path, store_url="(unset)"
    )
    assert_one_clean_line(done, "LORAMETER_STORE_URL", "influxdb://u:***@h:xx/db")


@pytest.mark.parametrize("text", ["store_url = [unclosed", "lorameter = 3"])
def test_unreadable_settings_file(tmp_path: Path, text: str) -> None:
    config = tmp_path / "lorameter.toml"
    config.write_text(text)
    assert_one_clean_line(lorameter("replay", "x", "--config", str(config), cwd=tmp_path))
    assert_one_clean_line(
        lorameter("replay", "x", "--config", str(tmp_path / "none.toml"), cwd=tmp_path),
        "cannot read",
    )


@pytest.mark.parametrize("before", [True, False])
def test_config_before_or_after_the_command(tmp_path: Path, before: bool) -> None:
    config = tmp_path / "lorameter.toml"
    config.write_text(f'[lorameter]\nstore_url = "sqlite:///{tmp_path}/from-config.db"\n')
    args = ["--config", str(config)]
    file = uplinks(tmp_path)
    command = [*args, "replay", file] if before else ["replay", file, *args]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LORAMETER_")}
    done = subprocess.run(
        [sys.executable, "-m", "lorameter.cli", *command],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "from-config.db").is_file()
    assert not (tmp_path / "lorameter.db").exists()
