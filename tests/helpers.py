"""Builders of real-shaped network-server messages for tests."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any


def tts_up(
    device_id: str,
    payload: bytes | None,
    *,
    f_port: int | None = 2,
    f_cnt: int = 1,
    received_at: str = "2025-11-20T10:15:42.866470312Z",
    dev_eui: str = "0004A30B00F1C0DE",
    brand: str | None = None,
    model: str | None = None,
    session: str = "AZNx3fK2RWqB0c8ePj1tYg==",
    simulated: bool = False,
    rssi: float = -97,
    snr: float = 7.25,
) -> bytes:
    """A TTS v3 ``up`` message as The Things Stack writes it (zero values omitted)."""
    up: dict[str, Any] = {
        "session_key_id": session,
        "rx_metadata": [{"gateway_ids": {"gateway_id": "gw1"}, "rssi": rssi, "snr": snr}],
        "settings": {"data_rate": {"lora": {"spreading_factor": 9}}, "frequency": "868300000"},
        "received_at": received_at,
        "consumed_airtime": "0.205824s",
    }
    if f_port:
        up["f_port"] = f_port
    if f_cnt:
        up["f_cnt"] = f_cnt
    if payload:
        up["frm_payload"] = base64.b64encode(payload).decode()
    if brand and model:
        up["version_ids"] = {"brand_id": brand, "model_id": model}
    message: dict[str, Any] = {
        "end_device_ids": {
            "device_id": device_id,
            "application_ids": {"application_id": "water-meters"},
            "dev_eui": dev_eui,
        },
        "received_at": received_at,
        "uplink_message": up,
    }
    if simulated:
        message["simulated"] = True
    return json.dumps(message).encode()


def chirpstack_up(
    dev_eui: str,
    payload: bytes,
    *,
    f_port: int = 10,
    f_cnt: int = 5127,
    time: datetime | str = "2025-11-20T10:15:42.812+00:00",
    dedup_id: str = "5f0c7e2a-9b41-4c8d-a6e3-1d2f3b4c5a69",
) -> bytes:
    """A ChirpStack v4 ``event/up`` message (JSON integration, emit_fields)."""
    stamp = time if isinstance(time, str) else time.isoformat()
    return json.dumps(
        {
            "deduplicationId": dedup_id,
            "time": stamp,
            "deviceInfo": {"devEui": dev_eui.lower(), "deviceName": "em", "tags": {}},
            "devAddr": "01a2b3c4",
            "adr": True,
            "fCnt": f_cnt,
            "fPort": f_port,
            "confirmed": False,
            "data": base64.b64encode(payload).decode(),
            "rxInfo": [{"gatewayId": "7076ff0056070ad9", "rssi": -97, "snr": 7.2}],
            "txInfo": {"frequency": 868100000, "modulation": {"lora": {"spreadingFactor": 9}}},
        }
    ).encode()
