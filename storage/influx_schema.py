"""The schema in InfluxDB: uplinks as line protocol, InfluxQL statements, results as rows (pure).

Every name or value from outside (device ids, field names) goes through ``quote_literal`` or
``quote_ident``, so it can never change a statement. Each read starts with ``SHOW FIELD KEYS``:
the field types tell fields from tags in ``SELECT *`` and give values their type back (InfluxDB's
JSON prints the float 95.0 as 95).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any

from decoders.core import MEDIA, Value
from storage.base import DeviceSummary, StoredDeadLetter, UnregisteredMeter
from storage.line_protocol import (
    INT64_MAX,
    check_time,
    encode_line,
    escape_string,
    escape_tag_value,
    quote_ident,
    quote_literal,
    series_key,
)
from storage.schema import (
    BASE_TAGS,
    RADIO,
    DeadLetter,
    MeterSighting,
    RawUplink,
    UplinkRecord,
    from_ns,
    to_ns,
)

__all__ = [
    "DEAD_LETTER",
    "UNREGISTERED_METER",
    "UPLINK",
    "FieldTypes",
    "dead_letter_line",
    "dead_letter_reason",
    "dead_letter_rows",
    "device_statements",
    "device_summaries",
    "field_types",
    "raw_uplink_rows",
    "unregistered_meter_rows",
    "unregistered_meter_statements",
    "uplink_lines",
]

UPLINK = "uplink"
DEAD_LETTER = "dead_letter"
UNREGISTERED_METER = "unregistered_meter"

FieldTypes = dict[str, dict[str, str]]  # measurement -> field -> float|integer|boolean|string
Row = dict[str, Any]


def uplink_lines(record: UplinkRecord) -> list[str]:
    """The line protocol of one uplink: its raw form, and its points unless simulated."""
    raw = record.raw
    received_ns = to_ns(raw.received_at)
    lines = [_uplink_line(raw, received_ns)]
    if not raw.simulated:
        # most points are at the receive time: its nanoseconds are worked out once
        received_at = raw.received_at
        lines.extend(
            [
                encode_line(
                    p.measurement,
                    p.tags,
                    p.fields,
                    received_ns if p.time == received_at else to_ns(p.time),
                )
                for p in record.points
            ]
        )
        lines.extend([_sighting_line(s) for s in record.sightings])
    return lines


def _uplink_line(raw: RawUplink, received_ns: int) -> str:
    """The ``uplink`` line of a raw uplink: ``encode_line`` of ``_uplink_fields``, written out
    field by field in their order (every uplink has these fields, of these types; a value of
    another type goes the general way)."""
    f_cnt, f_port, simulated = raw.f_cnt, raw.f_port, raw.simulated
    texts: tuple[str, ...] = (
        raw.decoder, raw.dedup_key, raw.dev_eui, raw.medium, raw.meter, raw.network
    )  # fmt: skip
    if not (
        _is_int64(f_cnt)
        and _is_int64(f_port)
        and type(simulated) is bool
        and tuple(map(type, texts)) == _SIX_STRINGS
    ):
        return encode_line(UPLINK, {"device": raw.device}, _uplink_fields(raw), received_ns)
    check_time(received_ns)
    joined = "".join(texts)
    if "\\" in joined or '"' in joined:  # rare: escaped one by one (escape_string, unquoted)
        texts = tuple(escape_string(text)[1:-1] for text in texts)
    decoder, dedup_key, dev_eui, medium, meter, network = texts
    payload = base64.b64encode(raw.payload).decode()  # base64: nothing to escape
    return (
        f"{series_key(UPLINK, (('device', raw.device),))}"
        f' decoder="{decoder}",dedup_key="{dedup_key}",dev_eui="{dev_eui}",f_cnt={f_cnt}i'
        f',f_port={f_port}i,medium="{medium}",meter="{meter}",network="{network}"'
        f',payload="{payload}",simulated={"true" if simulated else "false"} {received_ns}'
    )


_SIX_STRINGS = (str,) * 6


def _uplink_fields(raw: RawUplink) -> dict[str, Value]:
    """The fields of a raw uplink's ``uplink`` point."""
    return {
        "dedup_key": raw.dedup_key,
        "dev_eui": raw.dev_eui,
        "network": raw.network,
        "f_port": raw.f_port,
        "f_cnt": raw.f_cnt,
        "payload": base64.b64encode(raw.payload).decode(),
        "decoder": raw.decoder,
        "medium": raw.medium,
        "meter": raw.meter,
        "simulated": raw.simulated,
    }


