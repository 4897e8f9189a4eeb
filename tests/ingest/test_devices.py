"""The device registry file: valid entries, and one clear line for each mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.devices import RegistryError, load_registry


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "devices.yaml"
    path.write_text(text)
    return path


def test_load_and_find(tmp_path: Path) -> None:
    registry = load_registry(
        write(
            tmp_path,
            """
devices:
  - device: wm-0731
    dev_eui: 00-04-A3-0B-00-F1-C0-DE
    decoder: axioma_qalcosonic_w1
    meter: WM-2024-000731
    tags: {site: plant-3}
    meter_timezone: Europe/Berlin
  - dev_eui: 70B3D5E50000AAAA
    decoder: milesight_em300_di
    medium: water
    params: {pulse_factor: 10}
""",
        )
    )
    assert len(registry) == 2
    entry = registry.find("anything", "0004A30B00F1C0DE")
    assert entry is not None and entry.name == "wm-0731"
    assert registry.find("wm-0731", "") is entry
    pulse = registry.find("", "70b3d5e50000aaaa")
    assert pulse is not None and pulse.name == "70b3d5e50000aaaa"
    assert pulse.decoder_params() == {"pulse_factor": 10, "medium": "water"}
    assert str(entry.timezone) == "Europe/Berlin"


def test_no_file_means_empty_registry() -> None:
    assert len(load_registry("")) == 0


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("devices: [{device: a, medium: steam}]", "device #1: medium"),
        ("devices: [{device: a, dev_eui: XYZ}]", "16 hex digits"),
        ("devices: [{meter: M1}]", "device id or a dev_eui"),
        ("devices: [{device: a, colour: red}]", "colour"),
        ("devices: [{device: a, tags: {device: x}}]", "tag"),
        ("devices: [{device: a, meter_timezone: Mars/Olympus}]", "time zone"),
        ("devices: [{device: a}, {device: a}]", "listed twice"),
        ("devices: [{device: a, decoder: no_such_decoder}]", "'no_such_decoder' does not exist"),
        ("devices: [{device: a, decoder: milesight_em300_di}]", "no fixed medium"),
        ("devices: [{device: a, decoder: netvox_r718h, params: {pulse_facto: 10}}]", "no param"),
        (
            "devices: [{device: a, decoder: axioma_qalcosonic_w1, params: {log_interval_s: x}}]",
            "log_interval_s must be int",
        ),
        ("devices: [{device: a, decoder: sensus_iperl, params: {aes_key: '00'}}]", "32 hex"),
        ("- just a list", "'devices:' list"),
        ("devices: [unclosed", "not valid YAML"),
    ],
)
def test_mistakes_are_named(tmp_path: Path, text: str, words: str) -> None:
    with pytest.raises(RegistryError, match=words):
        load_registry(write(tmp_path, text))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="cannot read"):
        load_registry(tmp_path / "nope.yaml")
