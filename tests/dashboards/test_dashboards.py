"""Every panel query of the Grafana dashboards, macros expanded, against a real influxd.

Grafana cannot be installed here, so this proves what Grafana would send to InfluxDB runs and
answers with the series and columns each panel draws: the fleet's history went through the
real pipeline into a real influxd, and the consumption points are written in the schema
lorameter writes (interval start in UTC, local intervals). It does not prove how Grafana
renders them.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from dashboards import build
from storage import open_store
from storage.line_protocol import escape_tag_value as escape_tag
from tests.demo_data import LEAK_UPLINKS, LEAKING, ZONE, Fleet, consumption_points, demo_fleet, load

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
END = datetime(2025, 11, 20, 11, 0, tzinfo=UTC)
DAYS = 3.0
START = END - timedelta(days=DAYS)
INTERVAL = "15m"

# (dashboard file, panel title) -> the value columns the panel draws (besides time)
EXPECTED: dict[tuple[str, str], set[str]] = {
    ("fleet.json", "Meters per medium (seen in range)"): {"count"},
    ("fleet.json", "Last uplink per meter (silent meters first)"): {"f_cnt", "rssi_dbm"},
    ("fleet.json", "Consumption today per site"): set(build.MEDIA),
    ("fleet.json", "Consumption this month per site"): set(build.MEDIA),
    ("fleet.json", "Daily consumption per medium"): {"sum"},
    ("meter.json", "Register"): {"last_energy_import_kwh", "last_energy_heat_kwh",
                                 "last_volume_m3"},
    ("meter.json", "Uplinks in range"): {"count"},
    ("meter.json", "Meter"): {"meter_serial", "last_energy_import_kwh", "last_energy_heat_kwh",
                              "last_volume_m3"},
    ("meter.json", "Consumption per hour"): {"energy_import_kwh", "energy_heat_kwh", "volume_m3"},
    ("meter.json", "Consumption per day"): {"energy_import_kwh", "energy_heat_kwh", "volume_m3"},
    ("meter.json", "Consumption per month"): {"energy_import_kwh", "energy_heat_kwh", "volume_m3"},
    ("meter.json", "Flow and power"): {"flow_m3h", "power_w"},
    ("meter.json", "Temperatures"): {"flow_temp_c", "return_temp_c", "temperature_c"},
    ("meter.json", "Battery"): {"battery_pct"},
    ("meter.json", "RSSI and SNR"): {"rssi_dbm", "snr_db"},
    ("network.json", "Uplinks per hour"): {"uplinks"},
    ("network.json", "RSSI distribution"): {"rssi_dbm"},
    ("network.json", "SNR distribution"): {"snr_db"},
    ("network.json", "Spreading factor distribution"): {"spreading_factor"},
    ("network.json", "Dead letters by reason"): {"count"},
    ("alarms.json", "Alarm flags at the last reading, per meter"): set(build.FLAGS),
    ("alarms.json", "Readings with an alarm flag set"): {"count"},
}  # fmt: skip
# Dashboards whose every query must answer for the whole fleet; the others answer per meter.
FLEET_WIDE = ("fleet.json", "network.json")


@pytest.fixture(scope="module")
def demo(influxd: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Fleet]:
    """A database holding the demo fleet's history and its consumption points."""
    url = influxd.new_database_url()
    database = url.rsplit("/", 1)[1]
    fleet = demo_fleet(16)
    store = open_store(url, spool_path=tmp_path_factory.mktemp("spool") / "spool.db")
    try:
        load(store, fleet, END, DAYS)
    finally:
        store.close()
    lines = [
        f"consumption,device={escape_tag(p.device)},interval={p.interval},medium={p.medium},"
        f"meter={escape_tag(p.meter)},site={escape_tag(p.site)} {p.field}={p.value!r}"
        f" {int(p.start.timestamp())}"
        for p in consumption_points(fleet, END, DAYS)
    ]
    response = httpx.post(f"{influxd.base_url}/write", params={"db": database, "precision": "s"},
                          content="\n".join(lines), timeout=30)  # fmt: skip
    assert response.status_code == 204, response.text
    return database, fleet


