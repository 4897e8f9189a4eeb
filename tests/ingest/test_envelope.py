"""Envelope parsing against real-shaped TTS v3 and ChirpStack v4 messages."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ingest.envelope import EnvelopeError, parse_envelope
from tests.helpers import chirpstack_up, tts_up

FIXTURES = Path(__file__).parent / "fixtures"


def test_tts_reference_uplink() -> None:
    up = parse_envelope((FIXTURES / "tts-uplink-example.json").read_bytes())
    assert up.network == "tts"
    assert up.device_id == "wm-0731"
    assert up.dev_eui == "0004a30b00f1c0de"
    assert (up.f_port, up.f_cnt) == (2, 18342)
    assert up.payload == bytes.fromhex("0140e20100000000100e")
    # the network server's receive time, not the AS time or a gateway clock
    assert up.received_at == datetime(2025, 11, 20, 10, 15, 42, 866470, tzinfo=UTC)
    assert up.dedup_key == "tts:0004a30b00f1c0de:AZNx3fK2RWqB0c8ePj1tYg==:18342"
    assert (up.brand_id, up.model_id) == ("acme-metering", "aqua-w1")
    assert up.radio.rssi_dbm == -97 and up.radio.snr_db == 7.25  # the best of two gateways
    assert up.radio.gateway_count == 2
    assert up.radio.spreading_factor == 9
    assert up.radio.channel_frequency_hz == 868_300_000
    assert up.radio.airtime_s == pytest.approx(0.205824)
    assert up.attributes["site"] == "plant-3"
    assert not up.simulated


def test_chirpstack_reference_uplink() -> None:
    up = parse_envelope((FIXTURES / "chirpstack-up-example.json").read_bytes())
    assert up.network == "chirpstack"
    assert up.device_id == up.dev_eui == "a84041ffff1c0042"
    assert up.dedup_key == "cs:5f0c7e2a-9b41-4c8d-a6e3-1d2f3b4c5a69"
    assert (up.f_port, up.f_cnt) == (10, 5127)
    assert up.received_at == datetime(2025, 11, 20, 10, 15, 42, 812000, tzinfo=UTC)
    assert up.radio.rssi_dbm == -97 and up.radio.snr_db == 7.2
    assert up.radio.gateway_count == 2
    assert up.attributes == {"meter_type": "electricity", "site": "plant-3"}


def test_tts_omitted_zero_fields_mean_zero() -> None:
    up = parse_envelope(tts_up("d1", b"\x01", f_cnt=0))
    assert up.f_cnt == 0  # first uplink after a join: TTS omits f_cnt
    mac_only = parse_envelope(tts_up("d1", None, f_port=None))
    assert (mac_only.f_port, mac_only.payload) == (0, b"")


def test_session_key_separates_frame_counters_of_two_joins() -> None:
    a = parse_envelope(tts_up("d1", b"\x01", f_cnt=0, session="AAAAAAAAAAAAAAAAAAAAAA=="))
    b = parse_envelope(tts_up("d1", b"\x01", f_cnt=0, session="BBBBBBBBBBBBBBBBBBBBBB=="))
    assert a.dedup_key != b.dedup_key


def test_simulated_flag_is_kept() -> None:
    assert parse_envelope(tts_up("d1", b"\x01", simulated=True)).simulated


@pytest.mark.parametrize(
    ("message", "reason", "words"),
    [
        (b"\xff\xfe not even utf-8", "not_json", "not JSON"),
        (b"{truncated", "not_json", "not JSON"),
        (b"[1, 2]", "bad_envelope", "JSON object"),
        (b'{"hello": "world"}', "bad_envelope", "neither a TTS uplink"),
        (b'{"end_device_ids": {}, "uplink_message": {}}', "bad_envelope", "device_id"),
        (
            json.dumps({"end_device_ids": {"device_id": "d"}, "uplink_message": {"f_port": 300}}),
            "bad_envelope",
            "f_port",
        ),
    ],
)
def test_bad_messages_name_their_reason(message: bytes | str, reason: str, words: str) -> None:
    body = message.encode() if isinstance(message, str) else message
    with pytest.raises(EnvelopeError) as caught:
        parse_envelope(body)
    assert caught.value.reason == reason
    assert words in caught.value.detail


def test_bad_base64_payload() -> None:
    document = json.loads(tts_up("d1", b"\x01\x02"))
    document["uplink_message"]["frm_payload"] = "not*base64!"
    with pytest.raises(EnvelopeError) as caught:
        parse_envelope(json.dumps(document).encode())
    assert caught.value.reason == "bad_base64"
    assert "frm_payload" in caught.value.detail


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        # TTS writes nanoseconds: cut to the microsecond, never rounded into the next second
        ("2025-11-20T10:15:42.999999999Z", datetime(2025, 11, 20, 10, 15, 42, 999999, tzinfo=UTC)),
        (
            "2025-11-20T11:15:42.1234567+01:00",
            datetime(2025, 11, 20, 10, 15, 42, 123456, tzinfo=UTC),
        ),
        ("2025-11-20T10:15:42.5Z", datetime(2025, 11, 20, 10, 15, 42, 500000, tzinfo=UTC)),
        ("2025-11-20T10:15:42Z", datetime(2025, 11, 20, 10, 15, 42, tzinfo=UTC)),
    ],
)
def test_receive_time_digits_past_the_microsecond_are_cut(stamp: str, expected: datetime) -> None:
    assert parse_envelope(tts_up("d1", b"\x01", received_at=stamp)).received_at == expected


def test_tts_without_any_receive_time_is_rejected() -> None:
    document = json.loads(tts_up("d1", b"\x01"))
    del document["received_at"], document["uplink_message"]["received_at"]
    with pytest.raises(EnvelopeError, match="received_at"):
        parse_envelope(json.dumps(document).encode())


def test_chirpstack_bad_base64() -> None:
    document = json.loads(chirpstack_up("a84041ffff1c0042", b"\x01"))
    document["data"] = "%%%"
    with pytest.raises(EnvelopeError) as caught:
        parse_envelope(json.dumps(document).encode())
    assert caught.value.reason == "bad_base64"


# -- issue 8: single messages that used to stop ingestion ---------------------------------


@pytest.mark.parametrize(
    "message",
    [b"[" * 100_000, b'{"uplink_message": ' + b"[" * 100_000, b'{"a":' * 100_000],
    ids=["array", "inside-tts", "objects"],
)
def test_deeply_nested_json_is_an_envelope_error(message: bytes) -> None:
    with pytest.raises(EnvelopeError, match="nested too deeply") as caught:
        parse_envelope(message)
    assert caught.value.reason in ("not_json", "bad_envelope")


def _tts(**uplink: object) -> bytes:
    document = json.loads(tts_up("wm-1", b"\x01\x02", f_cnt=7))
    document["uplink_message"].update(uplink)
    return json.dumps(document).encode()


@pytest.mark.parametrize("f_cnt", [2**32, 2**63, 2**64 + 5])
def test_frame_counter_beyond_32_bits_is_refused(f_cnt: int) -> None:
    with pytest.raises(EnvelopeError, match="f_cnt") as caught:
        parse_envelope(_tts(f_cnt=f_cnt))
    assert caught.value.reason == "bad_envelope"
    assert parse_envelope(_tts(f_cnt=2**32 - 1)).f_cnt == 2**32 - 1


def test_chirpstack_frame_counter_beyond_32_bits_is_refused() -> None:
    document = json.loads(chirpstack_up("a84041ffff1c0042", b"\x01"))
    document["fCnt"] = 2**63
    with pytest.raises(EnvelopeError, match="fCnt"):
        parse_envelope(json.dumps(document).encode())


@pytest.mark.parametrize(
    "stamp", ["9999-12-31T23:59:59Z", "1600-01-01T00:00:00Z", "0001-01-01T00:00:00+01:00"]
)
def test_receive_time_outside_the_storable_range_is_refused(stamp: str) -> None:
    document = json.loads(tts_up("wm-1", b"\x01\x02", received_at=stamp))
    with pytest.raises(EnvelopeError) as caught:
        parse_envelope(json.dumps(document).encode())
    assert caught.value.reason == "bad_envelope"
    assert "range" in caught.value.detail


@pytest.mark.parametrize("device_id", ["wm\ud800", "wm\r\n1", "wm\x001", "wm\x7f"])
def test_device_ids_no_store_can_keep_are_refused(device_id: str) -> None:
    message = json.dumps(json.loads(tts_up("x", b"\x01", dev_eui="")) | {
        "end_device_ids": {"device_id": device_id}
    }).encode()  # fmt: skip
    with pytest.raises(EnvelopeError) as caught:
        parse_envelope(message)
    assert caught.value.reason == "bad_envelope"
    caught.value.detail.encode("utf-8")  # the reason itself is storable text
    assert "\r" not in caught.value.detail and "\x00" not in caught.value.detail
