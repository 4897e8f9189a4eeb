"""The demo fleet: heat, water, electricity meters and pulse counters sending TTS v3 uplinks.

Each meter's registers are a closed-form function of time (a daily consumption wave integrated
exactly), so history and live uplinks agree, registers never run backwards, and running the demo
twice produces the very same points. Payloads are real binary frames in each device's own
format, encoded here and decoded by our decoders like any real uplink.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import math
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = [
    "APPLICATION",
    "SimMeter",
    "bad_messages",
    "fleet",
    "history",
    "live",
    "registry_document",
]

APPLICATION = "lorameter-demo"
SLOT = timedelta(minutes=15)
_DAY_S = 86_400.0
_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Profile:
    """A daily wave: rate(t) = mean * (1 + swing * sin(2π t/day + phase)), in units per hour."""

    mean: float
    swing: float
    phase: float

    def rate(self, t: float) -> float:
        # A swing above 1 is cut at zero: hours without any consumption (water at night).
        wave = 1 + self.swing * math.sin(2 * math.pi * t / _DAY_S + self.phase)
        return self.mean * max(0.0, wave)

    def total(self, t: float) -> float:
        """The exact integral of rate from the epoch to t (seconds), in units."""
        w = 2 * math.pi / _DAY_S
        return self.mean * (self._angle(w * t + self.phase) - self._angle(self.phase)) / w / 3600

    def _angle(self, x: float) -> float:
        """The integral of max(0, 1 + swing sin u) du from 0 to x."""
        s = self.swing

        def g(u: float) -> float:
            return u - s * math.cos(u)

        if s <= 1:
            return g(x) - g(0)
        low, high = math.pi + math.asin(1 / s), 2 * math.pi - math.asin(1 / s)  # zero between
        turns, rest = divmod(x, 2 * math.pi)
        period = g(low) - g(0) + g(2 * math.pi) - g(high)
        part = g(min(rest, low)) - g(0) + (g(rest) - g(high) if rest > high else 0.0)
        return turns * period + part


@dataclass(frozen=True)
class Exchange:
    """The demo's meter exchange: the old meter ends, a new one starts from its factory reading."""

    at: datetime
    new_start: float
    new_meter: str