def time_range(panel: dict[str, Any]) -> tuple[datetime, datetime]:
    """The range Grafana gives a panel when the dashboard shows [START, END] and now is END."""
    relative = panel.get("timeFrom", "")
    local = END.astimezone(ZONE)
    if relative == "now/d":
        return local.replace(hour=0, minute=0, second=0, microsecond=0), END
    if relative == "now/M":
        return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0), END
    if relative:
        number, unit = re.fullmatch(r"now-(\d+)([hdy])", relative).groups()
        hours = {"h": 1, "d": 24, "y": 24 * 365}[unit] * int(number)
        return END - timedelta(hours=hours), END
    return START, END


def expand(query: str, panel: dict[str, Any], variables: dict[str, str]) -> str:
    """Grafana's InfluxQL macros and template variables, as Grafana expands them."""
    start, end = time_range(panel)
    text = query.replace(
        "$timeFilter",
        f"time >= {int(start.timestamp() * 1000)}ms and time <= {int(end.timestamp() * 1000)}ms",
    ).replace("$__interval", INTERVAL)
    for name, value in variables.items():
        text = text.replace(f"${name}", value)
    assert not re.search(r"\$(\w|\{)|\[\[", text), f"unexpanded macro in {text}"
    return text


def run(influxd: Any, database: str, query: str) -> list[dict[str, Any]]:
    response = influxd.query(query, db=database)
    assert response.status_code == 200, response.text
    result = response.json()["results"][0]
    assert "error" not in result, f"{result['error']}: {query}"
    series: list[dict[str, Any]] = result.get("series", [])
    return series


def panels(name: str) -> list[dict[str, Any]]:
    board: dict[str, Any] = json.loads((ROOT / "dashboards" / "json" / name).read_text())
    found: list[dict[str, Any]] = board["panels"]
    return found


def all_panels() -> list[tuple[str, str]]:
    return [(name, p["title"]) for name in build.build() for p in panels(name)]


def test_every_panel_has_an_expectation() -> None:
    assert set(all_panels()) == set(EXPECTED)


@pytest.mark.parametrize(("board", "title"), [k for k in EXPECTED if k[0] in FLEET_WIDE])
def test_fleet_and_network_panels(influxd, demo, board: str, title: str) -> None:
    database, _ = demo
    panel = next(p for p in panels(board) if p["title"] == title)
    columns: set[str] = set()
    for target in panel["targets"]:
        series = run(influxd, database, expand(target["query"], panel, {"site": ".*"}))
        assert series, f"{title}: {target['refId']} returned nothing"
        columns |= {c for s in series for c in s["columns"] if c != "time"}
        assert all(s["values"] for s in series)
    assert columns == EXPECTED[(board, title)]


@pytest.mark.parametrize("title", [k[1] for k in EXPECTED if k[0] == "meter.json"])
def test_meter_panels(influxd, demo, title: str) -> None:
    """Each panel for one meter of each medium: it draws something for at least one of them."""
    database, fleet = demo
    panel = next(p for p in panels("meter.json") if p["title"] == title)
    columns: set[str] = set()
    answered = 0
    for medium in build.MEDIA:
        device = next(d for d, m in fleet.media.items() if m == medium)
        variables = {"site": ".*", "medium": medium, "device": re.escape(device)}
        for target in panel["targets"]:
            series = run(influxd, database, expand(target["query"], panel, variables))
            answered += bool(series)
            assert all(s["values"] for s in series)
            columns |= {c for s in series for c in s["columns"] if c != "time"}
    assert answered
    assert columns == EXPECTED[("meter.json", title)]


