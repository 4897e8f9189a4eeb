"""Uplink.meter_time: a meter's own clock reading as UTC (memoized per wall time and zone)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from decoders.core import Uplink

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("zone", "local", "utc"),
    [
        (UTC, datetime(2024, 3, 15, 12, 34), datetime(2024, 3, 15, 12, 34, tzinfo=UTC)),
        (BERLIN, datetime(2024, 1, 15, 12, 0), datetime(2024, 1, 15, 11, 0, tzinfo=UTC)),
        (BERLIN, datetime(2024, 7, 15, 12, 0), datetime(2024, 7, 15, 10, 0, tzinfo=UTC)),
        (timezone(timedelta(hours=-5)), datetime(2024, 1, 1), datetime(2024, 1, 1, 5, tzinfo=UTC)),
    ],
)
def test_a_wall_clock_reading_in_the_meters_zone(
    zone: timezone, local: datetime, utc: datetime
) -> None:
    uplink = Uplink(1, b"", meter_tz=zone)
    for _ in range(2):  # computed, then remembered
        got = uplink.meter_time(local)
        assert got == utc
        assert got.utcoffset() == timedelta(0)


def test_the_repeated_hour_of_autumn_keeps_fold_apart() -> None:
    """02:30 on 2024-10-27 happens twice in Berlin: fold 0 (CEST) and fold 1 (CET). Naive
    datetimes compare equal across fold, so a memo keyed on the datetime alone would mix them."""
    uplink = Uplink(1, b"", meter_tz=BERLIN)
    first, second = datetime(2024, 10, 27, 2, 30), datetime(2024, 10, 27, 2, 30, fold=1)
    for local in (second, first, second, first):
        want = datetime(2024, 10, 27, 1 if local.fold else 0, 30, tzinfo=UTC)
        assert uplink.meter_time(local) == want


def test_an_aware_reading_is_only_converted() -> None:
    uplink = Uplink(1, b"", meter_tz=BERLIN)
    aware = datetime(2024, 1, 1, 12, tzinfo=timezone(timedelta(hours=2)))
    assert uplink.meter_time(aware) == datetime(2024, 1, 1, 10, tzinfo=UTC)
    assert uplink.meter_time(aware).tzinfo is UTC
