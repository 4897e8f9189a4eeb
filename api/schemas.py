"""Response and request bodies of the HTTP API. Times are RFC 3339 (UTC)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, model_validator

from decoders.core import Value

__all__ = [
    "DecodeRequest",
    "DecodeResponse",
    "DecoderOut",
    "DeviceOut",
    "FieldOut",
    "ReadingOut",
    "ReadingsOut",
    "UnregisteredMeterOut",
]


class ReadingOut(BaseModel):
    time: datetime
    measurement: str = Field(description="the medium: electricity, water, heat or gas")
    values: dict[str, Value] = Field(description="field name (unit in the name) to value")


class DeviceOut(BaseModel):
    device: str
    dev_eui: str
    decoder: str
    medium: str
    meter: str
    first_seen: datetime
    last_seen: datetime
    uplinks: int
    last_f_cnt: int
    last_reading: ReadingOut | None
    battery_pct: float | None
    battery_v: float | None
    rssi_dbm: float | None
    snr_db: float | None
    tags: dict[str, str] = Field(description="the registry's site tags, as on the readings")


class UnregisteredMeterOut(BaseModel):
    meter: str = Field(
        description="the wM-Bus address: manufacturer-identification-version-device type,"
        " as the registry's `wmbus:` takes it (KAM-12345678-1B-16)"
    )
    manufacturer: str = Field(description="three-letter manufacturer code (FLAG), e.g. KAM")
    identification: str = Field(description="the meter's 8-digit identification number")
    version: int
    device_type: int = Field(description="EN 13757-7 device type, e.g. 22 (0x16) cold water")
    device_type_name: str
    medium: str = Field(description="the medium of its readings; empty if none of ours")
    bridge: str = Field(description="the bridge device that heard it")
    first_seen: datetime = Field(description="the network server's time of the first uplink")
    last_seen: datetime
    uplinks: int = Field(description="bridge uplinks that carried it")
    last_error: str = Field(
        description="why its last telegram could not be read (e.g. no AES key); empty if it could"
    )


class FieldOut(BaseModel):
    name: str
    kind: str = Field(description="counter (cumulative register), gauge or state")
    unit: str | None
    description: str


class ReadingsOut(BaseModel):
    device: str = Field(description="the device's id (also when asked by DevEUI or meter)")
    start: datetime = Field(serialization_alias="from", description="the window used, UTC")
    end: datetime = Field(serialization_alias="to", description="end of the window (excluded)")
    timezone: str = Field(description="the zone whose midnight a date alone in from/to means")
    fields: list[FieldOut]
    readings: list[ReadingOut]
    truncated: bool = Field(description="true when more readings follow: see next_cursor")
    next_cursor: str | None = Field(
        description="pass as `cursor` (same other parameters) for the next page; null: last page"
    )


class DecoderOut(BaseModel):
    id: str
    vendor: str
    model: str
    medium: str | None
    lorawan_ids: list[str]
    description: str
    fields: list[FieldOut]
    examples: int


class DecodeRequest(BaseModel):
    decoder: str = Field(description="decoder id, see GET /api/v1/decoders")
    f_port: int = Field(ge=0, le=255)
    payload_hex: str | None = Field(None, description="payload as hex (spaces allowed)")
    payload_base64: str | None = Field(None, description="payload as base64 (as TTS sends it)")
    params: dict[str, Any] = Field(
        default_factory=dict, description="device registry parameters (pulse factor, AES key)"
    )
    received_at: datetime | None = None

    @model_validator(mode="after")
    def _one_payload(self) -> DecodeRequest:
        if (self.payload_hex is None) == (self.payload_base64 is None):
            raise ValueError("give exactly one of payload_hex and payload_base64")
        return self


class DecodeResponse(BaseModel):
    decoder: str
    readings: list[dict[str, Any]] = Field(
        description="each: time (null = the uplink's receive time) and the values"
    )