@pytest.mark.parametrize("title", [k[1] for k in EXPECTED if k[0] == "alarms.json"])
def test_alarm_panels(influxd, demo, title: str) -> None:
    """The meter whose last uplinks report a leak shows it; a meter without one shows none."""
    database, _ = demo
    panel = next(p for p in panels("alarms.json") if p["title"] == title)
    found: dict[str, list[Any]] = {}
    for target in panel["targets"]:
        query = expand(target["query"], panel, {"site": ".*", "device": ".*"})
        for series in run(influxd, database, query):
            device = series["tags"]["device"]
            found.setdefault(device, []).append(series)
            assert set(series["columns"]) - {"time"} <= EXPECTED[("alarms.json", title)]
    if title.startswith("Readings"):
        assert set(found) == {LEAKING}  # only the leaking meter has a flag set
        assert sum(v[1] for s in found[LEAKING] for v in s["values"]) == LEAK_UPLINKS
    else:
        row = dict(zip(found[LEAKING][0]["columns"], found[LEAKING][0]["values"][0], strict=True))
        assert row["leak"] is True and row["burst"] is False
        quiet = found["water-007"][0]
        assert dict(zip(quiet["columns"], quiet["values"][0], strict=True))["leak"] is False


def test_consumption_bars_are_the_written_intervals(influxd, demo) -> None:
    """Per day: one bar per local day that started in the range, each the day's consumption."""
    database, fleet = demo
    panel = next(p for p in panels("meter.json") if p["title"] == "Consumption per day")
    device = next(d for d, m in fleet.media.items() if m == "electricity")
    query = expand(panel["targets"][0]["query"], panel,
                   {"device": re.escape(device), "medium": "electricity"})  # fmt: skip
    rows = run(influxd, database, query)[0]["values"]
    expected = [p for p in consumption_points(fleet, END, DAYS)
                if p.device == device and p.interval == "day"]  # fmt: skip
    assert [row[0] for row in rows] == [int(p.start.timestamp() * 1e9) for p in expected]
    column = run(influxd, database, query)[0]["columns"].index("energy_import_kwh")
    assert [row[column] for row in rows] == pytest.approx([p.value for p in expected])


def test_variables_query_real_tags(influxd, demo) -> None:
    database, fleet = demo
    meter = json.loads((ROOT / "dashboards/json/meter.json").read_text())
    variables = {v["name"]: v for v in meter["templating"]["list"]}
    sites = run(influxd, database, variables["site"]["query"])
    assert {v[1] for s in sites for v in s["values"]} == {m.site for m in fleet.meters}
    query = variables["device"]["query"].replace("$medium", "water").replace("$site", ".*")
    devices = {v[1] for s in run(influxd, database, query) for v in s["values"]}
    assert devices == {d for d, m in fleet.media.items() if m == "water"}


def test_a_broken_query_fails() -> None:
    """The harness is not blind: a query InfluxDB refuses is an assertion error."""
    panel = {"title": "broken"}
    with pytest.raises(AssertionError):
        expand('SELECT mean("x") FROM "radio" WHERE $timeFilter AND $nosuchvariable', panel, {})


def test_a_query_influxdb_refuses_fails(influxd, demo) -> None:
    database, _ = demo
    with pytest.raises(AssertionError, match="error"):
        run(influxd, database, 'SELECT mean("rssi_dbm") FROM "radio" GROUP BY time(')


def test_checked_in_json_is_up_to_date() -> None:
    for name, board in build.build().items():
        assert (ROOT / "dashboards" / "json" / name).read_text() == build.render(board), name


def test_every_panel_uses_the_provisioned_datasource() -> None:
    provisioned = yaml.safe_load(
        (ROOT / "dashboards/provisioning/datasources/influxdb.yaml").read_text()
    )["datasources"][0]
    assert provisioned["uid"] == build.DATASOURCE_UID and provisioned["type"] == "influxdb"
    for name in build.build():
        for panel in panels(name):
            assert panel["datasource"]["uid"] == provisioned["uid"]
            assert all(t["datasource"]["uid"] == provisioned["uid"] for t in panel["targets"])
