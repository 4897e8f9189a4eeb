"""The site the web tests browse: ``lorameter demo``-like data through the real pipeline and the
real alarm engine into one real SQLite file (readings and alarm tables), served on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from api.deps import ApiOptions
from api.main import create_app
from ingest.alarms import AlarmEngine
from storage import open_store
from storage.alarms import SQLiteAlarms
from tests.demo_data import Fleet, demo_fleet, load
from tests.services import serve

__all__ = ["DAYS", "END", "Site", "demo_site", "last_uplink"]

# The history ends on the 15-minute grid just before now, as in `lorameter demo`.
NOW = datetime.now(UTC)
END = NOW.replace(minute=NOW.minute // 15 * 15, second=0, microsecond=0)
DAYS = 3.0


@dataclass(frozen=True)
class Site:
    url: str
    fleet: Fleet
    db: Path  # the SQLite file of the store and the alarm tables
    alarms: SQLiteAlarms  # the tables the app serves (the engine raised into them)


def last_uplink(meter) -> datetime:
    """When the simulator's history last heard ``meter`` (slot + its fixed offset, up to END)."""
    offset = timedelta(seconds=5 + meter.index * 7 % 600)
    return END - offset if offset <= timedelta(0) else END - timedelta(minutes=15) + offset


@contextmanager
def demo_site(directory: Path) -> Iterator[Site]:
    """The 16-meter demo fleet's last days, its alarms raised by the engine at ingest and by a
    sweep at the end of the history, as `lorameter demo` does."""
    fleet = demo_fleet(16)
    db = directory / "lorameter.db"
    store = open_store(f"sqlite:///{db}")
    alarms = SQLiteAlarms(db)
    engine = AlarmEngine(alarms, fleet.registry, store)
    load(store, fleet, END, DAYS, engine.on_stored)
    engine.sweep(END)
    app = create_app(
        store, options=ApiOptions(meters=fleet.registry.meter_configs()), alarms=alarms
    )
    try:
        with serve(app) as url:
            yield Site(url, fleet, db, alarms)
    finally:
        alarms.close()
        store.close()
