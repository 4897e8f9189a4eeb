"""Scale-out settings: the shared subscriptions, and each worker's own spool and session."""

from __future__ import annotations

from pathlib import Path

import pytest

from lorameter.cli import _store_identity
from lorameter.settings import Settings, load_settings
from tests.lorameter.test_config_errors import assert_one_clean_line, lorameter, uplinks


def test_a_share_group_shares_every_topic() -> None:
    settings = load_settings(mqtt_topics="v3/+/devices/+/up, application/+/device/+/event/up",
                             mqtt_share_group="meters", worker_id="2")  # fmt: skip
    assert settings.topics == [
        "$share/meters/v3/+/devices/+/up",
        "$share/meters/application/+/device/+/event/up",
    ]
    assert load_settings(mqtt_topics="v3/+/devices/+/up").topics == ["v3/+/devices/+/up"]


def test_each_worker_has_its_own_spool_and_session(tmp_path: Path) -> None:
    def worker(worker_id: str, group: str = "meters") -> Settings:
        return load_settings(
            store_url="influxdb://127.0.0.1:8086/meters", spool_path=str(tmp_path / "spool.db"),
            mqtt_share_group=group, worker_id=worker_id,
        )  # fmt: skip

    assert worker("1").spool_file == tmp_path / "spool.1.db"
    assert worker("2").spool_file == tmp_path / "spool.2.db"
    plain = load_settings(spool_path=str(tmp_path / "spool.db"))
    assert plain.spool_file == tmp_path / "spool.db"  # one process: the file as configured
    # The client id derives from this identity: distinct per worker and group, stable per worker.
    identities = {_store_identity(worker(w, g)) for w in ("1", "2") for g in ("meters", "other")}
    assert len(identities) == 4
    assert _store_identity(worker("1")) == _store_identity(worker("1"))


def test_workers_on_a_sqlite_store_differ_too(tmp_path: Path) -> None:
    def worker(worker_id: str) -> Settings:
        return load_settings(store_url=f"sqlite:///{tmp_path}/x.db", mqtt_share_group="g",
                             worker_id=worker_id)  # fmt: skip

    assert _store_identity(worker("1")) != _store_identity(worker("2"))


@pytest.mark.parametrize(
    ("settings", "words"),
    [
        ({"mqtt_share_group": "meters"}, "needs LORAMETER_WORKER_ID"),
        ({"mqtt_share_group": "a/b", "worker_id": "1"}, "LORAMETER_MQTT_SHARE_GROUP"),
        ({"mqtt_share_group": "m+", "worker_id": "1"}, "LORAMETER_MQTT_SHARE_GROUP"),
        ({"mqtt_share_group": "m", "worker_id": "a b"}, "LORAMETER_WORKER_ID"),
    ],
)
def test_bad_scale_out_settings_are_one_line_and_exit_2(
    tmp_path: Path, settings: dict[str, str], words: str
) -> None:
    assert_one_clean_line(lorameter("replay", uplinks(tmp_path), cwd=tmp_path, **settings), words)
