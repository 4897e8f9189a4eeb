"""Upload lorameter's dashboards to an existing Grafana through its HTTP API (grafana-client).

For utilities that already run Grafana: the dashboards go into one folder (created when
missing), overwriting earlier versions of the same uid, and can point at the utility's own
InfluxDB datasource instead of the provisioned ``lorameter-influxdb``.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grafana_client.api import GrafanaApi
from grafana_client.client import GrafanaClientError, GrafanaException

from dashboards.build import DATASOURCE_UID

__all__ = ["PublishError", "Pushed", "load_dashboards", "push", "with_datasource"]

_JSON = Path(__file__).parent / "json"
FOLDER_UID = "lorameter"


class PublishError(Exception):
    """Grafana refused or could not be reached; the message says what to check."""


@dataclass(frozen=True)
class Pushed:
    """One dashboard as Grafana stored it."""

    title: str
    uid: str
    url: str
    version: int


def load_dashboards() -> list[dict[str, Any]]:
    """The checked-in dashboards (dashboards/json), in name order."""
    return [json.loads(path.read_text()) for path in sorted(_JSON.glob("*.json"))]


def with_datasource(board: dict[str, Any], uid: str) -> dict[str, Any]:
    """A copy of ``board`` whose panels, queries and variables use datasource ``uid``."""
    out = copy.deepcopy(board)

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            source = node.get("datasource")
            if isinstance(source, dict) and source.get("uid") == DATASOURCE_UID:
                source["uid"] = uid
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(out)
    return out


def push(
    url: str,
    token: str,
    *,
    folder: str = "lorameter",
    datasource_uid: str = DATASOURCE_UID,
    boards: list[dict[str, Any]] | None = None,
    timeout: float = 10.0,
) -> list[Pushed]:
    """Create the folder if needed, then POST every dashboard with overwrite."""
    api: Any = GrafanaApi.from_url(url, credential=token, timeout=timeout)
    try:
        try:
            api.folder.get_folder(FOLDER_UID)
        except GrafanaClientError as exc:
            if exc.status_code != 404:
                raise
            api.folder.create_folder(folder, uid=FOLDER_UID)
        pushed = []
        for board in boards if boards is not None else load_dashboards():
            body = with_datasource(board, datasource_uid)
            body["id"] = None  # Grafana matches by uid; a numeric id is per-instance
            answer = api.dashboard.update_dashboard(
                {
                    "dashboard": body,
                    "folderUid": FOLDER_UID,
                    "overwrite": True,
                    "message": "lorameter dashboards push",
                }
            )
            pushed.append(
                Pushed(body["title"], answer["uid"], answer.get("url", ""), answer["version"])
            )
        return pushed
    except GrafanaException as exc:
        raise PublishError(_explain(exc)) from None
    except OSError as exc:  # niquests' connection errors are OSErrors
        raise PublishError(f"cannot reach Grafana at {_public(url)}: {exc}") from None


def _explain(exc: GrafanaException) -> str:
    detail = exc.response.get("message", "") if isinstance(exc.response, dict) else ""
    if exc.status_code == 401:
        return "Grafana refused the token (401): give a service account token with Editor rights"
    if exc.status_code == 403:
        return f"the token may not change dashboards or folders (403): {detail}".rstrip(": ")
    return f"Grafana answered {exc.status_code or 'nothing'}: {detail or exc.message}"


def _public(url: str) -> str:
    """The URL without credentials, for messages."""
    head, _, tail = url.rpartition("@")
    return url if not head else url.split("//", 1)[0] + "//" + tail
