"""reading_points: values cleaned of float noise once for every decoder, live vs history tagged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from decoders.core import Reading
from storage.schema import clean_value, reading_points

ARRIVED = datetime(2025, 11, 20, 10, 15, 42, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "clean"),
    [
        (123.56700000000001, 123.567),
        (0.1 + 0.2, 0.3),
        (123456789.123, 123456789.123),  # a 9-digit register with 3 decimals keeps them all
        (1234.5678 * 1000 / 1000, 1234.5678),
        (1e-7, 1e-7),
        (-300.0, -300.0),
        (7, 7),
        (True, True),
        ("A1B2", "A1B2"),
    ],
)
def test_clean_value(value: float | int | bool | str, clean: float | int | bool | str) -> None:
    assert clean_value(value) == clean
    assert type(clean_value(value)) is type(clean)


def test_points_carry_clean_values() -> None:
    points = reading_points(
        [Reading({"energy_import_kwh": 4_012.0 * 0.1 + 1e-13, "power_w": 501})],
        medium="electricity",
        received_at=ARRIVED,
        tags={"device": "d"},
    )
    assert points[0].fields == {"energy_import_kwh": 401.2, "power_w": 501}
    assert repr(points[0].fields["energy_import_kwh"]) == "401.2"


def test_history_and_live_points_are_told_apart() -> None:
    history = [Reading({"volume_m3": 10.0 + i}, ARRIVED - timedelta(hours=4 - i)) for i in range(4)]
    live = Reading({"volume_m3": 14.5}, ARRIVED - timedelta(minutes=2))
    points = reading_points(
        [*history, live], medium="water", received_at=ARRIVED, tags={"device": "d"}
    )
    assert [p.tags["source"] for p in points] == ["history"] * 4 + ["live"]
    no_time = reading_points(
        [Reading({"volume_m3": 1.0})], medium="water", received_at=ARRIVED, tags={"device": "d"}
    )
    assert no_time[0].tags["source"] == "live" and no_time[0].time == ARRIVED


def test_a_lone_old_value_is_history() -> None:
    # e.g. a month-end value sent on its due date days later: the meter's history, not live
    month_end = Reading({"volume_m3": 99.0}, datetime(2025, 10, 31, 23, 0, tzinfo=UTC))
    points = reading_points([month_end], medium="water", received_at=ARRIVED, tags={})
    assert points[0].tags == {"source": "history"}
