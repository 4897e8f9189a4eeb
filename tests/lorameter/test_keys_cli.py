"""``lorameter keys`` and the API's door through real processes: create, list, revoke; no open
API beyond loopback; a served API that asks for the key."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.services import free_port


def _env(tmp_path: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LORAMETER_")}
    env["LORAMETER_STORE_URL"] = f"sqlite:///{tmp_path}/lorameter.db"
    env["LORAMETER_SPOOL_PATH"] = str(tmp_path / "spool.db")
    env.update({f"LORAMETER_{k.upper()}": v for k, v in settings.items()})
    return env


def lorameter(tmp_path: Path, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lorameter.cli", *args],
        capture_output=True,
        text=True,
        env=_env(tmp_path, **settings),
        cwd=tmp_path,
        timeout=60,
    )


def test_create_list_revoke(tmp_path: Path) -> None:
    made = lorameter(tmp_path, "keys", "create", "--scope", "read", "--scope", "raw",
                     "--name", "grafana")  # fmt: skip
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert token.startswith("lmk_") and "\n" not in token  # the key alone on stdout
    assert "shown only this once" in made.stderr
    listed = lorameter(tmp_path, "keys", "list")
    assert "grafana" in listed.stdout and "read,raw" in listed.stdout
    assert token.rsplit("_", 1)[1] not in listed.stdout  # never the secret again
    again = lorameter(tmp_path, "keys", "create", "--scope", "read", "--name", "grafana")
    assert again.returncode == 2 and again.stderr.count("\n") == 1
    assert "an active key is named 'grafana'" in again.stderr
    bad = lorameter(tmp_path, "keys", "create", "--scope", "everything", "--name", "x")
    assert bad.returncode == 2 and "unknown scope(s) everything" in bad.stderr
    key_id = json.loads(lorameter(tmp_path, "keys", "list", "--json").stdout)["id"]
    gone = lorameter(tmp_path, "keys", "revoke", key_id)
    assert gone.returncode == 0 and "revoked key 'grafana'" in gone.stdout
    assert "0 active key(s) left" in gone.stdout
    assert "no API keys" in lorameter(tmp_path, "keys", "list").stdout
    every = [json.loads(line) for line in lorameter(tmp_path, "keys", "list", "--all",
                                                    "--json").stdout.splitlines()]  # fmt: skip
    assert every[0]["revoked_at"] is not None
    missing = lorameter(tmp_path, "keys", "revoke", "grafana")
    assert missing.returncode == 2 and "no active key" in missing.stderr


def test_no_open_api_beyond_loopback(tmp_path: Path) -> None:
    for command in ("api", "run"):
        done = lorameter(tmp_path, command, api_host="0.0.0.0", api_port=str(free_port()))
        assert done.returncode == 2, done.stderr
        assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
        assert "lorameter keys create" in done.stderr and "0.0.0.0" in done.stderr


def test_served_api_asks_for_the_key_once_one_exists(tmp_path: Path) -> None:
    port = free_port()
    token = lorameter(tmp_path, "keys", "create", "--scope", "read", "--name", "g").stdout.strip()
    env = _env(tmp_path, api_port=str(port))
    process = subprocess.Popen([sys.executable, "-m", "lorameter.cli", "api"], env=env,
                               cwd=tmp_path, stderr=subprocess.DEVNULL)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the API did not start"
            time.sleep(0.2)
        assert httpx.get(f"{base}/api/v1/devices").status_code == 401
        assert httpx.get(f"{base}/docs").status_code == 401
        bearer = {"Authorization": f"Bearer {token}"}
        assert httpx.get(f"{base}/api/v1/devices", headers=bearer).status_code == 200
        assert httpx.get(f"{base}/api/v1/dead-letters", headers=bearer).status_code == 403
        # revoked from another process: refused at the next request
        lorameter(tmp_path, "keys", "create", "--scope", "admin", "--name", "spare")
        assert lorameter(tmp_path, "keys", "revoke", "g").returncode == 0
        assert httpx.get(f"{base}/api/v1/devices", headers=bearer).status_code == 401
    finally:
        process.terminate()
        process.wait(timeout=15)