@dataclass(frozen=True)
class SimMeter:
    """One simulated device."""

    index: int
    kind: str  # heat | water | electricity | pulse | pulse16
    device_id: str
    dev_eui: str
    decoder: str
    brand_id: str
    model_id: str
    meter: str
    site: str
    base: float  # register at the epoch
    profile: Profile
    fault: str = ""  # what the alarm demo shows: leak | backflow | silent | low_battery
    exchange: Exchange | None = None  # the meter was exchanged (water-001)
    gap: tuple[datetime, datetime] | None = None  # the device was silent (heat-000)

    def seconds(self, when: datetime) -> float:
        return (when - _EPOCH).total_seconds()

    def register(self, when: datetime) -> float:
        """The register the device reads at ``when`` (the new meter's after an exchange)."""
        total = self._total(when)
        if self.exchange is not None and when >= self.exchange.at:
            return self.exchange.new_start + total - self._total(self.exchange.at)
        return self.base + total

    def _total(self, when: datetime) -> float:
        """What flowed since the epoch: the daily wave, plus the leak of a leaking meter."""
        leak = LEAK_M3H * self.seconds(when) / 3600 if self.fault == "leak" else 0.0
        return self.profile.total(self.seconds(when)) + leak

    def logged(self, when: datetime, sent: datetime) -> float:
        """The register a frame sent at ``sent`` logs for ``when``: a new meter logged nothing
        before it was installed, so its log holds its factory reading there."""
        if self.exchange is not None and when < self.exchange.at <= sent:
            return self.exchange.new_start
        return self.register(when)

    def consumed(self, start: datetime, end: datetime) -> float:
        """What really flowed between two instants (exchange or not)."""
        return self._total(end) - self._total(start)

    def silent(self, when: datetime) -> bool:
        return self.gap is not None and self.gap[0] <= when < self.gap[1]

    def rate(self, when: datetime) -> float:
        return self.profile.rate(self.seconds(when)) + (LEAK_M3H if self.fault == "leak" else 0)

    # -- payloads in each device's own format ----------------------------------------------

    def payload(self, when: datetime) -> tuple[int, bytes]:
        """(fPort, frame) this meter sends at ``when``."""
        return getattr(self, f"_{self.kind}")(when)  # type: ignore[no-any-return]

    def _heat(self, when: datetime) -> tuple[int, bytes]:
        # Elvaco CMi4110 standard message (fPort 2): header 0x00, then M-Bus data records.
        energy_kwh = self.register(when)
        power_kw = self.rate(when)
        flow_temp = 70 + 5 * math.sin(self.seconds(when) / 7200)
        return_temp = flow_temp - max(power_kw * 2.5, 3)
        flow_m3h = power_kw / (1.16 * (flow_temp - return_temp))
        volume_m3 = energy_kwh / 25
        records = (
            b"\x0c\x06" + _bcd(round(energy_kwh), 4)  # energy, kWh
            + b"\x0c\x14" + _bcd(round(volume_m3 * 100), 4)  # volume, 0.01 m³
            + b"\x0b\x2d" + _bcd(round(power_kw * 10), 3)  # power, 0.1 kW
            + b"\x0b\x3b" + _bcd(round(flow_m3h * 1000), 3)  # flow, 0.001 m³/h
            + b"\x0a\x5a" + _bcd(round(flow_temp * 10), 2)  # flow temperature, 0.1 °C
            + b"\x0a\x5e" + _bcd(round(return_temp * 10), 2)  # return temperature, 0.1 °C
            + b"\x0c\x78" + _bcd(int(self.meter[-8:]), 4)  # meter id
            + b"\x02\xfd\x17" + struct.pack("<H", 0)  # error flags
        )  # fmt: skip
        return 2, b"\x00" + records

    def _water(self, when: datetime) -> tuple[int, bytes]:
        # Axioma Qalcosonic W1 extended frame (fPort 100): now + 15 hourly history values.
        now = int(when.timestamp())
        log_start = when.replace(minute=0, second=0, microsecond=0) - timedelta(hours=15)
        litres = [
            round(self.logged(log_start + timedelta(hours=h), when) * 1000) for h in range(16)
        ]
        deltas = [b - a for a, b in itertools.pairwise(litres)]
        current = round(self.register(when) * 1000)
        status = 0x70 if self.fault == "backflow" else 0  # temporary error 011: backflow
        return 100, struct.pack(
            "<IBIII15H", now, status, current, int(log_start.timestamp()), litres[0], *deltas
        )

    def _electricity(self, when: datetime) -> tuple[int, bytes]:
        # ELV-LW-ESI (fPort 10): header, energy record A+ in 1/10000 kWh, power in 1/100 W.
        energy = round(self.register(when) * 10_000)
        power = round(self.rate(when) * 1000 * 100)
        record = b"\x01\x01\x01" + energy.to_bytes(5, "little") + b"\x00" + struct.pack("<I", power)
        return 10, b"\x03\x01\x0b\xb8" + record

    def _pulse(self, when: datetime) -> tuple[int, bytes]:
        # Milesight EM300-DI (fPort 85): battery, temperature, pulse count (10 L per pulse).
        pulses = int((self.register(when) - self.base) * 1000 / 10)
        temperature = round((12 + 3 * math.sin(self.seconds(when) / 20000)) * 10)
        battery = 8 if self.fault == "low_battery" else 92
        return 85, bytes([0x01, 0x75, battery, 0x03, 0x67]) + struct.pack("<h", temperature) + (
            bytes([0x05, 0xC8]) + struct.pack("<I", pulses)
        )

    def _pulse16(self, when: datetime) -> tuple[int, bytes]:
        # Netvox R718H (fPort 6) in cumulative mode: a uint16 count of 1 L pulses that wraps
        # at 65,536 (every 65.536 m³), big-endian; battery 3.6 V.
        pulses = int((self.register(when) - self.base) * 1000) % 65_536
        return 6, bytes([0x01, 0x1F, 0x01, 36]) + struct.pack(">HH", pulses, 0) + bytes(3)

    # -- the TTS v3 envelope ---------------------------------------------------------------

    def uplink(self, when: datetime) -> tuple[str, bytes]:
        """(topic, TTS v3 ``up`` JSON) of this meter's uplink received at ``when``."""
        port, frame = self.payload(when)
        f_cnt = int(self.seconds(when) // 5) % 2**32  # one frame per 5 s at most
        h = _hash(self.device_id, when.isoformat())
        rssi = -75 - self.index % 40 - h % 7
        snr = round(9.5 - (self.index % 40) / 4 - (h % 5) / 2, 1)
        stamp = when.isoformat().replace("+00:00", "Z")
        message: dict[str, Any] = {
            "end_device_ids": {
                "device_id": self.device_id,
                "application_ids": {"application_id": APPLICATION},
                "dev_eui": self.dev_eui.upper(),
            },
            "received_at": stamp,
            "uplink_message": {
                "session_key_id": base64.b64encode(self.dev_eui.encode()[:16]).decode(),
                "f_port": port,
                "frm_payload": base64.b64encode(frame).decode(),
                "rx_metadata": [
                    {
                        "gateway_ids": {"gateway_id": f"bernau-gw-{self.index % 3 + 1:02d}"},
                        "rssi": rssi,
                        "channel_rssi": rssi,
                        "snr": snr,
                    }
                ],
                "settings": {
                    "data_rate": {"lora": {"bandwidth": 125000, "spreading_factor": 7 + h % 4}},
                    "frequency": str(868_100_000 + 200_000 * (h % 3)),
                },
                "received_at": stamp,
                "consumed_airtime": "0.061696s",
                "version_ids": {"brand_id": self.brand_id, "model_id": self.model_id},
            },
        }
        if f_cnt:
            message["uplink_message"]["f_cnt"] = f_cnt  # TTS omits zero values
        topic = f"v3/{APPLICATION}@ttn/devices/{self.device_id}/up"
        return topic, json.dumps(message).encode()


def _bcd(value: int, size: int) -> bytes:
    digits = f"{value:0{size * 2}d}"[-size * 2 :]
    return bytes(int(digits[i : i + 2], 16) for i in range(len(digits) - 2, -2, -2))


def _hash(*parts: str) -> int:
    return int.from_bytes(hashlib.blake2b("|".join(parts).encode(), digest_size=4).digest())


_KINDS = {
    # kind: (decoder, TTS brand, model, mean per hour, swing, base range)
    "heat": ("elvaco_cmi4110", "elvaco", "cmi4110", 4.0, 0.5, 20_000.0),
    "water": ("axioma_qalcosonic_w1", "axioma", "qalcosonic-w1", 0.025, 1.6, 300.0),
    "electricity": ("elv_lw_esi", "elv", "elv-lw-esi", 0.45, 0.6, 8_000.0),
    "pulse": ("milesight_em300_di", "milesight-iot", "em300-di", 0.04, 1.6, 150.0),
    # a school's main water meter read by a 16-bit pulse counter: rolls over every ~5 days
    "pulse16": ("netvox_r718h", "netvox", "r718h", 0.55, 1.6, 2_000.0),
}
# Water rests at night: the wave's low (sin = -1) near 02:00 UTC, the quiet hours around it.
_NIGHT_PHASE = 1.5 * math.pi - 2 * math.pi * 7200 / _DAY_S
# The alarm demo (issue 9): fleet index -> fault; a leak of 6 L/h runs day and night. The
# backflow meter is the 20th, so fleets of up to 16 (the dashboard tests') show no flag but theirs.
FAULTS = {7: "leak", 19: "backflow", 4: "silent", 6: "low_battery"}
LEAK_M3H = 0.006
SILENT_FOR = timedelta(hours=3)  # the silent heat meter's last uplink is this long ago
_MIX = ("heat", "water", "electricity", "water", "heat", "electricity", "pulse", "water")
_SITES = ("rathaus", "stadtwerke", "schule-nord", "hallenbad", "wohnpark-sued")


# Meters that show what metering gets right (with the default fleet of 32): heat-000 falls
# silent for 6 hours, water-001 is exchanged, pulse16-014 rolls over.
_GAP, _EXCHANGED, _ROLLS_OVER = 0, 1, 14


def fleet(size: int = 32, now: datetime | None = None) -> list[SimMeter]:
    """A deterministic fleet of ``size`` meters, mixing all kinds.

    The exchange and the gap lie in the days before ``now`` (default: today), at fixed times of
    day, so the history shows them and every run on the same day sends the same uplinks.
    """
    day = _floor(now or datetime.now(UTC)).replace(hour=0, minute=0)
    meters = []
    for i in range(size):
        kind = "pulse16" if i == _ROLLS_OVER else _MIX[i % len(_MIX)]
        decoder, brand, model, mean, swing, base = _KINDS[kind]
        h = _hash("meter", str(i))
        meters.append(
            SimMeter(
                index=i,
                kind=kind,
                device_id=f"{kind}-{i:03d}",
                dev_eui=f"70b3d5{0xE50000 + i:06x}{h & 0xFFFF:04x}",
                decoder=decoder,
                brand_id=brand,
                model_id=model,
                meter=f"{1_000_000 * (1 + list(_KINDS).index(kind)) + 4711 + i:08d}",
                site=_SITES[i % len(_SITES)],
                base=base * (1 + (h % 1000) / 1000),
                profile=Profile(
                    mean * (0.6 + (h % 800) / 1000),
                    swing,
                    _NIGHT_PHASE + (h % 60 - 30) / 100 if swing > 1 else (h % 628) / 100,
                ),
                fault=FAULTS.get(i, ""),
                exchange=Exchange(
                    day - timedelta(days=3) + timedelta(hours=9, minutes=30),
                    new_start=0.012,
                    new_meter=f"{2_000_000 + 9000 + i:08d}",
                )
                if i == _EXCHANGED
                else None,
                # six silent hours across local midnight: the day bound is estimated
                gap=(day - timedelta(hours=28), day - timedelta(hours=22)) if i == _GAP else None,
            )
        )
    return meters


def history(meters: list[SimMeter], end: datetime, days: float) -> Iterator[tuple[str, bytes]]:
    """Every meter's uplinks on the 15-minute grid from ``end - days`` to ``end``, in time order.

    Each uplink arrives a few (fixed) seconds after its slot, like a real meter's schedule.
    """
    first = _floor(end - timedelta(days=days))
    slot = first
    while slot <= end:
        for meter in meters:
            when = slot + timedelta(seconds=5 + meter.index * 7 % 600)
            if (
                when <= end
                and not meter.silent(when)
                and (meter.fault != "silent" or when <= end - SILENT_FOR)
            ):
                yield meter.uplink(when)
        slot += SLOT


def live(meters: list[SimMeter]) -> list[SimMeter]:
    """The meters that send live uplinks (the silent one does not)."""
    return [m for m in meters if m.fault != "silent"]


def _floor(when: datetime) -> datetime:
    seconds = int((when - _EPOCH).total_seconds())
    return _EPOCH + timedelta(seconds=seconds - seconds % int(SLOT.total_seconds()))


def registry_document(meters: list[SimMeter]) -> dict[str, Any]:
    """The demo's device registry: meter numbers and sites for all, pulse setup for counters."""
    devices = []
    for meter in meters:
        entry: dict[str, Any] = {
            "device": meter.device_id,
            "dev_eui": meter.dev_eui,
            "meter": meter.meter,
            "tags": {"site": meter.site},
        }
        if meter.kind == "pulse":
            entry.update(
                decoder=meter.decoder,
                medium="water",
                params={"pulse_factor": 10, "pulse_unit": "l", "pulse_offset": meter.base},
            )
        if meter.kind == "pulse16":
            entry.update(
                decoder=meter.decoder,
                medium="water",
                params={
                    "pulse_factor": 1,
                    "pulse_unit": "l",
                    "pulse_offset": meter.base,
                    "counter_mode": "cumulative",
                },
                registers={"volume_m3": {"rollover": 65.536}},  # 65,536 pulses of 1 L
            )
        if meter.exchange is not None:
            at = meter.exchange.at
            entry["exchanges"] = [
                {
                    "at": at.isoformat(),
                    "old_end": {"volume_m3": round(meter.base + meter.profile.total(
                        meter.seconds(at)), 3)},
                    "new_start": {"volume_m3": meter.exchange.new_start},
                    "new_meter": meter.exchange.new_meter,
                }
            ]  # fmt: skip
        if meter.kind in ("heat", "water", "electricity", "pulse", "pulse16"):
            entry["expected_interval_s"] = 900
        devices.append(entry)
    return {"devices": devices}


def bad_messages() -> list[tuple[str, bytes]]:
    """Three broken messages the demo sends once, so dead letters show up in /health."""
    good_topic = f"v3/{APPLICATION}@ttn/devices/stranger-001/up"
    stranger = {
        "end_device_ids": {"device_id": "stranger-001", "dev_eui": "0011223344556677"},
        "received_at": "2025-11-20T10:00:00Z",
        "uplink_message": {
            "f_port": 1,
            "frm_payload": "AQID",
            "received_at": "2025-11-20T10:00:00Z",
        },
    }
    return [
        (good_topic, b"this is not JSON"),
        (good_topic, json.dumps(stranger).encode()),
        (good_topic, json.dumps({"uplink_message": "wrong shape"}).encode()),
    ]
