"""A local HTTP server speaking the part of Grafana's documented HTTP API that push uses.

Per Grafana's docs (HTTP API: Folder, Dashboard): ``GET /api/folders/:uid`` (404 when missing),
``POST /api/folders`` {uid, title} (409 when the uid exists), ``POST /api/dashboards/db``
{dashboard, folderUid, overwrite, message} → {id, uid, url, status, version, slug}; 412
"version-mismatch" when a dashboard of that uid exists and overwrite is false; 400 when
folderUid names no folder; 401 without a valid ``Authorization: Bearer`` token.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["FakeGrafana"]


@dataclass
class FakeGrafana:
    token: str
    folders: dict[str, dict[str, Any]] = field(default_factory=dict)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> FakeGrafana:
        grafana = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _authorized(self) -> bool:
                grafana.requests.append((self.command, self.path))
                if self.headers.get("Authorization") != f"Bearer {grafana.token}":
                    self._answer(401, {"message": "Unauthorized"})
                    return False
                return True

            def _body(self) -> dict[str, Any]:
                length = int(self.headers.get("Content-Length", 0))
                assert self.headers.get_content_type() == "application/json"
                body: dict[str, Any] = json.loads(self.rfile.read(length))
                return body

            def do_GET(self) -> None:
                if not self._authorized():
                    return
                match = re.fullmatch(r"/api/folders/([\w-]+)", self.path)
                if match and match[1] in grafana.folders:
                    self._answer(200, grafana.folders[match[1]])
                elif match:
                    self._answer(404, {"message": "folder not found", "status": "not-found"})
                else:
                    self._answer(404, {"message": "Not found"})

            def do_POST(self) -> None:
                if not self._authorized():
                    return
                body = self._body()
                if self.path == "/api/folders":
                    uid = body.get("uid") or f"f{len(grafana.folders)}"
                    if uid in grafana.folders:
                        self._answer(409, {"message": "a folder with the same uid already exists"})
                        return
                    folder = {"id": len(grafana.folders) + 1, "uid": uid, "title": body["title"]}
                    grafana.folders[uid] = folder
                    self._answer(200, folder)
                elif self.path == "/api/dashboards/db":
                    self._save_dashboard(body)
                else:
                    self._answer(404, {"message": "Not found"})

            def _save_dashboard(self, body: dict[str, Any]) -> None:
                board = body.get("dashboard")
                if not isinstance(board, dict) or not board.get("title"):
                    self._answer(400, {"message": "Dashboard title cannot be empty"})
                    return
                if body.get("folderUid") and body["folderUid"] not in grafana.folders:
                    self._answer(400, {"message": "folder not found"})
                    return
                uid = board["uid"]
                old = grafana.dashboards.get(uid)
                if old is not None and not body.get("overwrite"):
                    self._answer(412, {"message": "The dashboard has been changed by someone else",
                                       "status": "version-mismatch"})  # fmt: skip
                    return
                version = (old["version"] + 1) if old else 1
                slug = re.sub(r"[^a-z0-9]+", "-", board["title"].lower()).strip("-")
                grafana.dashboards[uid] = {"version": version, "body": body}
                self._answer(200, {"id": len(grafana.dashboards), "uid": uid,
                                   "url": f"/d/{uid}/{slug}", "status": "success",
                                   "version": version, "slug": slug})  # fmt: skip

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
