"""The device list and readings are serialised without a model per row: their JSON is what the
declared models (``DeviceOut``, ``ReadingsOut``, the OpenAPI schema) give for the same data."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from pydantic import TypeAdapter

from api.routes.devices import device_out, field_out
from api.schemas import DeviceOut, ReadingOut, ReadingsOut
from decoders.core import Reading
from storage.base import Store
from storage.schema import to_ns
from tests.api.conftest import T0
from tests.storage.records import record


def test_device_list_is_the_models_json(client: TestClient) -> None:
    store: Store = client.app.state.store  # type: ignore[attr-defined]
    expected = TypeAdapter(list[DeviceOut]).dump_python(
        [device_out(d) for d in store.devices()], mode="json"
    )
    response = client.get("/api/v1/devices")
    assert response.headers["content-type"] == "application/json"
    assert response.json() == expected
    assert expected[0]["last_reading"]["values"]  # the fixture's device has readings
    assert isinstance(response.json()[0]["rssi_dbm"], float)


def test_readings_are_the_models_json(client: TestClient) -> None:
    store: Store = client.app.state.store  # type: ignore[attr-defined]
    start, end = T0 - timedelta(hours=1), T0 + timedelta(hours=3)
    rows = store.readings("esi-1", start, end, (), 4)
    expected = ReadingsOut(
        device="esi-1",
        start=start,
        end=end,
        timezone="Europe/Berlin",
        fields=[field_out(n) for n in sorted({k for r in rows[:3] for k in r.values})],
        readings=[
            ReadingOut(time=r.time, measurement=r.measurement, values=dict(r.values))
            for r in rows[:3]
        ],
        truncated=True,
        next_cursor=str(int(rows[3].time.timestamp()) * 1_000_000_000),
    ).model_dump(mode="json", by_alias=True)
    response = client.get(
        "/api/v1/devices/esi-1/readings",
        params={"from": start.isoformat(), "to": end.isoformat(), "limit": 3},
    )
    assert response.headers["content-type"] == "application/json"
    assert response.json() == expected
    assert len(expected["readings"]) == 3 and expected["fields"]


def test_device_list_shows_what_was_written_since_it_was_last_asked(client: TestClient) -> None:
    store: Store = client.app.state.store  # type: ignore[attr-defined]
    (before,) = client.get("/api/v1/devices").json()
    store.write_uplinks([record("esi-1", 700 * 1440, {"energy_import_kwh": 2000.5}, key="later")])
    if hasattr(store, "flush"):
        store.flush()
    (after,) = client.get("/api/v1/devices").json()
    assert after["uplinks"] == before["uplinks"] + 1
    assert after["last_reading"]["values"]["energy_import_kwh"] == 2000.5
    assert [after] == TypeAdapter(list[DeviceOut]).dump_python(
        [device_out(d) for d in store.devices()], mode="json"
    )


def test_readings_times_keep_their_microseconds_and_pages_follow_on(client: TestClient) -> None:
    store: Store = client.app.state.store  # type: ignore[attr-defined]
    base = T0 + timedelta(days=3)
    offsets = [timedelta(microseconds=us) for us in (0, 1, 999_999, 500_000)]
    store.write_uplinks(
        [
            record(
                "esi-1",
                i,
                {},
                key=f"us-{i}",
                extra_readings=(Reading({"energy_import_kwh": 5.0 + i}, base + offset),),
            )
            for i, offset in enumerate(offsets)
        ]
    )
    if hasattr(store, "flush"):
        store.flush()
    params = {"from": base.isoformat(), "to": (base + timedelta(seconds=2)).isoformat()}
    first = client.get("/api/v1/devices/esi-1/readings", params={**params, "limit": 3}).json()
    assert [r["time"] for r in first["readings"]] == [
        "2025-11-23T10:00:00Z",
        "2025-11-23T10:00:00.000001Z",
        "2025-11-23T10:00:00.500000Z",
    ]
    assert first["readings"][2]["values"] == {"energy_import_kwh": 8.0}
    assert first["next_cursor"] == str(to_ns(base + offsets[2]))
    rest = client.get(
        "/api/v1/devices/esi-1/readings", params={**params, "cursor": first["next_cursor"]}
    ).json()
    assert [r["time"] for r in rest["readings"]] == ["2025-11-23T10:00:00.999999Z"]
    assert (rest["truncated"], rest["next_cursor"]) == (False, None)
