"""Vendor Model: one line saying what the device is and measures (copy me: `make new-decoder`).

fPort 2, 8 bytes, big-endian:  TT EEEEEEEE PPPP BB
- T: frame type, 0x01 = periodic report
- E: cumulative active energy, Wh, uint32
- P: active power, W, uint16
- B: battery, %, uint8

Source: the datasheet you read (name, version, section), so a reviewer can check each byte.
"""

from decoders.core import DecodeError, Decoder, Example, Uplink, Values, unpack


def decode(uplink: Uplink) -> Values:
    if uplink.f_port != 2:
        raise DecodeError(f"unexpected fPort {uplink.f_port}, expected 2")
    frame, energy_wh, power_w, battery = unpack(">BIHB", uplink.payload)
    if frame != 0x01:
        raise DecodeError(f"unknown frame type {frame:#04x}, expected 0x01", offset=0)
    return {"energy_import_kwh": energy_wh / 1000, "power_w": power_w, "battery_pct": battery}


DECODER = Decoder(
    vendor="Vendor",
    model="Model",
    medium="electricity",
    lorawan_ids=("vendor/model",),
    decode=decode,
    fields=("energy_import_kwh", "power_w", "battery_pct"),
    examples=(
        Example(
            "periodic report",
            f_port=2,
            hex="01 0001E240 04D2 5F",
            expect={"energy_import_kwh": 123.456, "power_w": 1234, "battery_pct": 95},
        ),
        Example("wrong port", f_port=9, hex="01", error="unexpected fPort"),
        Example("truncated", f_port=2, hex="01 0001", error="payload length"),
    ),
)
