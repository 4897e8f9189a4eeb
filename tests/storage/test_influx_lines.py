"""The line protocol of whole uplinks, exactly: the written-out ``uplink`` line and every point
equal ``encode_line`` of their fields, for every decoder's examples and for awkward values."""

from __future__ import annotations

import base64
import dataclasses
import random
from datetime import timedelta

import pytest

from decoders.core import Reading, Value
from decoders.registry import all_decoders
from storage.influx_schema import UNREGISTERED_METER, UPLINK, uplink_lines
from storage.line_protocol import encode_line
from storage.schema import MeterSighting, RawUplink, UplinkRecord, to_ns
from tests.storage.records import at, record


def _reference(rec: UplinkRecord) -> list[str]:
    """The lines of an uplink, each point through ``encode_line`` (the general encoder)."""
    raw = rec.raw
    fields: dict[str, Value] = {
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
    lines = [encode_line(UPLINK, {"device": raw.device}, fields, to_ns(raw.received_at))]
    if raw.simulated:
        return lines
    lines += [encode_line(p.measurement, p.tags, p.fields, to_ns(p.time)) for p in rec.points]
    for s in rec.sightings:
        sighting: dict[str, Value] = {
            "manufacturer": s.manufacturer,
            "version": s.version,
            "device_type": s.device_type,
            "medium": s.medium,
            "error": s.error,
        }
        tags = {"meter": s.meter, "bridge": s.bridge}
        lines.append(encode_line(UNREGISTERED_METER, tags, sighting, to_ns(s.seen_at)))
    return lines


def _records() -> list[UplinkRecord]:
    rnd = random.Random(13)
    out = []
    for decoder_id, decoder in sorted(all_decoders().items()):
        for example in decoder.examples:
            if not isinstance(example.expect, dict):
                continue
            values = {
                k: v for k, v in example.expect.items() if isinstance(v, int | float | str | bool)
            }
            if values:
                site = {"site": "Bernau, Nord=1", "building": rnd.choice(["", "B 2"])}
                medium = decoder.medium or "water"
                minute = rnd.randint(0, 10**6)
                device = f"dev {decoder_id}"
                payload = example.payload
                out.append(
                    record(
                        device,
                        minute,
                        values,
                        decoder=decoder_id,
                        medium=medium,
                        payload=payload,
                        site=site,
                    )
                )
    bridge = record("bridge", 7)
    sightings = (
        MeterSighting("KAM-12345678-1B-16", "bridge", at(7), "KAM", 1, 0x16, "water"),
        MeterSighting("X Y,1", "bridge", at(7), 'XY"', 2, 7, "", 'no "key"'),
    )
    odd: dict[str, Value] = {"meter_serial": 'a"b\\c', "custom": 3, "flag": True}
    history = (Reading({"volume_m3": 1.5}, at(-1000)), Reading({"volume_m3": 1.25}, at(-2000)))
    return [
        *out,
        record('q"uo\\te', 3, odd, meter='M"1\\x', key='k"\\ey'),
        record("simulated", 4, simulated=True),
        record("history", 5, extra_readings=history),
        record("no-radio", 6, rssi=None, snr=None),
        UplinkRecord(bridge.raw, bridge.points, sightings),
        record("big", 8, f_cnt=2**40),
        record("zähler", 9, meter="zähler 日本", decoder="x=y", payload=b""),
    ]


def test_uplink_lines_equal_the_general_encoder() -> None:
    records = _records()
    assert len(records) > 40  # every decoder's examples
    for rec in records:
        assert uplink_lines(rec) == _reference(rec)


def test_uplink_lines_exactly() -> None:
    assert uplink_lines(record("em 1", 0, meter='M"1', key='tts:k\\"x')) == [
        'uplink,device=em\\ 1 decoder="acme_em300",dedup_key="tts:k\\\\\\"x",'
        'dev_eui="70b3d57ed0000001",f_cnt=0i,f_port=2i,medium="electricity",meter="M\\"1",'
        'network="tts",payload="AQAB4kAE0l8=",simulated=false 1709553600000000000',
        'electricity,decoder=acme_em300,device=em\\ 1,meter=M"1,source=live'
        " energy_import_kwh=100.0,power_w=1200.5 1709553600000000000",
        "radio,device=em\\ 1 f_cnt=0i,gateway_count=2i,rssi_dbm=-97.5,snr_db=7.25,"
        "spreading_factor=7i 1709553600000000000",
    ]


def _with_raw(rec: UplinkRecord, **changes: object) -> UplinkRecord:
    return UplinkRecord(dataclasses.replace(rec.raw, **changes), rec.points)  # type: ignore[arg-type]


def test_uplink_values_of_other_types_go_the_general_way() -> None:
    rec = record("em-1", 0)
    # a bool frame counter is written as its Python type says, as encode_line writes it
    odd = _with_raw(rec, f_cnt=True, simulated=1)
    assert uplink_lines(odd) == _reference(odd)
    assert "f_cnt=true" in uplink_lines(odd)[0]
    with pytest.raises(ValueError, match="64-bit"):
        uplink_lines(_with_raw(rec, f_cnt=2**63))
    with pytest.raises(ValueError, match="outside InfluxDB's range"):
        uplink_lines(_with_raw(rec, received_at=at(0) + timedelta(days=365 * 300)))


def test_raw_uplink_fields_are_the_ones_written() -> None:
    """The written-out line names every field of a raw uplink but the tag ``device`` and the
    time: a field added to RawUplink must be added to the line too."""
    names = {f.name for f in dataclasses.fields(RawUplink)} - {"device", "received_at"}
    line = uplink_lines(record("em-1", 0))[0]
    written = {pair.split("=", 1)[0] for pair in line.split(" ")[1].split(",")}
    assert written == names
