"""``lorameter`` as a user runs it: decode, replay, demo, and clear connection errors."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from paho.mqtt.enums import CallbackAPIVersion

from lorameter.demo.broker import start_embedded_broker
from tests.e2e.conftest import lorameter_env
from tests.helpers import chirpstack_up, tts_up
from tests.services import free_port, start_mosquitto

pytestmark = pytest.mark.integration

ESI = bytes.fromhex("03010BB8010101A0860100000010270000")


def lorameter(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None):
    return subprocess.run(
        [sys.executable, "-m", "lorameter.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
    )


def test_decode_prints_readings() -> None:
    done = lorameter("decode", "elv_lw_esi", ESI.hex(), "--fport", "10")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["readings"] == [{"time": None, "energy_import_kwh": 10.0, "power_w": 100.0}]


def test_decode_explains_a_rejected_payload() -> None:
    done = lorameter("decode", "elv_lw_esi", "03010BB80101", "--fport", "10")
    assert done.returncode == 1
    assert "elv_lw_esi rejected the payload" in done.stderr
    assert "^" in done.stderr  # points at the byte
    unknown = lorameter("decode", "no_such", "00")
    assert unknown.returncode == 2
    assert "lorameter decode --list" in unknown.stderr


def test_decode_list() -> None:
    done = lorameter("decode", "--list")
    assert "elvaco_cmi4110" in done.stdout
    assert "axioma_qalcosonic_w1" in done.stdout


def test_replay_file_twice_is_idempotent(tmp_path: Path) -> None:
    lines = [
        tts_up("esi-9", ESI, f_port=10, brand="elv", model="elv-lw-esi").decode(),
        json.dumps(
            {
                "topic": "application/x/device/a84041ffff1c0042/event/up",
                "payload": json.loads(chirpstack_up("a84041ffff1c0042", ESI)),
            }
        ),
        "{broken",
        "",
    ]
    (tmp_path / "uplinks.jsonl").write_text("\n".join(lines))
    (tmp_path / "devices.yaml").write_text(
        "devices: [{dev_eui: a84041ffff1c0042, decoder: elv_lw_esi}]"
    )
    env = lorameter_env(tmp_path, devices=str(tmp_path / "devices.yaml"))
    first = lorameter("replay", "uplinks.jsonl", env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "replayed 3 lines" in first.stdout
    assert "2 stored, 0 duplicates" in first.stdout
    assert "1 rejected (not_json 1)" in first.stdout
    second = lorameter("replay", "uplinks.jsonl", env=env, cwd=tmp_path)
    assert "0 stored, 2 duplicates" in second.stdout
    missing = lorameter("replay", "nope.jsonl", env=env, cwd=tmp_path)
    assert missing.returncode == 2
    assert "no such file" in missing.stderr


def test_refused_login_is_one_clear_line(tmp_path: Path, run_lorameter) -> None:
    passwords = tmp_path / "passwd"
    subprocess.run(
        ["mosquitto_passwd", "-b", "-c", str(passwords), "meters@ttn", "right-key"],
        check=True,
        capture_output=True,
    )
    broker = start_mosquitto(
        tmp_path / "auth", extra=f"allow_anonymous false\npassword_file {passwords}\n"
    )
    try:
        good = run_lorameter(
            "ingest", mqtt_url=f"mqtt://meters@ttn:right-key@127.0.0.1:{broker.port}"
        )
        good.wait_for(lambda: "subscribed to" in good.output(), "a login with the right key")
        bad = run_lorameter(
            "ingest", mqtt_url=f"mqtt://meters@ttn:NNSXS.WRONG@127.0.0.1:{broker.port}"
        )
        assert bad.process.wait(30) == 2
        output = bad.output()
        assert "refused the login as 'meters@ttn'" in output
        assert "NNSXS.WRONG" not in output  # never print the key
        assert "Traceback" not in output
    finally:
        broker.stop()


def test_unreachable_host_is_retried_with_a_clear_line(run_lorameter) -> None:
    app = run_lorameter("ingest", mqtt_url=f"mqtt://127.0.0.1:{free_port()}")
    app.wait_for(lambda: "connection refused" in app.output(), "the refusal message")
    assert app.process.poll() is None  # still trying
    assert app.stop() == 0
    assert "Traceback" not in app.output()


def _certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A private CA and a server certificate for 127.0.0.1, written as PEM files."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lorameter test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    import ipaddress

    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


def test_tls_verifies_the_broker_certificate(tmp_path: Path, run_lorameter) -> None:
    ca, cert, key = _certificates(tmp_path)
    port = free_port()
    broker = start_mosquitto(
        tmp_path / "tls", port=port, extra=f"cafile {ca}\ncertfile {cert}\nkeyfile {key}\n"
    )
    try:
        url = f"mqtts://app@ttn:NNSXS.KEY@127.0.0.1:{port}"
        trusted = run_lorameter("ingest", mqtt_url=url, mqtt_ca_file=str(ca))
        trusted.wait_for(
            lambda: "connected to mqtts://app@ttn@127.0.0.1" in trusted.output(), "TLS"
        )
        untrusted = run_lorameter("ingest", mqtt_url=url)
        assert untrusted.process.wait(30) == 2
        assert "not trusted" in untrusted.output()
        assert "LORAMETER_MQTT_CA_FILE" in untrusted.output()
        assert "Traceback" not in untrusted.output()
    finally:
        broker.stop()


def test_bad_settings_are_one_line(tmp_path: Path) -> None:
    env = lorameter_env(tmp_path, store_url="postgres://x", api_port="99999")
    done = lorameter("api", env=env, cwd=tmp_path)
    assert done.returncode == 2
    assert "LORAMETER_API_PORT" in done.stderr
    assert "Traceback" not in done.stderr
    env = lorameter_env(tmp_path, store_url="postgres://x")
    done = lorameter("api", env=env, cwd=tmp_path)
    assert done.returncode == 2
    assert "unknown store URL scheme 'postgres'" in done.stderr


def test_demo_serves_a_fleet_within_30_seconds(tmp_path: Path, run_lorameter) -> None:
    started = time.monotonic()
    demo = run_lorameter(
        "demo", "--history-days", "0.25", "--live-interval", "2", "--duration", "60"
    )
    demo.wait_for(lambda: demo.get("/health")["status"] == "ok", "the API", 30)
    demo.wait_for(lambda: len(demo.get("/api/v1/devices")) >= 30, "30 meters", 45)
    assert time.monotonic() - started < 45
    devices = demo.get("/api/v1/devices")
    assert {d["medium"] for d in devices} == {"heat", "water", "electricity"}
    heat = next(d for d in devices if d["decoder"] == "elvaco_cmi4110")
    assert heat["last_reading"]["values"]["energy_heat_kwh"] > 0
    path = f"/api/v1/devices/{heat['device']}/readings"
    # 6 hours of 15-minute history, all on the grid's own times
    demo.wait_for(lambda: len(demo.get(path)["readings"]) >= 24, "the history", 30)
    demo.wait_for(lambda: demo.get("/health")["store"]["dead_letters_total"] == 3, "dead letters")
    demo.wait_for(lambda: "meters 32 |" in demo.output(), "console progress", 10)
    assert demo.stop() == 0
    assert "demo stopped" in demo.output()


def test_embedded_amqtt_broker_carries_messages() -> None:
    broker = start_embedded_broker(prefer="amqtt")
    try:
        assert broker.kind == "amqtt"
        got: list[bytes] = []
        sub = paho.Client(CallbackAPIVersion.VERSION2)
        sub.on_message = lambda c, u, m: got.append(m.payload)
        sub.connect("127.0.0.1", broker.port)
        sub.subscribe("v3/+/devices/+/up", qos=1)
        sub.loop_start()
        time.sleep(0.5)
        pub = paho.Client(CallbackAPIVersion.VERSION2)
        pub.connect("127.0.0.1", broker.port)
        pub.loop_start()
        for i in range(50):
            pub.publish("v3/app@ttn/devices/d/up", str(i).encode(), qos=1).wait_for_publish(10)
        deadline = time.monotonic() + 10
        while len(got) < 50 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert got == [str(i).encode() for i in range(50)]
        for client in (pub, sub):
            client.disconnect()
            client.loop_stop()
    finally:
        broker.stop()


def test_api_port_in_use_is_explained(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        env = lorameter_env(tmp_path, api_port=str(sock.getsockname()[1]))
        done = lorameter("api", env=env, cwd=tmp_path)
    assert done.returncode == 2
    assert "set LORAMETER_API_PORT to a free port" in done.stderr
