"""Settings from environment variables (``LORAMETER_*``) or a TOML file given with ``--config``."""

from __future__ import annotations

import logging
import os
import re
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ingest.mqtt import MqttError, parse_mqtt_url
from storage.redact import redact_url

__all__ = ["Settings", "SettingsError", "get_settings", "load_settings"]

OPENABLE_PATHS = frozenset({"/health", "/metrics"})
DEFAULT_TOPICS = "v3/+/devices/+/up,application/+/device/+/event/up"
_LOG_LEVELS = tuple(
    name for name in logging.getLevelNamesMapping() if name not in ("NOTSET", "WARN", "FATAL")
)


_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")


class SettingsError(ValueError):
    """A settings file that cannot be used; the message names the file and the problem."""


class Settings(BaseSettings):
    """Everything a deployment sets; see README "Settings"."""

    model_config = SettingsConfigDict(env_prefix="LORAMETER_", extra="ignore")

    mqtt_url: str = Field(
        "mqtt://127.0.0.1:1883",
        description="mqtt://user:pass@host:1883 or mqtts://user:pass@host:8883 (TLS, CA-verified)",
    )
    mqtt_topics: str = Field(DEFAULT_TOPICS, description="comma-separated subscriptions")
    mqtt_client_id: str = Field("", description="client id; empty: derived from host and store")
    mqtt_ca_file: str = Field("", description="CA bundle for a broker with a private CA")
    mqtt_qos: int = Field(1, ge=0, le=1, description="subscription QoS (TTS delivers QoS 0)")
    mqtt_share_group: str = Field(
        "",
        description="scale-out: subscribe as $share/<group>/<topic>, so the workers of one group"
        " share the stream (each message goes to one of them); needs LORAMETER_WORKER_ID",
    )
    worker_id: str = Field(
        "",
        description="this worker's name, unique among the group's workers on one host (e.g. 1,"
        " 2, 3): its MQTT client id and spool file derive from it, so a restart finds them again",
    )
    workers: int = Field(
        1,
        ge=1,
        le=64,
        description="`lorameter ingest`/`run`: this many ingest worker processes on the shared"
        " subscription of LORAMETER_MQTT_SHARE_GROUP (default group: lorameter), to use every"
        " core; alarms are evaluated only with 1",
    )
    max_message_bytes: int = Field(256 * 1024, ge=1024, description="larger messages are rejected")
    tts_api_url: str = Field(
        "",
        description="TTS base URL for the Storage Integration backfill; empty: https://<MQTT"
        " host> when the MQTT user is app@tenant; off: no backfill",
    )
    tts_application: str = Field("", description="TTS application id; empty: from the MQTT user")
    tts_api_key: str = Field("", description="TTS API key; empty: the MQTT password")
    backfill_delay_s: float = Field(
        5.0, ge=0, description="wait after a (re)connection before backfilling"
    )
    backfill_margin_s: float = Field(
        60.0, ge=0, description="backfill from this long before the last uplink received"
    )
    webhook_secret: str = Field(
        "",
        description="shared secret the webhooks (POST /api/v1/ingest/*) require in the"
        " X-Lorameter-Webhook-Secret header; needed when the API binds beyond loopback",
    )

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
        "Europe/Berlin",
        description="the site's zone: calendar intervals, key dates, a date alone in from/to",
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
    api_max_body_bytes: int = Field(
        1024 * 1024, ge=1024, description="larger request bodies are refused with 413"
    )
    api_open_paths: str = Field(
        "/health,/metrics",
        description="paths answered without an API key even when keys exist (comma-separated;"
        " empty: they need a key with the read scope)",
    )
    api_decode_timeout_s: float = Field(
        2.0, gt=0, le=60, description="time budget of one decode request (else 422)"
    )
    log_level: str = "INFO"

    @field_validator("alarm_webhook_url", "tts_api_url")  # tts_api_url may also be "off"
    @classmethod
    def _http(cls, value: str) -> str:
        if value and value != "off" and not value.startswith(("http://", "https://")):
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

    @field_validator("mqtt_url")
    @classmethod
    def _mqtt_url(cls, value: str) -> str:
        try:
            parse_mqtt_url(value)
        except MqttError as exc:  # its message already hides the password
            raise ValueError(str(exc).removeprefix("LORAMETER_MQTT_URL ")) from None
        return value

    @field_validator("store_url")
    @classmethod
    def _store_url(cls, value: str) -> str:
        shown = redact_url(value)
        parts = urlsplit(value)
        if parts.scheme == "sqlite":
            if not value.startswith("sqlite:///") or not value.removeprefix("sqlite:///"):
                raise ValueError(
                    f"{shown}: use sqlite:///relative/file.db or sqlite:////abs/file.db"
                )
            return value
        if parts.scheme not in ("influxdb", "influxdb+http", "influxdb+https"):
            raise ValueError(f"{shown}: the scheme must be sqlite:// or influxdb://")
        try:
            parts.port  # noqa: B018 -- urlsplit checks the port only when asked
        except ValueError:
            raise ValueError(f"{shown}: the port is not a number from 0 to 65535") from None
        if not parts.hostname:
            raise ValueError(f"{shown}: no host (influxdb://host:8086/database)")
        if not parts.path.strip("/"):
            raise ValueError(f"{shown}: no database (influxdb://host:8086/database)")
        return value

    @field_validator("mqtt_ca_file", "devices")
    @classmethod
    def _readable_file(cls, value: str) -> str:
        if value and not Path(value).is_file():
            raise ValueError(f"{value}: no such file")
        return value

    @field_validator("spool_path")
    @classmethod
    def _creatable_file(cls, value: str) -> str:
        # As for the SQLite file: only the file's own folder may be created, never a tree.
        folder = Path(value).parent
        if not folder.is_dir() and not folder.parent.is_dir():
            raise ValueError(f"folder {folder} does not exist, nor does {folder.parent}")
        return value

    @field_validator("mqtt_share_group")
    @classmethod
    def _share_group(cls, value: str) -> str:
        # MQTT 5.0 section 4.8.2: a ShareName is at least one character and holds no / + #.
        if value and not _NAME.fullmatch(value):
            raise ValueError(
                f"{value!r}: a share group is letters, digits, '.', '_' or '-' (at most 64)"
            )
        return value

    @field_validator("worker_id")
    @classmethod
    def _worker_id(cls, value: str) -> str:
        if value and not _NAME.fullmatch(value):
            raise ValueError(f"{value!r}: letters, digits, '.', '_' or '-' (at most 64)")
        return value

    @model_validator(mode="after")
    def _worker_of_a_group(self) -> Settings:
        if self.workers > 1:
            if self.worker_id:
                raise ValueError(
                    "LORAMETER_WORKERS starts the workers 1..N itself: unset LORAMETER_WORKER_ID"
                )
            if self.mqtt_client_id:
                raise ValueError(
                    "LORAMETER_MQTT_CLIENT_ID names one MQTT session, but each of the"
                    " LORAMETER_WORKERS needs its own (derived from its worker id): unset it"
                )
            return self
        if self.mqtt_share_group and not self.worker_id:
            raise ValueError(
                "LORAMETER_MQTT_SHARE_GROUP needs LORAMETER_WORKER_ID, a name unique among the"
                " workers on this host (e.g. 1, 2, 3): a restarted worker with the same id finds"
                " its MQTT session and its spool again"
            )
        return self

    @field_validator("api_open_paths")
    @classmethod
    def _open_paths(cls, value: str) -> str:
        paths = {p.strip() for p in value.split(",") if p.strip()}
        if paths - OPENABLE_PATHS:
            raise ValueError(
                f"only {' and '.join(sorted(OPENABLE_PATHS))} can be opened;"
                f" not {', '.join(sorted(paths - OPENABLE_PATHS))}"
            )
        return value

    @property
    def open_paths(self) -> frozenset[str]:
        """Paths served without a key (``LORAMETER_API_OPEN_PATHS``)."""
        return frozenset(p.strip() for p in self.api_open_paths.split(",") if p.strip())

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        level = value.upper()
        if level not in _LOG_LEVELS:
            raise ValueError(f"{value!r} is not one of {', '.join(_LOG_LEVELS)}")
        return level

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (e.g. Europe/Berlin, UTC)") from None
        return value

    @property
    def zone(self) -> ZoneInfo:
        """The local time zone (``LORAMETER_TIMEZONE``)."""
        return ZoneInfo(self.timezone)

    @property
    def topics(self) -> list[str]:
        """The subscriptions: ``$share/<group>/<topic>`` for each topic in a share group."""
        topics = [t.strip() for t in self.mqtt_topics.split(",") if t.strip()]
        if self.mqtt_share_group:
            return [f"$share/{self.mqtt_share_group}/{topic}" for topic in topics]
        return topics

    @property
    def spool_file(self) -> Path:
        """The spool of this process: a worker of a share group has its own (``spool.<id>.db``).

        Workers on one host must not share a spool (it is locked by one sender), and a restarted
        worker must find what its predecessor left in it: both follow from the worker id.
        """
        path = Path(self.spool_path)
        if not self.mqtt_share_group:
            return path
        return path.with_name(f"{path.stem}.{self.worker_id}{path.suffix or '.db'}")


def load_settings(config: str | Path | None = None, **overrides: Any) -> Settings:
    """Settings from a TOML file (keys without the prefix), then the environment, then overrides.

    Environment variables win over the file, so one file can serve several instances.
    """
    values: dict[str, Any] = {}
    if config is not None:
        try:
            with open(config, "rb") as handle:
                document = tomllib.load(handle)
        except OSError as exc:
            raise SettingsError(f"cannot read {config}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"{config} is not valid TOML: {exc}") from None
        table = document.get("lorameter", document)
        if not isinstance(table, dict):
            raise SettingsError(f"{config}: [lorameter] must be a table")
        unknown = sorted(set(table) - set(Settings.model_fields))
        if unknown:
            raise SettingsError(
                f"{config}: unknown setting(s) {', '.join(unknown)}"
                " (keys are the LORAMETER_* names in lower case without the prefix)"
            )
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
