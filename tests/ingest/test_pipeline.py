"""The pipeline: decoder selection, points, and a dead letter for every kind of bad input."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ingest.devices import DeviceEntry, DeviceRegistry, RegistryError, parse_registry
from ingest.pipeline import Accepted, Pipeline, Rejected
from storage.schema import RADIO, MeterSighting
from tests.helpers import chirpstack_up, tts_up

NOW = datetime(2026, 1, 1, tzinfo=UTC)
FIXTURES = Path(__file__).parent / "fixtures"
ESI = bytes.fromhex("03010BB8 01 01 00 40420F0000 00 10270000".replace(" ", ""))
PULSES = bytes.fromhex("0175 5C 0367 0401 05C8 E8030000".replace(" ", ""))  # 1000 pulses

PARSED = parse_registry(
    {
        "devices": [
            {
                "device": "pulse-1",
                "dev_eui": "70B3D5E50000AAAA",
                "decoder": "milesight_em300_di",
                "medium": "water",
                "meter": "W-42",
                "tags": {"site": "rathaus"},
                "params": {"pulse_factor": 10, "pulse_unit": "l", "pulse_offset": 100.5},
            },
        ]
    }
)
# Entries the registry file refuses at start (see test_devices): built around its validation
# to prove the pipeline still dead-letters them rather than failing.
REGISTRY = DeviceRegistry(
    [
        *PARSED.entries,
        DeviceEntry.model_construct(device="ghost", decoder="no_such_decoder", medium="water"),
        DeviceEntry.model_construct(device="no-medium", decoder="milesight_em300_di"),
        # params the decoder cannot take (a list for a medium): it raises TypeError today
        DeviceEntry.model_construct(
            device="crash", decoder="milesight_em300_di", medium="water", params={"medium": [1]}
        ),
    ]
)


def run(message: bytes, registry=REGISTRY, **kw) -> Accepted | Rejected:
    return Pipeline(registry, **kw).process("v3/app@ttn/devices/x/up", message, NOW)


def accepted(message: bytes, **kw) -> Accepted:
    out = run(message, **kw)
    assert isinstance(out, Accepted), out
    return out


def rejected(message: bytes, reason: str, **kw) -> Rejected:
    out = run(message, **kw)
    assert isinstance(out, Rejected), out
    assert out.letter.reason == reason, out.letter
    assert out.letter.raw == message  # kept whole, so it can be replayed
    assert out.letter.received_at == NOW
    return out


def test_decoder_chosen_by_tts_version_ids() -> None:
    out = accepted(tts_up("esi-1", ESI, f_port=10, brand="elv", model="elv-lw-esi"))
    raw, points = out.record.raw, out.record.points
    assert (raw.decoder, raw.medium, raw.device) == ("elv_lw_esi", "electricity", "esi-1")
    meter = [p for p in points if p.measurement == "electricity"]
    assert len(meter) == 1
    assert meter[0].fields == {"energy_import_kwh": 0.1, "power_w": 100.0}
    # no meter time in the payload: the network server's receive time, never the local clock
    assert meter[0].time == datetime(2025, 11, 20, 10, 15, 42, 866470, tzinfo=UTC)
    assert meter[0].tags == {
        "device": "esi-1",
        "meter": "",
        "decoder": "elv_lw_esi",
        "source": "live",
    }
    radio = next(p for p in points if p.measurement == RADIO)
    assert radio.fields["rssi_dbm"] == -97 and radio.fields["f_cnt"] == 1


def test_registry_gives_decoder_medium_meter_tags_and_pulse_factor() -> None:
    out = accepted(tts_up("pulse-1", PULSES, f_port=85, dev_eui="70B3D5E50000AAAA"))
    water = next(p for p in out.record.points if p.measurement == "water")
    assert water.fields["pulse_count"] == 1000
    assert water.fields["volume_m3"] == pytest.approx(100.5 + 1000 * 10 / 1000)
    assert water.tags == {
        "device": "pulse-1",
        "meter": "W-42",
        "decoder": "milesight_em300_di",
        "site": "rathaus",
        "source": "live",
    }
    assert out.record.raw.meter == "W-42"


def test_registry_matches_by_dev_eui_whatever_the_device_id() -> None:
    out = accepted(tts_up("renamed-in-console", PULSES, f_port=85, dev_eui="70b3d5e50000aaaa"))
    assert out.record.raw.device == "pulse-1"


def test_chirpstack_uplink_decoded_via_registry_dev_eui() -> None:
    registry = parse_registry(
        {"devices": [{"dev_eui": "a84041ffff1c0042", "decoder": "elv_lw_esi"}]}
    )
    out = accepted(chirpstack_up("A84041FFFF1C0042", ESI), registry=registry)
    assert out.record.raw.device == "a84041ffff1c0042"
    assert out.record.raw.dedup_key.startswith("cs:")


def test_simulated_uplinks_never_become_readings() -> None:
    out = accepted(tts_up("esi-1", ESI, f_port=10, brand="elv", model="elv-lw-esi", simulated=True))
    assert out.record.raw.simulated
    assert out.record.points == ()


def test_same_message_gives_same_points() -> None:
    message = tts_up("esi-1", ESI, f_port=10, brand="elv", model="elv-lw-esi")
    assert accepted(message).record == accepted(message).record


def test_meter_history_keeps_its_own_times() -> None:
    w1 = bytes.fromhex(
        "41643A5E 10 77010000 F086395E 77010000".replace(" ", "") + "0000" * 15
    )  # Axioma W1 extended frame: 15 hourly values + now
    out = accepted(tts_up("w1", w1, f_port=100, brand="axioma", model="qalcosonic-w1"))
    times = [p.time for p in out.record.points if p.measurement == "water"]
    assert len(times) == 17
    assert times[0] == datetime(2020, 2, 4, 15, tzinfo=UTC)
    assert times == sorted(times)


@pytest.mark.parametrize(
    ("message", "reason", "words"),
    [
        (b"not json at all", "not_json", "not JSON"),
        (b'{"uplink_message": 3}', "bad_envelope", "end_device_ids"),
        (tts_up("x", None, f_port=None), "no_payload", "MAC-only"),
        (tts_up("x", None, f_port=5), "no_payload", "fPort 5 without"),
        (tts_up("stranger", b"\x01", f_port=1), "unknown_device", "not in the device registry"),
        (
            tts_up("x", b"\x01", brand="nobody", model="nothing"),
            "unknown_decoder",
            "nobody/nothing",
        ),
        (tts_up("ghost", b"\x01", dev_eui=""), "unknown_decoder", "no_such_decoder"),
        (tts_up("no-medium", PULSES, f_port=85, dev_eui=""), "unknown_device", "medium"),
        (tts_up("crash", PULSES, f_port=85, dev_eui=""), "decode_error", "milesight_em300_di"),
        (
            tts_up("esi-1", b"\x03\x01", f_port=10, brand="elv", model="elv-lw-esi"),
            "decode_error",
            "elv_lw_esi",
        ),
    ],
)
def test_bad_input_becomes_a_dead_letter(message: bytes, reason: str, words: str) -> None:
    letter = rejected(message, reason).letter
    assert words in letter.detail


def test_bad_base64_dead_letter() -> None:
    document = json.loads(tts_up("x", b"\x01"))
    document["uplink_message"]["frm_payload"] = "@@@"
    rejected(json.dumps(document).encode(), "bad_base64")


def test_one_megabyte_message_is_rejected_unread() -> None:
    huge = tts_up("x", b"\x01" * 700_000)
    assert len(huge) > 900_000
    letter = rejected(huge, "too_large", max_bytes=256 * 1024).letter
    assert "limit" in letter.detail


def test_known_device_name_in_dead_letter() -> None:
    letter = rejected(tts_up("pulse-1", b"\xff", f_port=85, dev_eui=""), "decode_error").letter
    assert letter.device == "pulse-1"


PROFILED = parse_registry(
    {
        "devices": [
            {
                "device": "wm-0731",
                "medium": "water",
                "meter": "WM-2024-000731",
                "profile": {
                    "volume_m3": {"path": "volume_l", "unit": "l"},
                    "battery_v": {"path": "battery_mv", "unit": "mV"},
                    "alarm_leak": "leak",
                },
            },
            {
                "dev_eui": "a84041ffff1c0042",
                "medium": "electricity",
                "profile": {"energy_import_kwh": "energy_kwh", "power_w": "power_w"},
            },
        ]
    }
)


def test_zero_code_profile_maps_tts_decoded_payload() -> None:
    message = (FIXTURES / "tts-uplink-example.json").read_bytes()
    out = run(message, registry=PROFILED)
    assert isinstance(out, Accepted), out
    water = next(p for p in out.record.points if p.measurement == "water")
    assert water.fields == {"volume_m3": 123.456, "battery_v": 3.6, "alarm_leak": False}
    assert water.tags["decoder"] == "profile"
    assert out.record.raw.payload  # the raw bytes are kept for a real decoder later


def test_zero_code_profile_maps_chirpstack_object() -> None:
    message = (FIXTURES / "chirpstack-up-example.json").read_bytes()
    out = run(message, registry=PROFILED)
    assert isinstance(out, Accepted), out
    meter = next(p for p in out.record.points if p.measurement == "electricity")
    assert meter.fields == {"energy_import_kwh": 12345.678, "power_w": 512.0}


def test_zero_code_profile_without_decoded_output_is_a_dead_letter() -> None:
    document = json.loads((FIXTURES / "tts-uplink-example.json").read_bytes())
    del document["uplink_message"]["decoded_payload"]  # the TTS formatter failed
    letter = rejected(json.dumps(document).encode(), "decode_error", registry=PROFILED).letter
    assert "carries none" in letter.detail
    document["uplink_message"]["decoded_payload"] = {"volume_l": "n/a"}
    letter = rejected(json.dumps(document).encode(), "decode_error", registry=PROFILED).letter
    assert "not a number" in letter.detail


def test_profile_needs_medium_and_excludes_decoder() -> None:
    with pytest.raises(RegistryError, match="needs its medium"):
        parse_registry({"devices": [{"device": "a", "profile": {"volume_m3": "v"}}]})
    with pytest.raises(RegistryError, match="not both"):
        parse_registry(
            {
                "devices": [
                    {
                        "device": "a",
                        "medium": "water",
                        "decoder": "elv_lw_esi",
                        "profile": {"volume_m3": "v"},
                    }
                ]
            }
        )


BRIDGE_REGISTRY = parse_registry(
    {
        "devices": [
            {"device": "bridge-1", "decoder": "wmbus_bridge", "tags": {"site": "nord"}},
            {
                "device": "wm-0815",
                "wmbus": "kam-12345678-1b-16",
                "medium": "water",
                "meter": "W-0815",
                "params": {"aes_key": "000102030405060708090A0B0C0D0E0F"},
            },
        ]
    }
)
KAMSTRUP = (  # AES mode 5, 12.345 m³
    "2E442D2C785634121B167A2B002005DD336913BCB1302F244F3659210A4DACC4E68A3064E0533242BE21BF5A7A24B9"
)
SENSUS = "1844AE4C4455223368077A55000000041389E20100023B0000"  # a meter nobody registered


def test_bridge_uplink_stores_each_registered_meter_under_its_own_device() -> None:
    message = tts_up("bridge-1", bytes.fromhex(KAMSTRUP + SENSUS), f_port=1)
    out = accepted(message, registry=BRIDGE_REGISTRY)
    water = [p for p in out.record.points if p.measurement == "water"]
    assert len(water) == 1, water  # the unregistered SEN meter is not stored
    assert water[0].fields["volume_m3"] == 12.345
    assert water[0].tags == {
        "device": "wm-0815",
        "meter": "W-0815",
        "decoder": "wmbus_bridge",
        "source": "live",
    }
    assert out.record.raw.device == "bridge-1"  # the raw telegrams stay with the bridge
    assert out.record.raw.payload == bytes.fromhex(KAMSTRUP + SENSUS)


def test_imst_range_extender_chosen_by_tts_ids_dates_meters_by_its_receive_time() -> None:
    heard = "80C22E61"  # the extender heard the telegram at 2021-09-01 00:00:00 UTC
    payload = bytes.fromhex(heard + KAMSTRUP + heard + SENSUS)
    message = tts_up("ext-1", payload, f_port=4, brand="imst", model="range-extender")
    out = accepted(message, registry=BRIDGE_REGISTRY)
    (water,) = [p for p in out.record.points if p.measurement == "water"]
    assert (water.tags["device"], water.tags["decoder"]) == ("wm-0815", "imst_range_extender")
    assert water.fields["volume_m3"] == 12.345
    assert water.time == datetime(2021, 9, 1, tzinfo=UTC)  # not the network's receive time
    assert [s.meter for s in out.record.sightings] == ["SEN-33225544-68-07"]
    assert out.record.raw.device == "ext-1" and out.record.raw.payload == payload


# IoT-Factory's M-Bus gateway example: meter 21211208, 0 then 540 Wh, then an error answer
MBUS_GATEWAY = (
    "a0e305bd01051600db3a7865000812212102000c04000000001600db3a7865000812212102000c0454000000"
    "1600df3a786500081221210002000000"
)


def test_mbus_gateway_meter_found_by_its_identification_alone() -> None:
    message = tts_up("gw-1", bytes.fromhex(MBUS_GATEWAY), f_port=10, brand="iot-factory",
                     model="m-bus-gateway")  # fmt: skip
    unknown = accepted(message, registry=BRIDGE_REGISTRY).record
    assert not [p for p in unknown.points if p.measurement == "electricity"]
    assert [s.meter for s in unknown.sightings] == ["@@@-21211208-00-02", "@@@-21211208-00-00"]
    registry = parse_registry(
        {"devices": [{"device": "em-12", "wmbus": "ABB-21211208-02-02", "medium": "electricity"}]}
    )
    known = accepted(message, registry=registry).record
    energy = [p for p in known.points if p.measurement == "electricity"]
    got = [(p.tags["device"], p.time.second, p.fields.get("energy_import_kwh")) for p in energy]
    assert got == [("em-12", 3, 0.54), ("em-12", 7, None)]
    assert energy[1].fields["alarm_meter_error"] is True
    assert not known.sightings


def test_bridge_uplink_records_the_meters_the_registry_does_not_list() -> None:
    message = tts_up("bridge-1", bytes.fromhex(SENSUS + KAMSTRUP + SENSUS), f_port=1)
    registered = accepted(message, registry=BRIDGE_REGISTRY).record
    assert [s.meter for s in registered.sightings] == ["SEN-33225544-68-07"]  # once per uplink
    (sensus,) = registered.sightings
    assert sensus == MeterSighting(
        meter="SEN-33225544-68-07",
        bridge="bridge-1",
        seen_at=datetime(2025, 11, 20, 10, 15, 42, 866470, tzinfo=UTC),  # the network's time
        manufacturer="SEN",
        version=0x68,
        device_type=0x07,
        medium="water",
        error="",
    )
    only_bridge = parse_registry({"devices": [{"device": "bridge-1", "decoder": "wmbus_bridge"}]})
    record = accepted(message, registry=only_bridge).record
    kamstrup = {s.meter: s for s in record.sightings}["KAM-12345678-1B-16"]
    assert (kamstrup.medium, kamstrup.device_type) == ("water", 0x16)
    assert "no aes_key" in kamstrup.error
    assert not [p for p in record.points if p.measurement == "water"]


def test_a_bridge_uplink_decoded_again_reads_the_meters_registered_since() -> None:
    message = tts_up("bridge-1", bytes.fromhex(KAMSTRUP + SENSUS), f_port=1)
    only_bridge = parse_registry({"devices": [{"device": "bridge-1", "decoder": "wmbus_bridge"}]})
    raw = accepted(message, registry=only_bridge).record.raw
    out = Pipeline(BRIDGE_REGISTRY).redecode(raw)  # the Kamstrup meter is registered now
    assert isinstance(out, Accepted), out
    (water,) = [p for p in out.record.points if p.measurement == "water"]
    assert (water.device, water.fields["volume_m3"]) == ("wm-0815", 12.345)
    live = accepted(message, registry=BRIDGE_REGISTRY).record.points
    assert water in live  # the very point live ingest writes: redecoding twice changes nothing


def test_bridge_meter_entries_are_checked() -> None:
    with pytest.raises(RegistryError, match="wmbus"):
        parse_registry({"devices": [{"device": "m", "wmbus": "KAM-1234"}]})
    with pytest.raises(RegistryError, match="no decoder or profile"):
        parse_registry(
            {"devices": [{"device": "m", "wmbus": "KAM-12345678-1B-16", "decoder": "x"}]}
        )


def test_a_bug_in_the_pipeline_becomes_a_dead_letter_not_an_exception(monkeypatch) -> None:
    """Issue 8: nothing a message does may raise into paho's network thread."""
    import ingest.pipeline

    def broken(message: bytes) -> None:
        raise KeyError("surprise")

    monkeypatch.setattr(ingest.pipeline, "parse_envelope", broken)
    outcome = Pipeline().process("t/1", b"{}", NOW)
    assert isinstance(outcome, Rejected)
    assert outcome.letter.reason == "internal_error"
    assert "KeyError" in outcome.letter.detail and outcome.letter.raw == b"{}"