def _is_int64(value: object) -> bool:
    return type(value) is int and -INT64_MAX - 1 <= value <= INT64_MAX


def _sighting_line(sighting: MeterSighting) -> str:
    """One ``unregistered_meter`` point: tags meter and bridge, at the uplink's receive time, so
    a redelivered uplink rewrites it and ``count`` stays the number of uplinks."""
    fields: dict[str, Value] = {
        "manufacturer": sighting.manufacturer,
        "version": sighting.version,
        "device_type": sighting.device_type,
        "medium": sighting.medium,
        "error": sighting.error,
    }
    tags = {"meter": sighting.meter, "bridge": sighting.bridge}
    return encode_line(UNREGISTERED_METER, tags, fields, to_ns(sighting.seen_at))


def unregistered_meter_statements() -> list[str]:
    """Count, first sighting and newest sighting of each meter per bridge."""
    source = f"{quote_ident(UNREGISTERED_METER)} GROUP BY meter, bridge"
    return [
        f"SELECT count(device_type) FROM {source}",
        f"SELECT first(device_type) FROM {source}",
        f"SELECT * FROM {source} ORDER BY time DESC LIMIT 1",
    ]


def unregistered_meter_rows(results: Sequence[Mapping[str, Any]]) -> list[UnregisteredMeter]:
    """The results of ``unregistered_meter_statements``, sorted by meter and bridge."""

    def by_key(result: Mapping[str, Any]) -> dict[tuple[str, str], Row]:
        return {
            (str(s["tags"]["meter"]), str(s["tags"]["bridge"])): _rows(s)[0]
            for s in _series(result)
            if _rows(s)
        }

    counts, firsts, lasts = (by_key(r) for r in results)
    return [
        UnregisteredMeter(
            meter=meter,
            bridge=bridge,
            manufacturer=str(last["manufacturer"]),
            version=int(last["version"]),
            device_type=int(last["device_type"]),
            medium=str(last["medium"] or ""),
            first_seen=from_ns(int(firsts[meter, bridge]["time"])),
            last_seen=from_ns(int(last["time"])),
            count=int(counts[meter, bridge]["count"]),
            last_error=str(last["error"] or ""),
        )
        for (meter, bridge), last in sorted(lasts.items())
    ]


def dead_letter_line(letter: DeadLetter, seq: int) -> str:
    """The line of one dead letter.

    Dead letters are not idempotent (local clock time): the sub-microsecond ``seq`` keeps two
    letters of the same microsecond apart, and they still read back as that microsecond.
    """
    reason = dead_letter_reason(letter)
    fields: dict[str, Value] = {
        "topic": letter.topic,
        "detail": letter.detail,
        "raw": base64.b64encode(letter.raw).decode(),
        "device": letter.device,
    }
    return encode_line(
        DEAD_LETTER, {"reason": reason}, fields, to_ns(letter.received_at) + seq % 1000
    )


def dead_letter_reason(letter: DeadLetter) -> str:
    """The letter's reason as stored: ``invalid_reason`` where it cannot be a tag value."""
    try:
        escape_tag_value(letter.reason)
    except ValueError:
        return "invalid_reason"
    return letter.reason


