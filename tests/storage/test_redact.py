"""redact_url / redact_secrets: passwords and tokens never reach a log line or an error."""

from __future__ import annotations

import pytest

from storage.redact import redact_secrets, redact_url, url_password


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "mqtts://app@ttn:NNSXS.SECRET@eu1.cloud.thethings.network:8883",
            "mqtts://app@ttn:***@eu1.cloud.thethings.network:8883",
        ),
        ("influxdb://admin:pw@db:xx/meters", "influxdb://admin:***@db:xx/meters"),
        ("influxdb://admin:p@ss/w@db:8086/m", "influxdb://admin:***@db:8086/m"),
        ("influxdb://db:8086/m?u=admin&p=pw", "influxdb://db:8086/m?u=admin&p=***"),
        ("influxdb+https://db/m?token=abc#x", "influxdb+https://db/m?token=***#x"),
        ("mqtt://user@broker:1883", "mqtt://user@broker:1883"),
        ("sqlite:///./lorameter.db", "sqlite:///./lorameter.db"),
        ("not a url", "not a url"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_redact_secrets_masks_urls_and_known_secrets_in_any_spelling() -> None:
    message = "cannot reach 'mqtt://a:p%40ss@h:1' nor influxdb://u:x@h/db; token tok-123 used"
    out = redact_secrets(message, ["p@ss", "tok-123", ""])
    assert "p%40ss" not in out and "p@ss" not in out and "tok-123" not in out
    assert ":x@" not in out
    assert "mqtt://a:***@h:1" in out


def test_url_password() -> None:
    assert url_password("mqtt://app@ttn:NNSXS.A@B@host:1883/x") == "NNSXS.A@B"
    assert url_password("mqtt://host") == ""
    assert url_password("plain") == ""
