"""The key table: a token is shown once and never stored; salted hashes; revocation; where."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest

from storage.api_keys import KeyError_, SQLiteKeys, api_key_db_path, parse_scopes


def test_token_verifies_and_only_a_salted_hash_is_stored(tmp_path: Path) -> None:
    keys = SQLiteKeys(tmp_path / "k.db")
    one = keys.create("grafana", ["read"])
    two = keys.create("tts", ["ingest"])
    assert one.token.startswith(f"lmk_{one.key.id}_") and len(one.token) == 4 + 12 + 1 + 43
    assert keys.verify(one.token) == one.key
    assert keys.verify(two.token).scopes == ("ingest",)
    keys.close()
    raw = b"".join(f.read_bytes() for f in tmp_path.glob("k.db*"))
    for token in (one.token, two.token):
        assert token.rsplit("_", 1)[1].encode() not in raw  # the secret is nowhere on disk
    with sqlite3.connect(tmp_path / "k.db") as db:
        salts = [row[0] for row in db.execute("SELECT salt FROM api_keys")]
    assert len(salts) == 2 and salts[0] != salts[1] and all(len(s) == 16 for s in salts)


def test_wrong_malformed_and_revoked_tokens_are_refused(tmp_path: Path) -> None:
    keys = SQLiteKeys(tmp_path / "k.db")
    new = keys.create("grafana", ["read", "raw"])
    head, secret = new.token.rsplit("_", 1)
    flipped = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    for bad in (f"{head}_{flipped}", "", "lmk_", new.token + "x", new.token.upper()):
        assert keys.verify(bad) is None, bad
    assert keys.any_active()
    revoked = keys.revoke("grafana")
    assert revoked.revoked_at is not None
    assert keys.verify(new.token) is None and not keys.any_active()
    assert [k.name for k in keys.keys(revoked=True)] == ["grafana"] and keys.keys() == []
    with pytest.raises(KeyError_, match="no active key"):
        keys.revoke(new.key.id)
    keys.create("grafana", ["read"])  # the name is free again once revoked


def test_names_and_scopes_are_checked(tmp_path: Path) -> None:
    keys = SQLiteKeys(tmp_path / "k.db")
    keys.create("grafana", ["read"])
    with pytest.raises(KeyError_, match="an active key is named 'grafana'"):
        keys.create("grafana", ["raw"])
    with pytest.raises(KeyError_, match="key name"):
        keys.create("bad name!", ["read"])
    with pytest.raises(KeyError_, match="unknown scope"):
        keys.create("x", ["reed"])
    assert parse_scopes(["raw,read", "admin"]) == ("read", "raw", "admin")
    with pytest.raises(KeyError_, match="at least one"):
        parse_scopes([" , "])


def test_admin_grants_every_scope(tmp_path: Path) -> None:
    keys = SQLiteKeys(tmp_path / "k.db")
    admin = keys.create("root", ["admin"]).key
    reader = keys.create("grafana", ["read"]).key
    assert all(admin.allows(s) for s in ("read", "alarms", "raw", "ingest", "admin"))
    assert reader.allows("read") and not reader.allows("raw") and not reader.allows("admin")


def test_keys_live_in_the_sqlite_store_or_a_private_sidecar_next_to_the_spool(
    tmp_path: Path,
) -> None:
    assert api_key_db_path("sqlite:///./data/l.db", "x") == Path("data/l.db")
    sidecar = api_key_db_path("influxdb://h:8086/db", tmp_path / "spool.db")
    assert sidecar == tmp_path / "spool-keys.db"
    SQLiteKeys(sidecar).close()
    assert stat.S_IMODE(sidecar.stat().st_mode) == 0o600
