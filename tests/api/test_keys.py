"""API keys at the door: every route of the app (enumerated, so none is forgotten) with no key,
a wrong key, a key lacking its scope and the right key; the login cookie; revocation."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.auth import COOKIE, route_rules
from api.deps import ApiOptions
from api.main import create_app
from ingest.pipeline import Accepted, Pipeline, Rejected
from storage import open_store
from storage.alarms import SQLiteAlarms
from storage.api_keys import SCOPES, SQLiteKeys
from storage.base import Store
from storage.schema import to_ns
from tests.api.conftest import REGISTRY, T0, esi
from tests.helpers import tts_up

ANY = "any key"  # a valid key of whatever scope
OPEN = "open"  # no key needed

# What each route needs. A route the app serves that is missing here fails
# test_every_route_is_in_the_table: a new route cannot go without a decision.
NEEDS: dict[tuple[str, str], str] = {
    ("GET", "/health"): OPEN,
    ("GET", "/metrics"): OPEN,
    ("GET", "/login"): OPEN,
    ("POST", "/login"): OPEN,
    ("POST", "/logout"): OPEN,
    ("GET", "/openapi.json"): ANY,
    ("GET", "/docs"): ANY,
    ("GET", "/docs/oauth2-redirect"): ANY,
    ("GET", "/redoc"): ANY,
    ("MOUNT", "/static-offline-docs"): ANY,
    ("MOUNT", "/static"): ANY,
    ("GET", "/api/v1/devices"): "read",
    ("GET", "/api/v1/devices/{device_id}"): "read",
    ("GET", "/api/v1/devices/{device_id}/readings"): "read",
    ("GET", "/api/v1/devices/{device_id}/consumption"): "read",
    ("GET", "/api/v1/devices/{device_id}/register"): "read",
    ("GET", "/api/v1/consumption"): "read",
    ("GET", "/api/v1/decoders"): "read",
    ("POST", "/api/v1/decode"): "read",
    ("GET", "/api/v1/alarms"): "read",
    ("GET", "/api/v1/devices/{device_id}/alarms"): "read",
    ("POST", "/api/v1/alarms/{alarm_id}/ack"): "alarms",
    ("GET", "/api/v1/dead-letters"): "raw",
    ("GET", "/"): "read",
    ("GET", "/meters/{device}"): "read",
    ("GET", "/dead-letters"): "raw",
    ("GET", "/alarms"): "read",
    ("POST", "/alarms"): "alarms",
    ("POST", "/api/v1/ingest/tts"): "ingest",
    ("POST", "/api/v1/ingest/chirpstack"): "ingest",
}

# One concrete request per route (path parameters filled, a body where one is needed).
WINDOW = {"from": T0.isoformat(), "to": (T0 + timedelta(days=1)).isoformat()}
REQUESTS: dict[tuple[str, str], dict[str, Any]] = {
    ("GET", "/api/v1/devices/{device_id}"): {"url": "/api/v1/devices/esi-1"},
    ("GET", "/api/v1/devices/{device_id}/readings"): {
        "url": "/api/v1/devices/esi-1/readings",
        "params": WINDOW,
    },
    ("GET", "/api/v1/devices/{device_id}/consumption"): {
        "url": "/api/v1/devices/esi-1/consumption",
        "params": {**WINDOW, "interval": "hour"},
    },
    ("GET", "/api/v1/devices/{device_id}/register"): {
        "url": "/api/v1/devices/esi-1/register",
        "params": {"at": (T0 + timedelta(hours=1)).isoformat()},
    },
    ("GET", "/api/v1/consumption"): {"params": {**WINDOW, "interval": "day"}},
    ("POST", "/api/v1/decode"): {
        "json": {"decoder": "elv_lw_esi", "f_port": 10, "payload_hex": esi(1000, 500).hex()}
    },
    ("GET", "/api/v1/devices/{device_id}/alarms"): {"url": "/api/v1/devices/wm-1/alarms"},
    ("POST", "/api/v1/alarms/{alarm_id}/ack"): {
        "url": "/api/v1/alarms/1/ack",
        "json": {"by": "test", "note": "seen"},
    },
    ("GET", "/meters/{device}"): {"url": "/meters/esi-1"},
    ("MOUNT", "/static-offline-docs"): {
        "method": "GET",
        "url": "/static-offline-docs/redoc.standalone.js",
    },
    ("MOUNT", "/static"): {"method": "GET", "url": "/static/style.css"},
    ("POST", "/login"): {"data": {"key": "not-a-key"}},
}


@dataclass
class World:
    """One SQLite store file holding readings, an alarm and the keys; apps over it."""

    store: Store
    alarms: SQLiteAlarms
    keys: SQLiteKeys
    path: Path

    def client(self, **options: Any) -> TestClient:
        app = create_app(
            self.store, None, ApiOptions(**options), alarms=self.alarms, keys=self.keys
        )
        return TestClient(app, follow_redirects=False)

    def open_client(self) -> TestClient:
        """The same app with no key store at all: what each request answers when open."""
        return TestClient(create_app(self.store, alarms=self.alarms), follow_redirects=False)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    path = tmp_path / "lorameter.db"
    store = open_store(f"sqlite:///{path}")
    pipeline = Pipeline(REGISTRY)
    records = []
    for i in range(8):
        when = (T0 + timedelta(minutes=15 * i)).isoformat().replace("+00:00", "Z")
        out = pipeline.process("t", tts_up("esi-1", esi(1000 + i, 500 + i), f_port=10,
                                           f_cnt=i + 1, received_at=when), T0)  # fmt: skip
        assert isinstance(out, Accepted)
        records.append(out.record)
    bad = pipeline.process("v3/x/devices/esi-1/up", b"garbage", T0)
    assert isinstance(bad, Rejected)
    store.write_uplinks(records)
    store.write_dead_letters([bad.letter])
    alarms = SQLiteAlarms(path)
    alarms.change("raise", device="wm-1", kind="leak", at_ns=to_ns(T0), reason="leak flag")
    keys = SQLiteKeys(path)
    yield World(store, alarms, keys, path)
    keys.close()
    alarms.close()
    store.close()


def _request(client: TestClient, key: tuple[str, str], headers: dict[str, str]) -> Any:
    spec = dict(REQUESTS.get(key, {}))
    method = spec.pop("method", key[0])
    url = spec.pop("url", key[1])
    return client.request(method, url, headers=headers, **spec)


def _rule_key(rule: Any) -> tuple[str, str]:
    return ("MOUNT", rule.path) if not rule.methods else (min(rule.methods - {"HEAD"}), rule.path)


def test_every_route_is_in_the_table(world: World) -> None:
    with world.client() as client:
        served = {_rule_key(rule) for rule in route_rules(client.app)}  # type: ignore[arg-type]
    assert served == set(NEEDS), "a route was added or removed: decide what it needs in NEEDS"


def test_every_route_declares_the_scope_of_the_table(world: World) -> None:
    with world.client() as client:
        rules = {_rule_key(r): r for r in route_rules(client.app)}  # type: ignore[arg-type]
    for key, need in NEEDS.items():
        declared = rules[key].scopes
        if need in SCOPES:
            assert declared == (need,), key
        elif key not in {("GET", "/health"), ("GET", "/metrics")}:
            assert declared == (), key  # docs, static files, login: a key of any scope


@pytest.mark.parametrize("route", list(NEEDS), ids=[f"{m} {p}" for m, p in NEEDS])
def test_route_with_no_key_wrong_key_lacking_scope_and_right_key(
    world: World, route: tuple[str, str]
) -> None:
    need = NEEDS[route]
    with world.open_client() as open_client:
        expected = _request(open_client, route, {}).status_code
    assert expected not in (401, 403) or route == ("POST", "/login"), expected
    tokens = {scope: world.keys.create(f"k-{scope}", [scope]).token for scope in SCOPES}
    all_but = {  # every scope but one (and not admin, which grants all)
        scope: world.keys.create(
            f"all-but-{scope}", [s for s in SCOPES if s not in (scope, "admin")]
        ).token
        for scope in SCOPES
        if scope != "admin"
    }
    wrong = re.sub(r"_[^_]+$", "_" + "A" * 43, tokens["read"])  # a real id, a wrong secret
    with world.client() as client:
        no_key = _request(client, route, {})
        bad_key = _request(client, route, {"Authorization": f"Bearer {wrong}"})
        if need == OPEN:
            assert no_key.status_code == expected
            assert bad_key.status_code == expected
            return
        assert no_key.status_code == 401
        assert no_key.headers["www-authenticate"].startswith("Bearer")
        assert "lorameter keys create" in no_key.json()["detail"]
        assert bad_key.status_code == 401
        assert 'error="invalid_token"' in bad_key.headers["www-authenticate"]
        garbage = _request(client, route, {"X-API-Key": "let-me-in"})
        assert garbage.status_code == 401
        if need == ANY:
            for token in (tokens["ingest"], tokens["raw"]):
                assert _request(client, route, {"X-API-Key": token}).status_code == expected
            return
        lacking = _request(client, route, {"Authorization": f"Bearer {all_but[need]}"})
        assert lacking.status_code == 403
        assert f'scope="{need}"' in lacking.headers["www-authenticate"]
        assert f"lacks the scope {need!r}" in lacking.json()["detail"]
        right = _request(client, route, {"Authorization": f"Bearer {tokens[need]}"})
        assert right.status_code == expected
        also = _request(client, route, {"X-API-Key": tokens[need]})
        assert also.status_code == expected
        admin = _request(client, route, {"X-API-Key": tokens["admin"]})
        assert admin.status_code == expected


def test_health_and_metrics_can_be_closed(world: World) -> None:
    read = world.keys.create("grafana", ["read"]).token
    ingest = world.keys.create("tts", ["ingest"]).token
    with world.client(open_paths=frozenset({"/metrics"})) as client:
        assert client.get("/health").status_code == 401
        assert client.get("/health", headers={"X-API-Key": ingest}).status_code == 403
        assert client.get("/health", headers={"X-API-Key": read}).status_code == 200
        assert client.get("/metrics").status_code == 200


def test_without_keys_loopback_is_open_and_other_addresses_are_shut(world: World) -> None:
    with world.client() as client:
        assert client.get("/api/v1/devices").status_code == 200
    with world.client(open_without_keys=False) as client:
        # e.g. the last key revoked while serving 0.0.0.0: the door shuts, it never opens
        response = client.get("/api/v1/devices")
        assert response.status_code == 401
        assert "no API key exists" in response.json()["detail"]
        assert client.get("/health").status_code == 200


def test_a_key_created_or_revoked_elsewhere_counts_at_the_next_request(world: World) -> None:
    other = SQLiteKeys(world.path)  # as `lorameter keys` in another process would
    with world.client() as client:
        assert client.get("/api/v1/devices").status_code == 200
        token = other.create("grafana", ["read"]).token
        assert client.get("/api/v1/devices").status_code == 401
        assert client.get("/api/v1/devices", headers={"X-API-Key": token}).status_code == 200
        other.create("spare", ["read"])
        other.revoke("grafana")
        assert client.get("/api/v1/devices", headers={"X-API-Key": token}).status_code == 401
    other.close()


def test_browser_gets_a_login_form_and_a_cookie_for_reading(world: World) -> None:
    token = world.keys.create("staff", ["read", "alarms"]).token
    html = {"Accept": "text/html,application/xhtml+xml"}
    with world.client() as client:
        page = client.get("/meters/esi-1", headers=html)
        assert page.status_code == 401
        assert page.headers["content-type"].startswith("text/html")
        assert '<form method="post" action="/login">' in page.text
        assert 'name="next" value="/meters/esi-1"' in page.text
        refused = client.post("/login", data={"key": token[:-1] + "x", "next": "/"})
        assert refused.status_code == 401 and "not valid" in refused.text
        login = client.post("/login", data={"key": token, "next": "/meters/esi-1"})
        assert login.status_code == 303
        assert login.headers["location"] == "/meters/esi-1"
        cookie = login.headers["set-cookie"]
        assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie
        assert "SameSite=strict" in cookie
        client.cookies.set(COOKIE, token)
        page = client.get("/meters/esi-1", headers=html)
        assert page.status_code == 200 and 'action="/logout"' in page.text
        assert client.get("/static/style.css").status_code == 200
        assert client.get("/docs").status_code == 200
        # a cookie never carries a change: POST needs the key in a header
        ack = client.post("/api/v1/alarms/1/ack", json={"by": "x"})
        assert ack.status_code == 401
        headers = {"X-API-Key": token}
        assert (
            client.post("/api/v1/alarms/1/ack", json={"by": "x"}, headers=headers).status_code
            == 200
        )
        out = client.post("/logout")
        assert out.status_code == 303 and f'{COOKIE}=""' in out.headers["set-cookie"]


def test_login_refuses_foreign_origins_and_redirects_only_locally(world: World) -> None:
    token = world.keys.create("staff", ["read"]).token
    with world.client() as client:
        foreign = client.post(
            "/login", data={"key": token}, headers={"Origin": "https://evil.example"}
        )
        assert foreign.status_code == 403 and "set-cookie" not in foreign.headers
        for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
            done = client.post("/login", data={"key": token, "next": target})
            assert done.status_code == 303 and done.headers["location"] == "/"


def test_meter_page_shows_raw_payloads_only_to_the_raw_scope(world: World) -> None:
    read = world.keys.create("viewer", ["read"]).token
    both = world.keys.create("operator", ["read", "raw"]).token
    recent = (datetime.now(UTC) - timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    message = tts_up("esi-1", esi(1100, 42), f_port=10, f_cnt=99, received_at=recent)
    out = Pipeline(REGISTRY).process("t", message, T0)
    assert isinstance(out, Accepted)
    world.store.write_uplinks([out.record])
    payload = esi(1100, 42).hex(" ")  # the page shows the last 2 days' raw uplinks
    with world.client() as client:
        seen = client.get("/meters/esi-1", headers={"X-API-Key": read})
        assert seen.status_code == 200
        assert payload not in seen.text and "<code>raw</code> scope" in seen.text
        full = client.get("/meters/esi-1", headers={"X-API-Key": both})
        assert payload in full.text


def test_openapi_shows_the_security_schemes_and_each_scope(world: World) -> None:
    with world.open_client() as client:
        schema = client.get("/openapi.json").json()
    schemes = schema["components"]["securitySchemes"]
    assert schemes["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schemes["bearer"]["description"],
    }
    assert schemes["apiKey"]["in"] == "header" and schemes["apiKey"]["name"] == "X-API-Key"
    for (method, path), need in NEEDS.items():
        if need not in SCOPES or path not in schema["paths"]:
            continue
        security = schema["paths"][path][method.lower()]["security"]
        assert {"bearer": [need]} in security and {"apiKey": [need]} in security, path


def test_a_header_secret_admits_its_folder_only(world: World) -> None:
    """A webhook that sends a fixed header instead of a key (issue 12: "or a configured header
    secret"): admitted under its folder; everywhere else it is no key at all."""
    from fastapi import APIRouter

    from api.auth import require_scope

    hook = APIRouter(prefix="/api/v1/hook", dependencies=[require_scope("ingest")])

    @hook.post("/tts")
    def tts() -> dict[str, str]:
        return {"ok": "stored"}

    world.keys.create("grafana", ["read"])
    ingest = world.keys.create("tts-key", ["ingest"]).token
    secrets = {"/api/v1/hook/": ("X-Webhook-Secret", "s3cret-of-the-tts-webhook")}
    app = create_app(world.store, None, ApiOptions(header_secrets=secrets), keys=world.keys)
    app.include_router(hook)
    right = {"X-Webhook-Secret": "s3cret-of-the-tts-webhook"}
    with TestClient(app) as client:
        assert client.post("/api/v1/hook/tts", headers=right).json() == {"ok": "stored"}
        assert client.post("/api/v1/hook/tts", headers={"X-API-Key": ingest}).status_code == 200
        assert client.post("/api/v1/hook/tts").status_code == 401
        wrong = {"X-Webhook-Secret": "s3cret-of-the-tts-webhooK"}
        assert client.post("/api/v1/hook/tts", headers=wrong).status_code == 401
        for path in ("/api/v1/devices", "/static/style.css", "/openapi.json",
                     "/api/v1/hook/../devices"):  # fmt: skip
            assert client.get(path, headers=right).status_code == 401, path


def test_a_form_of_our_own_pages_may_post_with_the_login_cookie(world: World) -> None:
    """The web view's alarm ack is a form post: the browser sends the login cookie and names
    our origin; a post from any other origin (or none) gets no key from the cookie."""
    token = world.keys.create("leitstelle", ["read", "alarms"]).token
    form = {"alarm_id": "1", "by": "Schmidt", "note": "checked"}
    with world.client() as client:
        client.cookies.set(COOKIE, token)
        ours = client.post("/alarms", data=form, headers={"Origin": "http://testserver"})
        foreign = client.post("/alarms", data=form, headers={"Origin": "http://evil.example"})
        unnamed = client.post("/alarms", data=form)
    assert ours.status_code not in (401, 403), ours.text
    assert foreign.status_code == 401
    assert unnamed.status_code == 401
