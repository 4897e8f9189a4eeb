"""The Grafana dashboards as plain dicts; ``python -m dashboards.build`` writes dashboards/json.

Every query is raw InfluxQL against the datasource ``lorameter-influxdb`` (storage/SCHEMA.md).
Consumption panels plot the ``consumption`` points lorameter writes itself (tags device, meter,
medium, site, interval = hour|day|month; the register's field holds the consumption of the
interval; time = the interval's start, intervals in local time), as bars, without
``GROUP BY time``: InfluxQL's own bucketing would cut days in UTC, lose the first interval of a
range and show a meter exchange as a negative day; metering/ gets those right once, here they
are only drawn.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from metering.meter import PRIMARY_REGISTER

__all__ = ["DATASOURCE_UID", "REGISTERS", "build", "main"]

DATASOURCE_UID = "lorameter-influxdb"
DATASOURCE = {"type": "influxdb", "uid": DATASOURCE_UID}
MEDIA = ("electricity", "water", "heat", "gas")
# The cumulative register of each medium: what a meter's consumption is computed from.
REGISTERS = dict(PRIMARY_REGISTER)
UNITS = {"energy_import_kwh": "kwatth", "energy_heat_kwh": "kwatth", "volume_m3": "m3"}
_REGISTER_RE = "/^(" + "|".join(sorted(set(REGISTERS.values()))) + ")$/"
_OUT = Path(__file__).parent / "json"

Dict = dict[str, Any]


# -- building blocks -----------------------------------------------------------------------


def target(query: str, ref: str = "A", *, alias: str = "", table: bool = False) -> Dict:
    """One raw InfluxQL query of a panel."""
    out: Dict = {
        "refId": ref,
        "datasource": DATASOURCE,
        "rawQuery": True,
        "query": query,
        "resultFormat": "table" if table else "time_series",
    }
    if alias:
        out["alias"] = alias
    return out


def panel(
    kind: str,
    title: str,
    targets: list[Dict],
    grid: tuple[int, int, int, int],
    *,
    unit: str = "",
    description: str = "",
    time_from: str = "",
    custom: Dict | None = None,
    options: Dict | None = None,
) -> Dict:
    """A panel at grid (x, y, w, h); ``custom`` goes to fieldConfig.defaults.custom."""
    x, y, w, h = grid
    defaults: Dict = {"custom": custom or {}}
    if unit:
        defaults["unit"] = unit
    out: Dict = {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "targets": targets,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options or {},
    }
    if time_from:
        out["timeFrom"] = time_from
    return out


BARS = {"drawStyle": "bars", "fillOpacity": 80, "lineWidth": 1, "barAlignment": -1}
LINES = {"drawStyle": "line", "fillOpacity": 10, "lineWidth": 1, "spanNulls": False}
HISTOGRAM = {"bucketCount": 20}


def query_variable(name: str, label: str, query: str, *, multi: bool = True) -> Dict:
    return {
        "type": "query",
        "name": name,
        "label": label,
        "datasource": DATASOURCE,
        "query": query,
        "definition": query,
        "refresh": 2,  # on time range change
        "sort": 1,
        "multi": multi,
        "includeAll": multi,
        "allValue": ".*",
        "current": {},
    }


def medium_variable(*, multi: bool) -> Dict:
    options = [{"text": m, "value": m, "selected": i == 0} for i, m in enumerate(MEDIA)]
    return {
        "type": "custom",
        "name": "medium",
        "label": "Medium",
        "query": ",".join(MEDIA),
        "options": options,
        "current": {"text": MEDIA[0], "value": MEDIA[0]},
        "multi": multi,
        "includeAll": multi,
        "allValue": "|".join(MEDIA),
    }


SITE = query_variable("site", "Site", 'SHOW TAG VALUES WITH KEY = "site"')


def dashboard(uid: str, title: str, panels: list[Dict], variables: list[Dict]) -> Dict:
    for number, item in enumerate(panels, start=1):
        item["id"] = number
    return {
        "uid": uid,
        "title": title,
        "tags": ["lorameter"],
        "timezone": "browser",
        "editable": False,
        "graphTooltip": 1,
        "refresh": "5m",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-7d", "to": "now"},
        "templating": {"list": variables},
        "annotations": {"list": []},
        "links": [{"type": "dashboards", "tags": ["lorameter"], "asDropdown": True}],
        "panels": panels,
    }


# -- the dashboards ------------------------------------------------------------------------


def fleet() -> Dict:
    meters = [
        target(
            f'SELECT count("register") FROM (SELECT last("{REGISTERS[m]}") AS "register"'
            f' FROM "{m}" WHERE $timeFilter AND "site" =~ /^$site$/ GROUP BY "device")',
            chr(65 + i),
            alias=m,
        )
        for i, m in enumerate(MEDIA)
    ]

    def consumption(interval: str) -> list[Dict]:
        return [
            target(
                f'SELECT sum("{REGISTERS[m]}") AS "{m}" FROM "consumption" WHERE $timeFilter'
                f" AND \"interval\" = '{interval}' AND \"medium\" = '{m}'"
                ' AND "site" =~ /^$site$/ GROUP BY "site"',
                chr(65 + i),
                table=True,
            )
            for i, m in enumerate(MEDIA)
        ]

    return dashboard(
        "lorameter-fleet",
        "lorameter / Fleet",
        [
            panel("stat", "Meters per medium (seen in range)", meters, (0, 0, 8, 6),
                  options={"reduceOptions": {"calcs": ["lastNotNull"]}}),
            panel(
                "table",
                "Last uplink per meter (silent meters first)",
                [target('SELECT last("f_cnt") AS "f_cnt", last("rssi_dbm") AS "rssi_dbm"'
                        ' FROM "radio" WHERE $timeFilter GROUP BY "device"', table=True)],
                (8, 0, 16, 12),
                description="Sorted by time, oldest first: a meter at the top that is older than"
                " its interval is silent.",
                options={"sortBy": [{"displayName": "Time", "desc": False}]},
            ),
            panel("table", "Consumption today per site", consumption("day"), (0, 6, 8, 6),
                  time_from="now/d", description="lorameter's daily consumption, local days"),
            panel("table", "Consumption this month per site", consumption("month"),
                  (0, 12, 8, 6), time_from="now/M"),
            panel(
                "timeseries",
                "Daily consumption per medium",
                [
                    target(
                        f'SELECT sum("{REGISTERS[m]}") FROM "consumption" WHERE $timeFilter'
                        f" AND \"interval\" = 'day' AND \"medium\" = '{m}'"
                        ' AND "site" =~ /^$site$/ GROUP BY "site"',
                        chr(65 + i),
                        alias=f"{m} $tag_site",
                    )
                    for i, m in enumerate(MEDIA)
                ],
                (8, 12, 16, 8),
                custom=BARS,
                description="Summed per site and local day by lorameter: no InfluxQL GROUP BY"
                " time, so DST days and the first day of the range are right.",
            ),
        ],
        [SITE, medium_variable(multi=True)],
    )  # fmt: skip


def meter() -> Dict:
    where = '$timeFilter AND "device" =~ /^$device$/'

    def consumption(interval: str, grid: tuple[int, int, int, int], span: str) -> Dict:
        return panel(
            "timeseries",
            f"Consumption per {interval}",
            [target(f'SELECT {_REGISTER_RE} FROM "consumption" WHERE {where}'
                    f" AND \"interval\" = '{interval}'", alias="$col")],
            grid,
            custom=BARS,
            time_from=span,
            description=f"lorameter's consumption per local {interval} (bars at the start)",
        )  # fmt: skip

    def gauge(title: str, fields: list[str], grid: tuple[int, int, int, int], unit: str) -> Dict:
        select = ", ".join(f'mean("{f}") AS "{f}"' for f in fields)
        return panel(
            "timeseries",
            title,
            [target(f"SELECT {select} FROM /^$medium$/ WHERE {where}"
                    " GROUP BY time($__interval) fill(none)", alias="$col")],
            grid,
            unit=unit,
            custom=LINES,
        )  # fmt: skip

    devices = query_variable(
        "device",
        "Device",
        'SHOW TAG VALUES FROM /^$medium$/ WITH KEY = "device" WHERE "site" =~ /^$site$/',
        multi=False,
    )
    return dashboard(
        "lorameter-meter",
        "lorameter / Meter",
        [
            panel("stat", "Register", [target(
                f"SELECT last({_REGISTER_RE}) FROM /^$medium$/ WHERE {where}", alias="$col")],
                (0, 0, 6, 5), options={"reduceOptions": {"calcs": ["lastNotNull"]}}),
            panel("stat", "Uplinks in range", [target(
                f'SELECT count("f_cnt") FROM "uplink" WHERE {where}')], (6, 0, 6, 5),
                options={"reduceOptions": {"calcs": ["sum"]}}),
            panel("table", "Meter", [target(
                f'SELECT last("meter_serial") AS "meter_serial", last({_REGISTER_RE})'
                f' FROM /^$medium$/ WHERE {where} GROUP BY "meter", "decoder"', table=True)],
                (12, 0, 12, 5)),
            consumption("hour", (0, 5, 24, 8), "now-48h"),
            consumption("day", (0, 13, 12, 8), "now-31d"),
            consumption("month", (12, 13, 12, 8), "now-1y"),
            gauge("Flow and power", ["flow_m3h", "power_w"], (0, 21, 12, 8), ""),
            gauge("Temperatures", ["flow_temp_c", "return_temp_c", "temperature_c"],
                  (12, 21, 12, 8), "celsius"),
            gauge("Battery", ["battery_pct"], (0, 29, 8, 7), "percent"),
            panel("timeseries", "RSSI and SNR", [target(
                'SELECT mean("rssi_dbm") AS "rssi_dbm", mean("snr_db") AS "snr_db"'
                f' FROM "radio" WHERE {where} GROUP BY time($__interval) fill(none)',
                alias="$col")], (8, 29, 16, 7), custom=LINES),
        ],
        [SITE, medium_variable(multi=False), devices],
    )  # fmt: skip


def network() -> Dict:
    return dashboard(
        "lorameter-network",
        "lorameter / Network",
        [
            panel("timeseries", "Uplinks per hour", [target(
                'SELECT count("f_cnt") AS "uplinks" FROM "uplink" WHERE $timeFilter'
                " GROUP BY time(1h) fill(0)", alias="uplinks")], (0, 0, 24, 8), custom=BARS),
            panel("histogram", "RSSI distribution", [target(
                'SELECT "rssi_dbm" FROM "radio" WHERE $timeFilter')], (0, 8, 8, 8),
                unit="dBm", options=HISTOGRAM,
                description="All gateways: the radio measurement has no gateway tag."),
            panel("histogram", "SNR distribution", [target(
                'SELECT "snr_db" FROM "radio" WHERE $timeFilter')], (8, 8, 8, 8),
                unit="dB", options=HISTOGRAM),
            panel("histogram", "Spreading factor distribution", [target(
                'SELECT "spreading_factor" FROM "radio" WHERE $timeFilter')], (16, 8, 8, 8),
                options={"bucketCount": 6, "bucketSize": 1}),
            panel("timeseries", "Dead letters by reason", [target(
                'SELECT count("topic") FROM "dead_letter" WHERE $timeFilter'
                ' GROUP BY time($__interval), "reason" fill(none)', alias="$tag_reason")],
                (0, 16, 24, 8), custom=BARS),
        ],
        [],
    )  # fmt: skip


# The alarm flags meters report themselves (fields of the medium measurements, booleans).
FLAGS = ("leak", "backflow", "burst", "tamper", "low_battery", "meter_error")
_MEDIA_RE = "/^(" + "|".join(MEDIA) + ")$/"


def alarms() -> Dict:
    where = '$timeFilter AND "site" =~ /^$site$/ AND "device" =~ /^$device$/'
    now = ", ".join(f'last("alarm_{f}") AS "{f}"' for f in FLAGS)
    devices = query_variable(
        "device",
        "Device",
        f'SHOW TAG VALUES FROM {_MEDIA_RE} WITH KEY = "device" WHERE "site" =~ /^$site$/',
    )
    return dashboard(
        "lorameter-alarms",
        "lorameter / Alarms",
        [
            panel("table", "Alarm flags at the last reading, per meter", [target(
                f"SELECT {now} FROM {_MEDIA_RE} WHERE {where} GROUP BY \"device\"", table=True)],
                (0, 0, 24, 9),
                description="The flags meters report themselves. lorameter's own alarms (silent"
                " meter, thresholds, acknowledgements) are in the web view and /api/v1/alarms."),
            panel("timeseries", "Readings with an alarm flag set", [
                target(f'SELECT count("alarm_{f}") FROM {_MEDIA_RE} WHERE {where}'
                       f' AND "alarm_{f}" = true GROUP BY time($__interval), "device" fill(none)',
                       chr(65 + i), alias=f"$tag_device {f}")
                for i, f in enumerate(FLAGS)], (0, 9, 24, 9), custom=BARS),
        ],
        [SITE, devices],
    )  # fmt: skip


def build() -> dict[str, Dict]:
    """File name → dashboard, for every dashboard lorameter ships."""
    return {
        "alarms.json": alarms(),
        "fleet.json": fleet(),
        "meter.json": meter(),
        "network.json": network(),
    }


def render(board: Dict) -> str:
    return json.dumps(board, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write the dashboards into dashboards/json (``--check``: only say if they are stale)."""
    check = "--check" in (argv if argv is not None else sys.argv[1:])
    stale = []
    for name, board in build().items():
        path = _OUT / name
        text = render(board)
        if not path.exists() or path.read_text() != text:
            stale.append(name)
            if not check:
                path.write_text(text)
    if check and stale:
        print(f"stale: {', '.join(stale)}; run python -m dashboards.build", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
