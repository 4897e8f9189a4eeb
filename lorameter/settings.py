"""Settings from environment variables (``LORAMETER_*``) or a TOML file given with ``--config``."""

from __future__ import annotations

import os
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "get_settings", "load_settings"]

DEFAULT_TOPICS = "v3/+/devices/+/up,application/+/device/+/event/up"


class Settings(BaseSettings):
    """Everything a deployment sets; see README "Settings"."""

    model_config = SettingsConfigDict(env_prefix="LORAMETER_", extra="ignore")

    mqtt_url: str = Field(
        "mqtt://127.0.0.1:1883",
        description="mqtt://user:pass@host:1883 or mqtts://user:pass@host:8883 (TLS, CA-verified)",
    )
    mqtt_topics: str = Field(DEFAULT_TOPICS, description="comma-separated subscriptions")
    mqtt_client_id: str = Field("", description="fixed client id; empty: lorameter-<host>-<pid>")
    mqtt_ca_file: str = Field("", description="CA bundle for a broker with a private CA")
    mqtt_qos: int = Field(1, ge=0, le=1, description="subscription QoS (TTS delivers QoS 0)")
    max_message_bytes: int = Field(256 * 1024, ge=1024, description="larger messages are rejected")

    store_url: str = Field("sqlite:///./lorameter.db", description="sqlite:///file or influxdb://")
    influx_token: str = Field("", description="InfluxDB 2.x/3.x token (Authorization: Token)")
    spool_path: str = Field(
        "./lorameter-spool.db", description="durable spool for InfluxDB writes while it is down"
    )
    spool_max_age_s: float = Field(
        3600.0, gt=0, description="a spool older than this makes /health unhealthy"
    )

    devices: str = Field("", description="device registry file (YAML)")
    rollup_interval_s: float = Field(
        900.0, ge=0, description="write consumption points for dashboards this often (0: never)"
    )
    timezone: str = Field(
        "Europe/Berlin", description="the site's zone for calendar intervals (days, months)"
    )

    alarm_mqtt_topic: str = Field(
        "lorameter/alarms/{device}/{kind}",
        description="retained alarm state published on ingest's broker; empty: no MQTT alarms",
    )
    alarm_webhook_url: str = Field("", description="HTTP endpoint POSTed each alarm event (JSON)")
    alarm_webhook_secret: str = Field(
        "", description="shared secret of the X-Lorameter-Signature HMAC-SHA256 header"
    )
    alarm_sweep_s: float = Field(60.0, gt=0, description="seconds between silent/flow sweeps")
    alarm_retry_max_s: float = Field(300.0, gt=0, description="longest wait between retries")
    api_host: str = "127.0.0.1"
    api_port: int = Field(8000, ge=0, le=65535)
    log_level: str = "INFO"

    @field_validator("alarm_webhook_url")
    @classmethod
    def _http(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("alarm_mqtt_topic")
    @classmethod
    def _topic(cls, value: str) -> str:
        try:
            topic = value.format(device="d", kind="k")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError("may only use the placeholders {device} and {kind}") from exc
        if "+" in topic or "#" in topic:
            raise ValueError("a publish topic cannot hold the wildcards + or #")
        return value

    @field_validator("mqtt_url", "store_url")
    @classmethod
    def _has_scheme(cls, value: str) -> str:
        if "://" not in value:
            raise ValueError(f"{value!r} is not a URL (expected scheme://...)")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (an IANA name like Europe/Berlin)"
            ) from None
        return value

    @property
    def topics(self) -> list[str]:
        return [t.strip() for t in self.mqtt_topics.split(",") if t.strip()]


def load_settings(config: str | Path | None = None, **overrides: Any) -> Settings:
    """Settings from a TOML file (keys without the prefix), then the environment, then overrides.

    Environment variables win over the file, so one file can serve several instances.
    """
    values: dict[str, Any] = {}
    if config is not None:
        with open(config, "rb") as handle:
            document = tomllib.load(handle)
        table = document.get("lorameter", document)
        env = {
            k.removeprefix("LORAMETER_").lower() for k in os.environ if k.startswith("LORAMETER_")
        }
        values = {k: v for k, v in table.items() if k not in env}
    values.update(overrides)
    return Settings(**values)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings from the environment (overridden in tests)."""
    return Settings()
