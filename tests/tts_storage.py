"""A local HTTP server speaking The Things Stack's Storage Integration API (TTS cannot run here).

It serves ``GET /api/v3/as/applications/{app}/packages/storage/uplink_message`` as documented
(TTS docs, integrations/storage/retrieve; ``GetStoredApplicationUpRequest``): Bearer API key,
``after``/``before`` on ``received_at``, ``limit``, ``order=received_at``, a body of
newline-delimited ``{"result": <ApplicationUp>}``, and a ``continuation_token`` that, when
given, replaces the other parameters. What it proves: our client speaks that format, pages
through it and survives its errors; not that a real TTS answers exactly so.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass
class StorageServer:
    """What the fake TTS holds and how it answers."""

    application: str = "meters"
    api_key: str = "NNSXS.TESTKEY"
    max_page: int = 2  # a server-side page size cap, so paging is exercised
    tokens: bool = True  # False: no continuation token (the client pages by time)
    messages: list[bytes] = field(default_factory=list)
    extra_lines: list[bytes] = field(default_factory=list)  # raw lines after the first page
    requests: list[dict[str, list[str]]] = field(default_factory=list)
    port: int = 0
    _pending: dict[str, tuple[dict[str, list[str]], int]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def store(self, message: bytes) -> None:
        """TTS stores every uplink it receives, whether MQTT delivered it or not."""
        self.messages.append(message)

    def page(self, query: dict[str, list[str]]) -> tuple[list[bytes], str | None]:
        offset = 0
        if "continuation_token" in query:
            query, offset = self._pending.pop(query["continuation_token"][0])
        after = _time(query["after"][0]) if "after" in query else None
        before = _time(query["before"][0]) if "before" in query else None
        chosen = []
        for message in self.messages:
            received = _time(json.loads(message)["received_at"])
            if (after is None or received > after) and (before is None or received < before):
                chosen.append((received, message))
        chosen.sort(key=lambda item: item[0])
        limit = min(int(query.get("limit", ["1000"])[0]), self.max_page)
        lines = [m for _, m in chosen[offset : offset + limit]]
        token = None
        if self.tokens and offset + limit < len(chosen):
            token = f"t{len(self.requests)}"
            self._pending[token] = (query, offset + limit)
        return lines, token


@contextmanager
def storage_server(server: StorageServer | None = None) -> Iterator[StorageServer]:
    state = server or StorageServer()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = parse_qs(parts.query)
            state.requests.append(query)
            path = f"/api/v3/as/applications/{state.application}/packages/storage/uplink_message"
            if self.headers.get("Authorization") != f"Bearer {state.api_key}":
                self._send(401, [b'{"code":16,"message":"error:pkg/auth:unauthenticated"}'])
                return
            if parts.path != path:
                self._send(404, [b'{"code":5,"message":"not found"}'])
                return
            lines, token = state.page(query)
            wrapped = [b'{"result":' + line + b"}" for line in lines]
            extra = state.extra_lines if len(state.requests) == 1 else []
            self._send(200, wrapped + extra, token)

        def _send(self, status: int, lines: list[bytes], token: str | None = None) -> None:
            body = b"".join(line + b"\n" for line in lines)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            if token:
                self.send_header("X-Continuation-Token", token)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
