"""Gap backfill: uplinks TTS sent while we were disconnected, from its Storage Integration.

The Things Stack delivers MQTT at QoS 0 and keeps no session, so whatever it publishes while
lorameter is away is gone from MQTT (shared/reference/network-servers.md §1.3). If the
application has the Storage Integration enabled, the same messages can be read back:

    GET /api/v3/as/applications/{app}/packages/storage/uplink_message
        ?after=<RFC 3339>&before=<RFC 3339>&limit=<n>&order=received_at
    Authorization: Bearer <API key with RIGHT_APPLICATION_TRAFFIC_READ>
    Accept: text/event-stream

The body is newline-delimited ``{"result": <ApplicationUp>}`` objects, each ``result`` the same
JSON as an MQTT ``up`` message (TTS docs, integrations/storage/retrieve; proto
``GetStoredApplicationUpRequest`` in lorawan-stack ``applicationserver_integrations_storage.proto``:
``after``/``before`` bound ``received_at``, ``order`` is ``received_at`` or ``-received_at``, and a
``continuation_token``, when given, replaces every other field). Paging as implemented here: a page
that comes with a continuation token in a response header (``X-Continuation-Token``, or as
grpc-gateway forwards gRPC header metadata, ``Grpc-Metadata-X-Continuation-Token``) is followed
by a request carrying only ``continuation_token``; without a token, a full page (``limit``
results) is followed by one starting ``after`` the newest ``received_at`` seen, until a short page.
Either way the overlap is harmless: every result goes through the same pipeline and writer as a
live message, and the store's dedup key makes an uplink already stored a duplicate.

The window starts at the newest TTS uplink received before the (re)connection, less a margin:
in memory while running, and from the store (``Store.last_uplink_at``) after a restart.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx

from ingest.mqtt import parse_mqtt_url
from ingest.pipeline import Accepted, Pipeline, Rejected
from ingest.supervise import Worker

__all__ = [
    "BackfillError",
    "BackfillReport",
    "BackfillWorker",
    "GapTracker",
    "StorageApi",
    "backfill",
    "fetch_uplinks",
    "storage_api",
]

log = logging.getLogger("lorameter.backfill")

TOKEN_HEADERS = ("x-continuation-token", "grpc-metadata-x-continuation-token")

# Hands an outcome to the writer; the callback runs once it is durably stored.
Submit = Callable[[Accepted | Rejected, Callable[[], None]], object]


class BackfillError(RuntimeError):
    """The Storage Integration could not be read; ``permanent`` when retrying cannot help."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class StorageApi:
    """Where TTS's Storage Integration of one application is, and the key to read it."""

    base_url: str  # e.g. https://eu1.cloud.thethings.network
    application: str  # the application id, without @tenant
    api_key: str
    page_limit: int = 1000
    timeout_s: float = 30.0

    @property
    def url(self) -> str:
        app = quote(self.application, safe="")
        return (
            f"{self.base_url.rstrip('/')}/api/v3/as/applications/{app}"
            "/packages/storage/uplink_message"
        )

    def __str__(self) -> str:  # never the key
        return f"{self.url}"


@dataclass
class BackfillReport:
    """What one backfill did: shown in /health and logged."""

    after: datetime
    before: datetime | None
    reason: str  # "connect 3", "restart", "command line"
    fetched: int = 0
    accepted: int = 0
    rejected: int = 0
    stored: int = 0  # durably written (new, or already there: a duplicate)
    pages: int = 0
    error: str = ""
    finished: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "reason": self.reason,
            "after": _rfc3339(self.after),
            "before": _rfc3339(self.before) if self.before else None,
            "fetched": self.fetched,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "stored": self.stored,
            "pages": self.pages,
            "finished": self.finished,
            "error": self.error,
        }

    def summary(self) -> str:
        window = f"after {_rfc3339(self.after)}" + (
            f" before {_rfc3339(self.before)}" if self.before else ""
        )
        return (
            f"backfill ({self.reason}) {window}: {self.fetched} uplinks fetched from the TTS"
            f" Storage Integration in {self.pages} pages, {self.accepted} accepted (new or"
            f" already stored), {self.rejected} dead letters"
        )