def _series(result: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list(result.get("series", []))


def _rows(series: Mapping[str, Any]) -> list[Row]:
    columns = series["columns"]
    return [dict(zip(columns, values, strict=True)) for values in series.get("values", [])]


def field_types(result: Mapping[str, Any]) -> FieldTypes:
    """The result of ``SHOW FIELD KEYS`` as measurement -> field -> type."""
    return {
        s["name"]: {str(key): str(kind) for key, kind in s.get("values", [])}
        for s in _series(result)
    }


def _typed(kind: str, value: Any) -> Value:
    if kind == "float":
        return float(value)
    if kind == "integer":
        return int(value)
    if kind == "boolean":
        return bool(value)
    return str(value)


def field_values(row: Row, types: Mapping[str, str]) -> dict[str, Value]:
    """The non-null fields of a row (tags and time left out), typed."""
    return {
        name: _typed(types[name], value)
        for name, value in row.items()
        if name in types and value is not None
    }


def _where(*conditions: str) -> str:
    present = [c for c in conditions if c]
    return f" WHERE {' AND '.join(present)}" if present else ""


def device_statements(device: str | None) -> list[str]:
    """Statements for the device summaries: all devices, or one."""
    only = f"device = {quote_literal(device)}" if device is not None else ""
    real = _where("simulated = false", only)
    statements = [
        "SHOW FIELD KEYS",
        f"SELECT count(f_port) FROM {UPLINK}{real} GROUP BY device",
        f"SELECT first(f_port) FROM {UPLINK}{real} GROUP BY device",
        f"SELECT last(f_cnt), dev_eui, decoder, medium, meter FROM {UPLINK}{real} GROUP BY device",
        f"SELECT * FROM {RADIO}{_where(only)} GROUP BY device ORDER BY time DESC LIMIT 1",
    ]
    for medium in MEDIA:
        m = quote_ident(medium)
        statements += [
            f"SELECT * FROM {m}{_where(only)} GROUP BY device ORDER BY time DESC LIMIT 1",
            f"SELECT last(battery_pct) FROM {m}{_where(only)} GROUP BY device",
            f"SELECT last(battery_v) FROM {m}{_where(only)} GROUP BY device",
        ]
    return statements


def _by_device(result: Mapping[str, Any]) -> dict[str, Row]:
    out: dict[str, Row] = {}
    for series in _series(result):
        rows = _rows(series)
        if rows:
            out[str(series["tags"]["device"])] = rows[0]
    return out


def device_summaries(results: Sequence[Mapping[str, Any]]) -> list[DeviceSummary]:
    """The results of ``device_statements`` as summaries, sorted by device."""
    types = field_types(results[0])
    counts, firsts, lasts, radios = (_by_device(r) for r in results[1:5])
    per_medium = {
        medium: [_by_device(r) for r in results[5 + 3 * i : 8 + 3 * i]]
        for i, medium in enumerate(MEDIA)
    }
    summaries = []
    for device in sorted(lasts):
        last = lasts[device]
        medium = str(last["medium"])
        latest, battery_pct, battery_v = per_medium.get(medium, [{}, {}, {}])
        reading = latest.get(device)
        radio = field_values(radios.get(device, {}), types.get(RADIO, {}))
        summaries.append(
            DeviceSummary(
                device=device,
                dev_eui=str(last["dev_eui"]),
                decoder=str(last["decoder"]),
                medium=medium,
                meter=str(last["meter"] or ""),
                first_seen=from_ns(int(firsts[device]["time"])),
                last_seen=from_ns(int(last["time"])),
                uplinks=int(counts[device]["count"]),
                last_f_cnt=int(last["last"]),
                last_reading=field_values(reading, types.get(medium, {})) if reading else {},
                last_reading_at=from_ns(int(reading["time"])) if reading else None,
                battery_pct=_float(battery_pct.get(device, {}).get("last")),
                battery_v=_float(battery_v.get(device, {}).get("last")),
                rssi_dbm=_float(radio.get("rssi_dbm")),
                snr_db=_float(radio.get("snr_db")),
                tags=_site_tags(reading, types.get(medium, {})) if reading else {},
            )
        )
    return summaries


def raw_uplink_rows(results: Sequence[Mapping[str, Any]]) -> list[RawUplink]:
    """Rows of ``SELECT * FROM uplink`` as raw uplinks."""
    return [
        RawUplink(
            device=str(row["device"]),
            dev_eui=str(row["dev_eui"]),
            network=str(row["network"]),
            dedup_key=str(row["dedup_key"]),
            received_at=from_ns(int(row["time"])),
            f_port=int(row["f_port"]),
            f_cnt=int(row["f_cnt"]),
            payload=base64.b64decode(str(row["payload"])),
            decoder=str(row["decoder"]),
            medium=str(row["medium"]),
            meter=str(row["meter"] or ""),
            simulated=bool(row["simulated"]),
        )
        for series in _series(results[0])
        for row in _rows(series)
    ]


def stored_dead_letter_rows(results: Sequence[Mapping[str, Any]]) -> list[StoredDeadLetter]:
    """Rows of ``SELECT * FROM dead_letter`` with their exact nanosecond time as the key."""
    return [
        StoredDeadLetter(str(int(row["time"])), letter)
        for series in _series(results[0])
        for row, letter in zip(_rows(series), dead_letter_rows([{"series": [series]}]), strict=True)
    ]


def dead_letter_rows(results: Sequence[Mapping[str, Any]]) -> list[DeadLetter]:
    """Rows of ``SELECT * FROM dead_letter`` as dead letters."""
    return [
        DeadLetter(
            received_at=from_ns(int(row["time"])),
            topic=str(row["topic"] or ""),
            reason=str(row["reason"] or ""),
            detail=str(row["detail"] or ""),
            raw=base64.b64decode(str(row["raw"] or "")),
            device=str(row["device"] or ""),
        )
        for series in _series(results[0])
        for row in _rows(series)
    ]


def _site_tags(row: Row, fields: Mapping[str, str]) -> dict[str, str]:
    """The registry's tags of a ``SELECT *`` row: its columns that are neither fields nor ours."""
    skip = {"time", *BASE_TAGS}
    return {k: str(v) for k, v in row.items() if k not in fields and k not in skip and v}


def _float(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


# A series read names its devices in the query up to this many; beyond, it reads the whole
# measurement and keeps the devices asked for (one scan beats a 10,000-way OR).
_MAX_DEVICE_FILTER = 100


def series_statements(
    field: str,
    start_ns: int,
    end_ns: int,
    lookback_ns: int,
    devices: Sequence[str] | None,
    medium: str | None,
) -> list[str]:
    """The window, the last value before it and the first after it, grouped by device."""
    source = quote_ident(medium) if medium else f"/^({'|'.join(MEDIA)})$/"
    only = ""
    if devices is not None and len(devices) <= _MAX_DEVICE_FILTER:
        only = "(" + " OR ".join(f"device = {quote_literal(d)}" for d in devices) + ")"
    f = quote_ident(field)
    window = _where(f"time >= {start_ns}", f"time <= {end_ns}", only)
    before = _where(f"time < {start_ns}", f"time >= {start_ns - lookback_ns}", only)
    after = _where(f"time > {end_ns}", f"time <= {end_ns + lookback_ns}", only)
    return [
        f"SELECT {f} FROM {source}{window} GROUP BY device",
        f"SELECT last({f}) FROM {source}{before} GROUP BY device",
        f"SELECT first({f}) FROM {source}{after} GROUP BY device",
    ]


def series_points(
    results: Sequence[Mapping[str, Any]], devices: Sequence[str] | None
) -> dict[str, list[tuple[int, float]]]:
    """(time, value) pairs per device from ``series_statements``, numbers only, unsorted."""
    wanted = set(devices) if devices is not None else None
    out: dict[str, list[tuple[int, float]]] = {}
    for result in results:
        for series in _series(result):
            device = str(series["tags"]["device"])
            if wanted is not None and device not in wanted:
                continue
            pairs = out.setdefault(device, [])
            for time_ns, value in series.get("values", []):
                if isinstance(value, int | float) and not isinstance(value, bool):
                    pairs.append((int(time_ns), float(value)))
    return out
