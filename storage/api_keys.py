"""API keys: created random and shown once, kept only as a salted hash, scoped, revocable.

Where they live: with the SQLite store in the store's own file; with InfluxDB in a small
SQLite sidecar next to the spool (``<spool>-keys.db``), like the alarm tables. Every
``lorameter api`` replica on the machine opens the same file, so a key created or revoked
with ``lorameter keys`` counts in all of them at their next request.

A key reads ``lmk_<id>_<secret>``: ``id`` (12 hex digits) finds the row and names the key in
``keys list``; ``secret`` is 32 bytes from ``secrets`` (256 bits). The row holds
HMAC-SHA256(salt, secret) with a random 16-byte salt of its own. A slow password hash
(scrypt, PBKDF2) exists to make guessing a *low-entropy* password expensive; a 256-bit random
secret cannot be guessed whatever the hash, so a fast one is as safe here and keeps the check
of every request (a Grafana dashboard sends dozens) to microseconds. The salt makes two
databases' hashes of one key differ; the comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from storage.base import StoreError

__all__ = [
    "SCOPES",
    "ApiKey",
    "KeyError_",
    "NewKey",
    "SQLiteKeys",
    "api_key_db_path",
    "parse_scopes",
]

# What each scope opens (the API's routers declare theirs; README "API keys").
SCOPES: dict[str, str] = {
    "read": "devices, readings, consumption, register, fleet, alarms list, decoders, web view",
    "alarms": "acknowledge alarms",
    "raw": "raw uplinks and dead letters (they carry payloads)",
    "ingest": "webhook ingestion (POST /api/v1/ingest/...)",
    "admin": "keys and registry; grants every other scope (an admin could create any key)",
}

_PREFIX = "lmk_"
_TOKEN = re.compile(r"^lmk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    scopes TEXT NOT NULL,
    salt BLOB NOT NULL,
    hash BLOB NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS api_keys_active_name ON api_keys (name)
    WHERE revoked_at IS NULL;
"""


class KeyError_(ValueError):
    """A key request that cannot be done (bad name or scope, unknown or ambiguous key)."""


@dataclass(frozen=True)
class ApiKey:
    """One key as listed (never its secret)."""

    id: str
    name: str
    scopes: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None = None

    def allows(self, scope: str) -> bool:
        """Whether this key may use routes of ``scope`` (``admin`` may use all)."""
        return scope in self.scopes or "admin" in self.scopes


@dataclass(frozen=True)
class NewKey:
    """A key just created: ``token`` is shown once and stored nowhere."""

    key: ApiKey
    token: str


def api_key_db_path(store_url: str, spool_path: str | Path) -> Path:
    """Where the keys live: the SQLite store's file, or a sidecar next to the spool."""
    if store_url.startswith("sqlite:///"):
        return Path(store_url.removeprefix("sqlite:///"))
    spool = Path(spool_path)
    return spool.with_name(f"{spool.stem}-keys.db")


def parse_scopes(values: Iterable[str]) -> tuple[str, ...]:
    """Scopes from ``--scope`` values (repeated or comma-separated), in SCOPES order."""
    asked = {s.strip() for value in values for s in value.split(",") if s.strip()}
    unknown = sorted(asked - set(SCOPES))
    if unknown:
        raise KeyError_(f"unknown scope(s) {', '.join(unknown)}; use {', '.join(SCOPES)}")
    if not asked:
        raise KeyError_(f"give at least one scope: {', '.join(SCOPES)}")
    return tuple(s for s in SCOPES if s in asked)


def _digest(salt: bytes, secret: str) -> bytes:
    return hmac.new(salt, secret.encode(), hashlib.sha256).digest()


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


class SQLiteKeys:
    """The key table in one SQLite file; safe across threads and processes (WAL)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if not self.path.exists():  # a sidecar of hashes: readable by its owner only
                os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
            self._db = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            with self._db:
                self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the API keys in {self.path}: {exc}") from exc

    def _rows(self, sql: str, args: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"API keys {self.path}: {exc}") from exc

    def create(self, name: str, scopes: Sequence[str], now: datetime | None = None) -> NewKey:
        """A new key; its token is in the result only. KeyError_ on a bad or taken name."""
        if not _NAME.match(name):
            raise KeyError_(
                f"key name {name!r}: 1 to 64 letters, digits, '.', '_' or '-', starting with"
                " a letter or digit"
            )
        scopes = parse_scopes(scopes)
        key = ApiKey(secrets.token_hex(6), name, scopes, (now or datetime.now(UTC)).astimezone(UTC))
        secret = secrets.token_urlsafe(32)
        salt = secrets.token_bytes(16)
        with self._lock:
            try:
                with self._db:
                    self._db.execute(
                        "INSERT INTO api_keys (id, name, scopes, salt, hash, created_at)"
                        " VALUES (?, ?, ?, ?, ?, ?)",
                        (key.id, name, " ".join(scopes), salt, _digest(salt, secret),
                         key.created_at.isoformat()),
                    )  # fmt: skip
            except sqlite3.IntegrityError:
                raise KeyError_(
                    f"an active key is named {name!r}; revoke it first or choose another name"
                ) from None
            except sqlite3.Error as exc:
                raise StoreError(f"API keys {self.path}: {exc}") from exc
        return NewKey(key, f"{_PREFIX}{key.id}_{secret}")

    def keys(self, *, revoked: bool = False) -> list[ApiKey]:
        """The active keys (with ``revoked``: all), oldest first."""
        where = "" if revoked else " WHERE revoked_at IS NULL"
        rows = self._rows(
            f"SELECT id, name, scopes, created_at, revoked_at FROM api_keys{where}"
            " ORDER BY created_at, id"
        )
        return [
            ApiKey(r[0], r[1], tuple(r[2].split()), _time(r[3]) or datetime.min, _time(r[4]))
            for r in rows
        ]

    def revoke(self, which: str, now: datetime | None = None) -> ApiKey:
        """Revoke the active key with this id or name; KeyError_ if there is none."""
        matches = [k for k in self.keys() if which in (k.id, k.name)]
        if not matches:
            raise KeyError_(f"no active key has the id or name {which!r}; `lorameter keys list`")
        key = matches[0]
        at = (now or datetime.now(UTC)).astimezone(UTC)
        with self._lock:
            try:
                with self._db:
                    self._db.execute(
                        "UPDATE api_keys SET revoked_at = ? WHERE id = ?", (at.isoformat(), key.id)
                    )
            except sqlite3.Error as exc:
                raise StoreError(f"API keys {self.path}: {exc}") from exc
        return ApiKey(key.id, key.name, key.scopes, key.created_at, at)

    def any_active(self) -> bool:
        """Whether at least one key is not revoked (then every guarded route needs one)."""
        return bool(self._rows("SELECT 1 FROM api_keys WHERE revoked_at IS NULL LIMIT 1"))

    def verify(self, token: str) -> ApiKey | None:
        """The active key this token is, else None (malformed, unknown, wrong or revoked)."""
        match = _TOKEN.match(token.strip())
        if match is None:
            return None
        key_id, secret = match.groups()
        rows = self._rows(
            "SELECT name, scopes, salt, hash, created_at FROM api_keys"
            " WHERE id = ? AND revoked_at IS NULL",
            (key_id,),
        )
        if not rows:
            return None
        name, scopes, salt, digest, created = rows[0]
        if not hmac.compare_digest(_digest(salt, secret), digest):
            return None
        return ApiKey(key_id, name, tuple(scopes.split()), _time(created) or datetime.min)

    def close(self) -> None:
        with self._lock:
            self._db.close()
