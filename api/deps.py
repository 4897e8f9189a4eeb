"""Dependencies of the routes: the store, the in-process ingest service (if any), the options."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Protocol
from zoneinfo import ZoneInfo

from fastapi import Depends, HTTPException, Request

from metering.meter import MeterConfig
from storage.alarms import AlarmStore
from storage.base import Store

__all__ = [
    "AlarmsDep",
    "ApiOptions",
    "IngestDep",
    "IngestReceipt",
    "IngestStatus",
    "Ingestor",
    "IngestorDep",
    "OptionsDep",
    "StoreDep",
]


class IngestStatus(Protocol):
    """What the API reads of an ingest service running in the same process."""

    @property
    def fatal(self) -> str | None:
        """Why ingestion cannot go on (e.g. the broker refused the login), else None."""
        ...

    def health(self) -> Mapping[str, object]:
        """Connection state and counters, shown under ``ingest`` in /health."""
        ...


class IngestReceipt(Protocol):
    """What became of one message handed to the ingestor."""

    @property
    def stored(self) -> bool:
        """Durably kept: as readings (or a duplicate of stored ones), or as a dead letter."""
        ...

    @property
    def status(self) -> str:
        """``stored``, ``dead_letter``, or why it is not stored (``busy``, ``timeout``)."""
        ...

    @property
    def reason(self) -> str:
        """The dead-letter reason (``not_json``, ``unknown_device``, ...), else empty."""
        ...

    @property
    def detail(self) -> str: ...


class Ingestor(Protocol):
    """The ingest pipeline and writer of this process, for the webhooks (POST /api/v1/ingest).

    The composition root provides it (``ingest.webhook.WebhookReceiver``); ``api`` never
    imports ``ingest`` (the import-linter contract keeps the two independent).
    """

    def accept(self, topic: str, body: bytes) -> IngestReceipt:
        """Process one message and return once it is durably kept (blocking; bounded)."""
        ...


@dataclass(frozen=True)
class ApiOptions:
    """Settings of the API (the composition root fills them from ``LORAMETER_*``)."""

    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Europe/Berlin"))
    max_body_bytes: int = 256 * 1024
    decode_timeout_s: float = 2.0
    # the registry's metering settings per device id (zone, interval, registers, exchanges)
    meters: Mapping[str, MeterConfig] = field(default_factory=dict)
    # The webhooks' shared secret (X-Lorameter-Webhook-Secret), an alternative to an API key
    # with the ``ingest`` scope for network servers that can send a fixed header only.
    webhook_secret: str = ""
    # answered without a key even when keys exist (LORAMETER_API_OPEN_PATHS)
    open_paths: frozenset[str] = frozenset({"/health", "/metrics"})
    # no keys at all: serve openly (bound to loopback) or refuse every request (any other
    # address, e.g. after the last key was revoked while running)
    open_without_keys: bool = True
    # {folder: (header, secret)}: a request under the folder carrying the secret in the header
    # needs no key (webhooks that cannot send one), e.g. {"/api/v1/ingest/": ("X-..", "...")}
    header_secrets: Mapping[str, tuple[str, str]] = field(default_factory=dict)


def get_store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def get_ingest(request: Request) -> IngestStatus | None:
    """The ingest service running in this process, or None (``lorameter api`` alone)."""
    ingest: IngestStatus | None = request.app.state.ingest
    return ingest


def get_ingestor(request: Request) -> Ingestor | None:
    """The ingest pipeline of this process, or None (``lorameter api`` alone)."""
    ingestor: Ingestor | None = getattr(request.app.state, "ingestor", None)
    return ingestor


def get_options(request: Request) -> ApiOptions:
    options: ApiOptions = request.app.state.options
    return options


def get_alarms(request: Request) -> AlarmStore:
    """The alarm store; 503 when this process has none."""
    alarms: AlarmStore | None = getattr(request.app.state, "alarms", None)
    if alarms is None:
        raise HTTPException(503, "alarms are not set up in this process")
    return alarms


StoreDep = Annotated[Store, Depends(get_store)]
AlarmsDep = Annotated[AlarmStore, Depends(get_alarms)]
IngestDep = Annotated[IngestStatus | None, Depends(get_ingest)]
IngestorDep = Annotated[Ingestor | None, Depends(get_ingestor)]
OptionsDep = Annotated[ApiOptions, Depends(get_options)]
