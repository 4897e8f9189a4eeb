"""compose.yaml, Dockerfile and .env.example: valid, complete, and accepted by lorameter.

Docker cannot run on the test machines, so this proves what can be proven without it: the file
is valid by the Compose Specification's own JSON schema, every file it mounts exists, every
stateful service has a volume, a healthcheck, a restart policy, and lorameter's environment (as
.env.example fills it in) is accepted by lorameter's Settings with no unknown variable.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from ingest.devices import load_registry
from lorameter.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = Path(__file__).parent / "data" / "compose-spec.json"
_VARIABLE = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}")


def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return document


def env_example() -> dict[str, str]:
    values = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error} (and $$ for a $)."""

    def one(match: re.Match[str]) -> str:
        name, operator, argument = match.groups()
        value = env.get(name)
        if operator in (":?", "?") and not value:
            raise KeyError(f"{name} is required: {argument}")
        if operator == ":-" and not value:
            return argument
        if operator == "-" and value is None:
            return argument
        return value or ""

    return _VARIABLE.sub(one, text).replace("$$", "$")


def test_compose_is_valid_by_the_compose_specification_schema() -> None:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.validate(compose(), schema, cls=jsonschema.Draft7Validator)


def test_the_schema_check_catches_a_broken_file() -> None:
    schema = json.loads(SCHEMA.read_text())
    broken = compose()
    broken["services"]["lorameter"]["depends_on"]["influxdb"]["condition"] = "service_ready"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema, cls=jsonschema.Draft7Validator)


def test_every_mounted_file_exists() -> None:
    mounts = [
        (name, volume.split(":")[0])
        for name, service in compose()["services"].items()
        for volume in service.get("volumes", [])
        if volume.startswith(".")
    ]
    assert len(mounts) >= 6
    missing = [(name, path) for name, path in mounts if not (ROOT / path).exists()]
    assert missing == []


def test_every_service_restarts_and_reports_health() -> None:
    services = compose()["services"]
    assert set(services) == {"mosquitto", "influxdb", "grafana", "lorameter"}
    for name, service in services.items():
        assert service["restart"] == "unless-stopped", name
        assert service["healthcheck"]["test"], name
        assert any(not v.startswith(".") for v in service.get("volumes", [])), f"{name}: state"
    named = {v.split(":")[0] for s in services.values() for v in s["volumes"] if v[0] != "."}
    assert named == set(compose()["volumes"])


def test_services_start_after_what_they_need() -> None:
    services = compose()["services"]
    assert services["grafana"]["depends_on"]["influxdb"]["condition"] == "service_healthy"
    needs = services["lorameter"]["depends_on"]
    assert needs["influxdb"]["condition"] == "service_healthy"
    assert needs["mosquitto"] == {"condition": "service_healthy", "required": False}
    assert services["mosquitto"]["profiles"] == ["broker"]


def test_lorameter_environment_is_accepted_by_its_settings(monkeypatch) -> None:
    env = env_example()
    service = compose()["services"]["lorameter"]
    assert "build" in service
    variables = {k: interpolate(str(v), env) for k, v in service["environment"].items()}
    assert all(k.startswith("LORAMETER_") for k in variables)
    fields = {f"LORAMETER_{name.upper()}" for name in Settings.model_fields}
    assert set(variables) - fields == set(), "variables lorameter would silently ignore"
    for key in [k for k in __import__("os").environ if k.startswith("LORAMETER_")]:
        monkeypatch.delenv(key)
    for key, value in variables.items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    assert settings.store_url == "influxdb://influxdb:8086/lorameter"
    assert settings.influx_token == env["INFLUXDB_TOKEN"]
    assert settings.mqtt_url == env["LORAMETER_MQTT_URL"]
    assert (settings.api_host, settings.api_port) == ("0.0.0.0", 8000)
    assert settings.timezone == env["LORAMETER_TIMEZONE"]
    assert settings.spool_path.startswith("/data/")  # on the lorameter-data volume
    assert "/data" in [v.split(":")[1] for v in service["volumes"]]
    registry_mount = next(v for v in service["volumes"] if v.endswith(":/config/devices.yaml:ro"))
    load_registry(ROOT / registry_mount.split(":")[0])  # the mounted registry loads


def test_required_secrets_fail_loudly_when_unset() -> None:
    env = env_example()
    del env["INFLUXDB_TOKEN"]
    token = compose()["services"]["lorameter"]["environment"]["LORAMETER_INFLUX_TOKEN"]
    with pytest.raises(KeyError, match="INFLUXDB_TOKEN"):
        interpolate(token, env)


def test_grafana_mounts_the_provisioning_and_dashboards() -> None:
    grafana = compose()["services"]["grafana"]
    volumes = dict(v.rsplit(":", 1)[0].split(":", 1) for v in grafana["volumes"] if v[0] == ".")
    assert volumes["./dashboards/provisioning"] == "/etc/grafana/provisioning"
    provider = yaml.safe_load(
        (ROOT / "dashboards/provisioning/dashboards/lorameter.yaml").read_text()
    )
    inside = provider["providers"][0]["options"]["path"]
    assert volumes["./dashboards/json"] == inside
    assert list((ROOT / "dashboards/json").glob("*.json"))


def test_influxdb_init_maps_the_database_for_the_v1_api() -> None:
    influxdb = compose()["services"]["influxdb"]
    assert influxdb["image"].startswith("influxdb:2.")
    init = next(v for v in influxdb["volumes"] if "/docker-entrypoint-initdb.d/" in v)
    script = (ROOT / init.split(":")[0]).read_text()
    assert "influx v1 dbrp create" in script and "--default" in script
    assert "influx v1 auth create" in script and "--read-bucket" in script
    env = influxdb["environment"]
    assert env["DOCKER_INFLUXDB_INIT_MODE"] == "setup"
    assert {"LORAMETER_DATABASE", "GRAFANA_INFLUX_USER", "GRAFANA_INFLUX_PASSWORD"} <= set(env)


def test_dockerfile_is_slim_non_root_and_health_checked() -> None:
    lines = [
        line.strip()
        for line in (ROOT / "Dockerfile").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    stages = [line for line in lines if line.startswith("FROM ")]
    assert all("-slim" in stage for stage in stages)
    final = lines[lines.index(next(s for s in reversed(lines) if s.startswith("FROM "))) :]
    user = [line.split()[1] for line in final if line.startswith("USER ")]
    assert user and user[-1] not in ("root", "0")
    text = "\n".join(final)
    assert "HEALTHCHECK" in text and "/health" in text
    for line in lines:  # everything the image copies from the repository exists
        if line.startswith("COPY ") and "--from" not in line:
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), source
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", ".env", "*.db"} <= set(ignored)