def _rfc3339(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def storage_api(
    mqtt_url: str, api_url: str = "", application: str = "", api_key: str = ""
) -> StorageApi | None:
    """The Storage Integration of the MQTT settings' TTS application, or None (no backfill).

    From ``mqtt[s]://app@tenant:KEY@host``: ``https://host``, application ``app``, the same
    API key; each can be overridden. None when ``api_url`` is ``off``, or when it is empty and
    the MQTT user is not a TTS ``app@tenant`` (a ChirpStack or own broker). ValueError when an
    explicit ``api_url`` lacks the application or the key.
    """
    if api_url == "off":
        return None
    address = parse_mqtt_url(mqtt_url)
    user = address.username or ""
    if not api_url and "@" not in user:
        return None
    app = application or user.partition("@")[0]
    key = api_key or address.password or ""
    if not app:
        raise ValueError(
            "LORAMETER_TTS_APPLICATION: the MQTT user names no TTS application; set it (or"
            " LORAMETER_TTS_API_URL=off for no backfill)"
        )
    if not key:
        raise ValueError(
            "LORAMETER_TTS_API_KEY: no API key for the Storage Integration (the MQTT URL has no"
            " password); set it, or LORAMETER_TTS_API_URL=off for no backfill"
        )
    return StorageApi(base_url=api_url or f"https://{address.host}", application=app, api_key=key)


def fetch_uplinks(
    client: httpx.Client, api: StorageApi, after: datetime, before: datetime | None = None
) -> Iterator[tuple[int, bytes]]:
    """(page number, ``result`` as JSON bytes) of every stored uplink in the window.

    A line that is not ``{"result": {...}}`` is yielded as it is (the pipeline dead-letters
    it); an ``{"error": ...}`` line or an HTTP error raises ``BackfillError``.
    """
    params: dict[str, str] = {
        "after": _rfc3339(after),
        "limit": str(api.page_limit),
        "order": "received_at",
    }
    if before is not None:
        params["before"] = _rfc3339(before)
    headers = {"Authorization": f"Bearer {api.api_key}", "Accept": "text/event-stream"}
    page = 0
    while True:
        page += 1
        count, newest, token = 0, None, None
        try:
            with client.stream(
                "GET", api.url, params=params, headers=headers, timeout=api.timeout_s
            ) as response:
                _check(response, api)
                token = next((response.headers[h] for h in TOKEN_HEADERS if h in response.headers),
                             None)  # fmt: skip
                for line in response.iter_lines():
                    text = line.strip()
                    if not text:
                        continue
                    count += 1
                    body, received = _result(text, api)
                    if received is not None and (newest is None or received > newest):
                        newest = received
                    yield page, body
        except httpx.HTTPError as exc:
            raise BackfillError(f"reading {api}: {type(exc).__name__}: {exc}") from exc
        if token:
            params = {"continuation_token": token}
        elif count >= api.page_limit and newest is not None and newest > after:
            after = newest  # the newest may repeat on the next page: a duplicate, harmless
            params = {**params, "after": _rfc3339(newest)}
        else:
            return


def _check(response: httpx.Response, api: StorageApi) -> None:
    if response.status_code == 200:
        return
    response.read()
    detail = response.text[:300].strip()
    status = response.status_code
    if status in (401, 403):
        raise BackfillError(
            f"{api} refused the API key ({status}): it needs the right to read application"
            f" traffic (RIGHT_APPLICATION_TRAFFIC_READ). {detail}",
            permanent=True,
        )
    if status == 404:
        raise BackfillError(
            f"{api}: not found (404): is the Storage Integration enabled for application"
            f" {api.application!r}, and is LORAMETER_TTS_API_URL right? {detail}",
            permanent=True,
        )
    raise BackfillError(f"{api} answered {status}: {detail}")


def _result(text: str, api: StorageApi) -> tuple[bytes, datetime | None]:
    """The ``result`` of one line as JSON bytes and its ``received_at``; the line itself when it
    is no result (the pipeline then keeps it as a dead letter)."""
    try:
        item = json.loads(text)
    except (ValueError, RecursionError):
        return text.encode(), None
    if isinstance(item, dict) and "error" in item and "result" not in item:
        raise BackfillError(f"{api} reported an error mid-stream: {json.dumps(item)[:300]}")
    if not isinstance(item, dict) or not isinstance(item.get("result"), dict):
        return text.encode(), None
    result: dict[str, Any] = item["result"]
    received: datetime | None = None
    stamp = result.get("received_at")
    if isinstance(stamp, str):
        try:
            received = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        except ValueError:
            received = None
    return json.dumps(result, separators=(",", ":")).encode(), received


def backfill(
    client: httpx.Client,
    api: StorageApi,
    pipeline: Pipeline,
    submit: Submit,
    report: BackfillReport,
    *,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> BackfillReport:
    """Fetch the window's uplinks and hand each to ``submit``; counts go into ``report``.

    Raises ``BackfillError`` (with what was done so far in ``report``) when reading fails.
    """
    topic = f"tts-storage/{api.application}"
    lock = threading.Lock()

    def stored() -> None:
        with lock:
            report.stored += 1

    try:
        for page, body in fetch_uplinks(client, api, report.after, report.before):
            report.pages = page
            report.fetched += 1
            outcome = pipeline.process(topic, body, now())
            if isinstance(outcome, Accepted):
                report.accepted += 1
            else:
                report.rejected += 1
            submit(outcome, stored)
    except BackfillError as exc:
        report.error = str(exc)
        raise
    report.finished = True
    return report


class GapTracker:
    """The newest TTS receive time seen before each MQTT connection: where its gap begins.

    Every handled message is observed with the number of the connection it came in on (paho
    counts the connection before it delivers any of its messages), so the start of a gap is
    fixed the moment the first message, or the backfill worker, sees a new connection.
    """

    def __init__(self, newest: datetime | None) -> None:
        self._lock = threading.Lock()
        self._newest = newest
        self._connection = 0
        self._gap_starts: dict[int, datetime | None] = {}

    def observe(self, connection: int, received_at: datetime | None) -> None:
        with self._lock:
            self._open(connection)
            if received_at is not None and (self._newest is None or received_at > self._newest):
                self._newest = received_at

    def gap_start(self, first: int, last: int) -> datetime | None:
        """Where the gaps before connections ``first``..``last`` begin (the earliest)."""
        with self._lock:
            self._open(last)
            starts = [self._gap_starts[c] for c in range(first, last + 1) if c in self._gap_starts]
            for c in range(first, last + 1):
                self._gap_starts.pop(c, None)
        known = [s for s in starts if s is not None]
        return min(known) if known else None

    def _open(self, connection: int) -> None:
        if connection > self._connection:
            self._gap_starts[connection] = self._newest
            self._connection = connection


@dataclass
class _State:
    runs: int = 0
    last: BackfillReport | None = None
    running: bool = False


class BackfillWorker:
    """After every MQTT (re)connection, backfills the gap before it; retries a failed one."""

    def __init__(
        self,
        api: StorageApi,
        pipeline: Pipeline,
        submit: Submit,
        tracker: GapTracker,
        connections: Callable[[], int],
        *,
        delay_s: float = 5.0,
        margin_s: float = 60.0,
        retry_s: float = 30.0,
        on_crash: Callable[[str, BaseException], None] | None = None,
    ) -> None:
        self.api = api
        self.pipeline = pipeline
        self.submit = submit
        self.tracker = tracker
        self.connections = connections
        # The Storage Integration writes in batches: wait a little after connecting so the
        # last messages before the reconnection are there to be read.
        self.delay_s = delay_s
        self.margin = timedelta(seconds=margin_s)
        self.retry_s = retry_s
        self.state = _State()
        self.worker = Worker("backfill", self._run, on_crash=on_crash)
        self._handled = 0
        self._pending: datetime | None = None  # a gap whose backfill failed, to retry
        self._client: httpx.Client | None = None
        self._next_retry = 0.0

    def start(self) -> None:
        self.worker.start()

    def stop(self, timeout: float = 2.0) -> None:
        self.worker.stop()
        self.worker.join(timeout)
        if self._client is not None:
            self._client.close()

    def _run(self) -> None:
        stopping = self.worker.stopping
        while not stopping.wait(0.2):
            current = self.connections()
            if current > self._handled:
                start = self.tracker.gap_start(self._handled + 1, current)
                reason = "restart" if self._handled == 0 else f"reconnection {current}"
                self._handled = current
                if start is not None and (self._pending is None or start < self._pending):
                    self._pending = start
                if self._pending is None:
                    log.info(
                        "no earlier TTS uplink in the store: nothing to backfill (use"
                        " `lorameter backfill --since` for older data)"
                    )
                    continue
                if stopping.wait(self.delay_s):
                    return
                self._attempt(self._pending, reason)
            elif self._pending is not None and self._next_retry <= time.monotonic():
                self._attempt(self._pending, "retry")

    def _attempt(self, start: datetime, reason: str) -> None:
        if self._client is None:
            self._client = httpx.Client()
        report = BackfillReport(after=start - self.margin, before=None, reason=reason)
        self.state.last = report
        self.state.running = True
        self.state.runs += 1
        try:
            backfill(self._client, self.api, self.pipeline, self.submit, report)
        except BackfillError as exc:
            if exc.permanent:
                self._pending = None
                log.error("%s; not retrying: %s", report.summary(), exc)
            else:
                self._next_retry = time.monotonic() + self.retry_s
                log.error("%s; retrying in %.0f s: %s", report.summary(), self.retry_s, exc)
            return
        finally:
            self.state.running = False
        self._pending = None
        log.info("%s", report.summary())

    def health(self) -> dict[str, Any]:
        last = self.state.last
        return {
            "storage_api": str(self.api),
            "runs": self.state.runs,
            "running": self.state.running,
            "pending_retry": self._pending is not None and not self.state.running,
            "thread_alive": self.worker.alive,
            "last": last.as_json() if last is not None else None,
        }
