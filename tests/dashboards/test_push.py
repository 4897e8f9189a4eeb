"""``lorameter dashboards push`` against a local server speaking Grafana's documented HTTP API.

Grafana cannot run here. This proves that push sends what Grafana's HTTP API documents (paths,
Bearer token, folder then dashboards with overwrite, the datasource uid rewritten) and reports
refusals in one line; it does not prove that a real Grafana renders the dashboards.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dashboards.build import DATASOURCE_UID
from dashboards.publish import load_dashboards
from lorameter.cli import main
from tests.dashboards.grafana_api import FakeGrafana
from tests.services import free_port

TOKEN = "glsa_s3cr3t-token"


@pytest.fixture
def grafana() -> Iterator[FakeGrafana]:
    server = FakeGrafana(TOKEN).start()
    yield server
    server.stop()


def datasource_uids(node: object) -> set[str]:
    if isinstance(node, dict):
        found = {node["datasource"]["uid"]} if isinstance(node.get("datasource"), dict) else set()
        return found.union(*(datasource_uids(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(datasource_uids(v) for v in node))
    return set()


def test_push_creates_the_folder_and_every_dashboard(grafana, capsys) -> None:
    assert main(["dashboards", "push", "--url", grafana.url, "--token", TOKEN]) == 0
    boards = load_dashboards()
    assert len(boards) >= 3
    assert set(grafana.folders) == {"lorameter"}
    assert set(grafana.dashboards) == {b["uid"] for b in boards}
    for board in boards:
        sent = grafana.dashboards[board["uid"]]["body"]
        assert sent["folderUid"] == "lorameter" and sent["overwrite"] is True
        assert sent["dashboard"]["panels"] == board["panels"]
        assert sent["dashboard"]["id"] is None
    out = capsys.readouterr().out
    assert "lorameter / Meter: version 1 at /d/lorameter-meter/" in out


def test_a_second_push_overwrites_and_keeps_the_folder(grafana, capsys) -> None:
    for _ in range(2):
        assert main(["dashboards", "push", "--url", grafana.url, "--token", TOKEN]) == 0
    assert {d["version"] for d in grafana.dashboards.values()} == {2}
    assert [p for m, p in grafana.requests if m == "POST" and p == "/api/folders"] == [
        "/api/folders"
    ]
    assert "version 2" in capsys.readouterr().out


def test_push_points_the_panels_at_the_given_datasource(grafana) -> None:
    args = ["dashboards", "push", "--url", grafana.url, "--token", TOKEN]
    assert main([*args, "--datasource-uid", "utility-influx"]) == 0
    for stored in grafana.dashboards.values():
        assert datasource_uids(stored["body"]["dashboard"]) == {"utility-influx"}
    assert all(datasource_uids(b) == {DATASOURCE_UID} for b in load_dashboards())


def test_a_refused_token_is_one_line_without_the_token(grafana, capsys) -> None:
    code = main(["dashboards", "push", "--url", grafana.url, "--token", "wrong-token"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: Grafana refused the token (401)") and err.count("\n") == 1
    assert "wrong-token" not in err and "Traceback" not in err
    assert grafana.dashboards == {}


def test_an_unreachable_grafana_is_one_line(capsys) -> None:
    url = f"http://user:pw@127.0.0.1:{free_port()}"
    assert main(["dashboards", "push", "--url", url, "--token", TOKEN]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot reach Grafana at http://127.0.0.1:") and "pw" not in err


def test_no_token_is_a_usage_error(capsys, monkeypatch) -> None:
    monkeypatch.delenv("GRAFANA_TOKEN", raising=False)
    assert main(["dashboards", "push", "--url", "http://127.0.0.1:1"]) == 2
    assert "--token" in capsys.readouterr().err
