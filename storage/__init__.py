"""Readings, radio metadata, raw uplinks and dead letters: one interface, SQLite or InfluxDB."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from storage.base import Store, StoreError
from storage.redact import redact_url

__all__ = ["Store", "StoreError", "open_store"]


def open_store(
    url: str,
    *,
    influx_token: str = "",
    spool_path: str | Path = "./lorameter-spool.db",
    spool_max_age_s: float = 3600.0,
    writer: bool = True,
) -> Store:
    """Open the store a ``LORAMETER_STORE_URL`` names (sqlite:///path or influxdb://...).

    ``writer=False`` (``lorameter api``): InfluxDB is only read; the spool file, which one
    writing process holds, is only looked at for /health.
    """
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        from storage.sqlite import SQLiteStore

        # SQLAlchemy's convention: sqlite:///relative.db, sqlite:////absolute/path.db
        path = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else ""
        if not path:
            raise StoreError(f"{redact_url(url)}: no file path (use sqlite:///./lorameter.db)")
        return SQLiteStore(path)
    if scheme in ("influxdb", "influxdb+http", "influxdb+https"):
        from storage.influx import InfluxStore

        return InfluxStore(
            url,
            token=influx_token,
            spool_path=Path(spool_path),
            spool_max_age_s=spool_max_age_s,
            sender=writer,
        )
    raise StoreError(
        f"unknown store URL scheme {scheme!r} in {redact_url(url)} (use sqlite:// or influxdb://)"
    )
