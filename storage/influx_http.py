"""The HTTP seam of the InfluxDB backend: the 1.x-compatible ``/write`` and ``/query`` endpoints.

One protocol for InfluxDB 1.x, 2.x (v1 compatibility API, DBRP mapping, token) and 3.x. Every
failure becomes an ``InfluxError`` with a kind (``unreachable``, ``timeout``, ``auth``,
``database``, ``rejected``, ``server``) and one readable line that says what to do.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
import msgspec
import orjson

from storage.base import StoreError
from storage.line_protocol import quote_ident
from storage.redact import redact_url

__all__ = ["MSGPACK", "InfluxError", "InfluxTarget", "RawSeries", "decode_body", "parse_url"]

# Kinds of failure after which the same write may succeed later (so it stays in the spool).
TRANSIENT = frozenset({"unreachable", "timeout", "server", "auth", "database"})
# /query answers in MessagePack when asked (InfluxDB 1.x, 2.x): cheaper for influxd to write than
# JSON (a year of a meter's readings: ~150 ms instead of ~220 ms here) and keeps floats floats.
# A server that answers JSON anyway is read by its Content-Type.
MSGPACK = "application/x-msgpack"


class InfluxError(StoreError):
    """InfluxDB did not do what was asked; ``kind`` says which way it failed."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class InfluxTarget:
    """Where to write: base URL, database, retention policy and credentials."""

    base_url: str
    database: str
    retention_policy: str = ""
    username: str = ""
    password: str = ""
    token: str = ""
    verify: bool | str = True

    @property
    def display(self) -> str:
        """The target without secrets, for messages and /health."""
        return f"{self.base_url}/{self.database}"

    def client(self, *, timeout: float) -> httpx.Client:
        """A new HTTP client with this target's authentication and TLS settings."""
        headers = {"Authorization": f"Token {self.token}"} if self.token else {}
        auth = (self.username, self.password) if self.username and not self.token else None
        return httpx.Client(
            base_url=self.base_url,
            headers=headers,
            auth=auth,
            verify=_ssl_context(self.verify),
            timeout=httpx.Timeout(timeout, connect=min(timeout, 3.0)),
        )

    def write(self, client: httpx.Client, body: str) -> None:
        """POST line protocol (nanosecond times) to ``/write``; InfluxError on any failure."""
        params = {"db": self.database, "precision": "ns"}
        if self.retention_policy:
            params["rp"] = self.retention_policy
        response = self._send(client, "POST", "/write", params=params, content=body.encode())
        if response.status_code != 204:
            raise self._http_error(response)

    def write_lines(self, client: httpx.Client, body: str) -> list[tuple[str, str]]:
        """Write line protocol; the lines InfluxDB refused for good, each with its error.

        InfluxDB 1.x keeps the lines it can take and names only the first it refused (a
        partial write): halves are sent again (idempotent: the same points) until each refused
        line is alone. InfluxError for any other failure (the whole body may be sent again).
        """
        try:
            self.write(client, body)
            return []
        except InfluxError as exc:
            if exc.kind != "rejected":
                raise
            return self._isolate(client, body.split("\n"), str(exc))

    def _isolate(self, client: httpx.Client, lines: list[str], error: str) -> list[tuple[str, str]]:
        if len(lines) == 1:
            return [(lines[0], error)]
        half = len(lines) // 2
        refused: list[tuple[str, str]] = []
        for part in (lines[:half], lines[half:]):
            try:
                self.write(client, "\n".join(part))
            except InfluxError as exc:
                if exc.kind != "rejected":
                    raise
                refused.extend(self._isolate(client, part, str(exc)))
        return refused

    def _ask(
        self, client: httpx.Client, statements: list[str], timeout: float | None
    ) -> httpx.Response:
        """POST statements to ``/query``, asking for MessagePack; the 200 answer."""
        data = {"db": self.database, "q": ";\n".join(statements), "epoch": "ns"}
        if self.retention_policy:
            data["rp"] = self.retention_policy
        extra: dict[str, Any] = {"timeout": timeout} if timeout is not None else {}
        response = self._send(
            client, "POST", "/query", data=data, headers={"Accept": MSGPACK}, **extra
        )
        if response.status_code != 200:
            raise self._http_error(response)
        return response

    def query_series(
        self, client: httpx.Client, statement: str, *, timeout: float | None = None
    ) -> tuple[list[RawSeries], bool]:
        """Run one InfluxQL statement; its series with their rows left encoded, and whether
        they are MessagePack (else JSON), for a reader that decodes them by column type."""
        response = self._ask(client, [statement], timeout)
        msgpack = _content_type(response) == MSGPACK
        try:
            if msgpack:
                answer = msgspec.msgpack.decode(response.content, type=_RawAnswer)
            else:
                answer = msgspec.json.decode(response.content, type=_RawAnswer)
        except msgspec.DecodeError as exc:
            kind = MSGPACK if msgpack else "JSON"
            raise InfluxError(
                "server", f"InfluxDB at {self.base_url} answered a body that is not {kind} ({exc})"
            ) from None
        for result in answer.results:
            if result.error is not None:
                raise self._query_error(result.error)
        return [series for result in answer.results for series in result.series], msgpack

    def query(
        self, client: httpx.Client, statements: list[str], *, timeout: float | None = None
    ) -> list[dict[str, Any]]:
        """Run InfluxQL statements in one request; their results, each checked for an error."""
        response = self._ask(client, statements, timeout)
        try:
            document = decode_body(response)
        except ValueError as exc:
            raise InfluxError("server", f"InfluxDB at {self.base_url} answered {exc}") from None
        if not isinstance(document, dict):
            raise InfluxError(
                "server",
                f"InfluxDB at {self.base_url} answered a {type(document).__name__}, not an object",
            )
        results: list[dict[str, Any]] = document.get("results") or []
        errors = [str(r["error"]) for r in results if "error" in r]
        real = [e for e in errors if e != "not executed"]
        if real:
            raise self._query_error(real[0])
        if errors:
            # 1.x answers a failing multi-statement query with just "not executed": ask once
            # more with the first statement alone, to say why.
            if len(statements) > 1:
                self.query(client, statements[:1], timeout=timeout)
            raise self._query_error(errors[0])
        return results

    def ping(self, client: httpx.Client, *, timeout: float) -> None:
        """``GET /ping``: InfluxError unless InfluxDB answers (1.x, 2.x: 204; 3.x: 200)."""
        response = self._send(client, "GET", "/ping", timeout=timeout)
        if response.status_code not in (200, 204):
            raise self._http_error(response)

    def create_database(self, client: httpx.Client) -> None:
        """``CREATE DATABASE`` (1.x; a no-op if it exists; 2.x/3.x refuse, which is fine)."""
        data = {"q": f"CREATE DATABASE {quote_ident(self.database)}"}
        response = self._send(client, "POST", "/query", data=data)
        if response.status_code != 200:
            raise self._http_error(response)

    def _send(self, client: httpx.Client, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            return client.request(method, path, **kw)
        except httpx.TimeoutException as exc:
            raise InfluxError(
                "timeout", f"InfluxDB at {self.base_url} did not answer in time ({exc!r})"
            ) from exc
        except httpx.HTTPError as exc:
            raise InfluxError(
                "unreachable",
                f"InfluxDB at {self.base_url} is unreachable ({exc}): is influxd running, and are"
                " host and port in LORAMETER_STORE_URL right?",
            ) from exc

    def _http_error(self, response: httpx.Response) -> InfluxError:
        message = _error_text(response)
        status = response.status_code
        if status in (401, 403):
            return InfluxError(
                "auth",
                f"InfluxDB at {self.base_url} rejected the credentials (HTTP {status}: {message}):"
                " check user:password in LORAMETER_STORE_URL or LORAMETER_INFLUX_TOKEN",
            )
        if status == 404 or "database not found" in message:
            return self._query_error(message)
        if status in (400, 413, 422):
            return InfluxError(
                "rejected", f"InfluxDB {self.display} refused the data (HTTP {status}: {message})"
            )
        return InfluxError(
            "server", f"InfluxDB at {self.base_url} failed (HTTP {status}: {message}); will retry"
        )

    def _query_error(self, message: str) -> InfluxError:
        if "database not found" in message or "bucket not found" in message:
            return InfluxError(
                "database",
                f"InfluxDB at {self.base_url} has no database {self.database!r} ({message}):"
                " create it (CREATE DATABASE), or map it to a bucket with a DBRP mapping (2.x)",
            )
        if "authorization" in message or "unauthorized" in message:
            return InfluxError("auth", f"InfluxDB at {self.base_url}: {message}")
        return InfluxError("query", f"InfluxDB query on {self.display} failed: {message}")


@lru_cache(maxsize=8)
def _ssl_context(verify: bool | str) -> ssl.SSLContext:
    """One TLS context per verify setting, shared by the clients: building one loads the CA
    bundle (~0.1 s of CPU), which a client would otherwise do each time it is made."""
    return httpx.create_ssl_context(verify=verify)


class RawSeries(msgspec.Struct):
    """A series of a ``/query`` result, its rows (``values``: arrays in the order of
    ``columns``) still encoded."""

    name: str
    columns: list[str]
    values: msgspec.Raw = msgspec.Raw(b"")


class _RawResult(msgspec.Struct):
    series: list[RawSeries] = []
    error: str | None = None


class _RawAnswer(msgspec.Struct):
    results: list[_RawResult] = []


def _content_type(response: httpx.Response) -> str:
    kind: str = response.headers.get("content-type", "")
    return kind.split(";")[0].strip()


def decode_body(response: httpx.Response) -> object:
    """A ``/query`` (or error) body, decoded from MessagePack or JSON as its Content-Type says;
    ValueError if it is not what it says."""
    kind = _content_type(response)
    try:
        if kind == MSGPACK:
            return msgspec.msgpack.decode(response.content)
        return orjson.loads(response.content)
    except (msgspec.DecodeError, orjson.JSONDecodeError) as exc:
        raise ValueError(f"a body that is not {kind or 'JSON'} ({exc})") from None


def _error_text(response: httpx.Response) -> str:
    try:
        document = decode_body(response)
    except ValueError:
        return response.text.strip()[:200] or response.reason_phrase
    if isinstance(document, dict):
        return str(document.get("error") or document.get("message") or document)[:300]
    return str(document)[:300]


def parse_url(url: str, *, token: str = "") -> InfluxTarget:
    """``influxdb[+http|+https]://[user:pass@]host[:8086]/database[/retention_policy]``."""
    parts = urlsplit(url)
    scheme = "https" if parts.scheme == "influxdb+https" else "http"
    if parts.scheme not in ("influxdb", "influxdb+http", "influxdb+https"):
        raise StoreError(f"{parts.scheme!r} is not an InfluxDB URL scheme (use influxdb://)")
    if not parts.hostname:
        raise StoreError(f"no host in the InfluxDB URL {parts.scheme}://…{parts.path}")
    database, _, rp = unquote(parts.path.strip("/")).partition("/")
    if not database:
        raise StoreError(
            f"no database in the InfluxDB URL (use {parts.scheme}://host:8086/lorameter)"
        )
    try:
        port = parts.port or 8086
    except ValueError:
        raise StoreError(
            f"the port in the InfluxDB URL {redact_url(url)} is not a number from 0 to 65535"
        ) from None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    verify: bool | str = True
    options = parse_qs(parts.query)
    if "ca" in options:
        verify = options["ca"][0]
    if options.get("verify", ["true"])[0].lower() in ("false", "0", "no"):
        verify = False
    return InfluxTarget(
        base_url=f"{scheme}://{host}:{port}",
        database=database,
        retention_policy=rp,
        username=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        token=token,
        verify=verify,
    )
