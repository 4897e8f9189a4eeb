"""The ``lorameter`` command: run, ingest, api, demo, decode, replay, backfill, redecode,
consumption, register, dashboards push, keys."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from lorameter.runtime import freeze_start_up, tune_gc
from lorameter.settings import Settings, load_settings
from storage.redact import redact_secrets, redact_url, url_password

if TYPE_CHECKING:  # the parts are imported where used, so `lorameter decode` starts fast
    from ingest.alarm_service import AlarmService
    from ingest.devices import DeviceRegistry
    from ingest.service import IngestService
    from lorameter.workers import Supervisor
    from metering.meter import MeterConfig
    from storage.api_keys import SQLiteKeys
    from storage.base import Store

__all__ = ["main"]

log = logging.getLogger("lorameter")


class UsageError(Exception):
    """A problem the user fixes in their settings or command line; printed as one line."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        settings = load_settings(args.config) if args.config else load_settings()
    except (ValidationError, OSError, ValueError) as exc:
        _error(f"settings: {_one_line(exc)}", _secrets_in_environment())
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    command: Callable[[argparse.Namespace, Settings], int] = args.handler
    try:
        return command(args, settings)
    except UsageError as exc:
        _error(str(exc), _secrets(settings))
        return 2
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lorameter",
        description="LoRaWAN meter uplinks (The Things Stack, ChirpStack) to trustworthy readings.",
        epilog="Settings come from LORAMETER_* environment variables (see README).",
    )
    parser.add_argument("--config", help="TOML settings file (environment variables win)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, handler: Callable[..., int], help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(handler=handler)
        # also after the command (`lorameter run --config x.toml`); SUPPRESS keeps the first
        p.add_argument("--config", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        return p

    run = add("run", _cmd_run, "ingest from MQTT and serve the API, in one process")
    ingest = add("ingest", _cmd_ingest, "ingest from MQTT into the store")
    for command in (run, ingest):
        command.add_argument(
            "--workers",
            metavar="N",
            help="N ingest worker processes on a shared subscription, to use N cores (default"
            " LORAMETER_WORKERS, 1); alarms are evaluated only with 1",
        )
    add("api", _cmd_api, "serve the HTTP API over the store")
    demo = add("demo", _cmd_demo, "embedded broker + simulated meter fleet + ingest + API")
    demo.add_argument("--meters", type=int, default=32, help="fleet size (at least 4)")
    demo.add_argument("--history-days", type=float, default=7, help="days of 15-minute history")
    demo.add_argument("--live-interval", type=float, default=10, help="seconds between live rounds")
    demo.add_argument("--duration", type=float, default=0, help="stop after N seconds (0: never)")
    decode = add("decode", _cmd_decode, "decode one payload and print the readings as JSON")
    decode.add_argument("decoder", help="decoder id (lorameter decode --list)", nargs="?")
    decode.add_argument("hex", help="payload as hex", nargs="?")
    decode.add_argument("--fport", type=int, default=None, help="LoRaWAN fPort (default: 1st ex.)")
    decode.add_argument("--param", action="append", default=[], help="registry param KEY=VALUE")
    decode.add_argument("--list", action="store_true", help="list the decoder ids")
    replay = add(
        "replay",
        _cmd_replay,
        "ingest a file of uplinks (TTS or ChirpStack): JSON lines, or one JSON document or array",
    )
    replay.add_argument("file", type=Path)
    fill = add(
        "backfill",
        _cmd_backfill,
        "fetch the uplinks of a window from the TTS Storage Integration and store them"
        " (already stored ones are duplicates)",
    )
    fill.add_argument("--since", help="RFC 3339 or a date; default: the newest stored TTS uplink")
    fill.add_argument("--until", help="RFC 3339 or a date; default: now")
    boards = sub.add_parser("dashboards", help="Grafana dashboards")
    boards_sub = boards.add_subparsers(dest="action", metavar="ACTION", required=True)
    push = boards_sub.add_parser(
        "push",
        help="upload the dashboards to an existing Grafana",
        description="Upload lorameter's dashboards to a Grafana through its HTTP API,"
        " into one folder, overwriting earlier versions.",
    )
    push.set_defaults(handler=_cmd_dashboards_push)
    push.add_argument("--url", required=True, help="Grafana's base URL, e.g. https://grafana:3000")
    push.add_argument("--token", default=os.environ.get("GRAFANA_TOKEN", ""),
                      help="service account token (default: $GRAFANA_TOKEN)")  # fmt: skip
    push.add_argument("--folder", default="lorameter", help="folder title (default: lorameter)")
    push.add_argument("--datasource-uid", default="lorameter-influxdb",
                      help="uid of Grafana's InfluxDB (InfluxQL) datasource to query")  # fmt: skip
    keys = sub.add_parser(
        "keys",
        help="API keys: create, list, revoke",
        description="API keys for the HTTP API. Once any key exists, every route but"
        " LORAMETER_API_OPEN_PATHS needs one (Authorization: Bearer KEY or X-API-Key: KEY)."
        " Scopes: " + "; ".join(f"{name}: {what}" for name, what in _scopes().items()) + ".",
    )
    keys.add_argument("--config", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    keys_sub = keys.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = keys_sub.add_parser(
        "create",
        help="create a key; prints it once on stdout (only a hash is kept)",
        description="Create a key and print it once on stdout: only a salted hash is kept.",
    )
    create.set_defaults(handler=_cmd_keys_create)
    create.add_argument("--name", required=True, help="who or what uses it, e.g. grafana")
    create.add_argument(
        "--scope",
        action="append",
        required=True,
        help="read, alarms, raw, ingest or admin (repeat or comma-separate)",
    )
    listing = keys_sub.add_parser("list", help="the keys (never their secrets)")
    listing.set_defaults(handler=_cmd_keys_list)
    listing.add_argument("--all", action="store_true", help="revoked keys too")
    listing.add_argument("--json", action="store_true", help="JSON lines")
    revoke = keys_sub.add_parser("revoke", help="revoke a key by id or name (at once, everywhere)")
    revoke.set_defaults(handler=_cmd_keys_revoke)
    revoke.add_argument("key", help="the key's id or name (lorameter keys list)")
    for p in (create, listing, revoke):
        p.add_argument("--config", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    used = add("consumption", _cmd_consumption, "a device's consumption per calendar interval")
    used.add_argument("device")
    used.add_argument("--from", dest="start", help="RFC 3339 or a date (local midnight)")
    used.add_argument("--to", dest="end", help="RFC 3339 or a date; default: now")
    used.add_argument("--interval", default="day", help="15min, hour, day, month or year")
    used.add_argument("--tz", help="IANA zone; default: the device's, else LORAMETER_TIMEZONE")
    used.add_argument("--field", help="register; default: the medium's billing register")
    used.add_argument("--csv", action="store_true", help="CSV instead of a table")
    used.add_argument("--json", action="store_true", help="JSON as the API answers")
    reg = add("register", _cmd_register, "a device's register at an instant (key-date read)")
    reg.add_argument("device")
    reg.add_argument("--at", required=True, help="RFC 3339 or a date (local midnight)")
    reg.add_argument("--tz", help="IANA zone of a date; default: the device's, else the site's")
    reg.add_argument("--field", help="register; default: the medium's billing register")
    redecode = add(
        "redecode",
        _cmd_redecode,
        "after a registry or decoder fix: re-process dead letters (default), or decode a"
        " device's raw uplinks again (--raw)",
    )
    redecode.add_argument("--reason", help="only dead letters of this reason (e.g. decode_error)")
    redecode.add_argument("--device", help="only this device (required with --raw)")
    redecode.add_argument(
        "--raw",
        action="store_true",
        help="replace the device's readings by its raw uplinks decoded with today's decoder",
    )
    return parser


# -- building blocks ------------------------------------------------------------------------


def _open_store(settings: Settings, *, writer: bool = True) -> Store:
    from storage import StoreError, open_store

    try:
        return open_store(
            settings.store_url,
            influx_token=settings.influx_token,
            spool_path=str(settings.spool_file),
            spool_max_age_s=settings.spool_max_age_s,
            writer=writer,
        )
    except StoreError as exc:
        raise UsageError(f"store {redact_url(settings.store_url)}: {exc}") from exc


def _registry(settings: Settings) -> DeviceRegistry:
    from ingest.devices import RegistryError, load_registry

    try:
        return load_registry(settings.devices)
    except RegistryError as exc:
        raise UsageError(str(exc)) from exc


def _store_identity(settings: Settings) -> str:
    """Where this process stores, without credentials: the same after a restart."""
    from urllib.parse import urlsplit

    url = settings.store_url
    if url.startswith("sqlite:///"):
        identity = f"sqlite:{Path(url.removeprefix('sqlite:///')).resolve()}"
        if settings.mqtt_share_group:
            identity += f"|$share/{settings.mqtt_share_group}/{settings.worker_id}"
        return identity
    parts = urlsplit(url)
    host = parts.hostname or ""
    identity = f"{parts.scheme}://{host}:{parts.port}{parts.path}|{settings.spool_file.resolve()}"
    if settings.mqtt_share_group:  # one session per worker: the spool file names the worker
        identity += f"|$share/{settings.mqtt_share_group}"
    return identity


def _ingest_service(
    settings: Settings, store: Store, devices: DeviceRegistry | None = None
) -> IngestService:
    from ingest.alarm_service import mqtt_publisher
    from ingest.backfill import storage_api
    from ingest.mqtt import MqttError, default_client_id
    from ingest.service import IngestService

    devices = devices if devices is not None else _registry(settings)
    service = None if settings.mqtt_share_group else _alarm_service(settings, store, devices)
    if settings.mqtt_share_group:
        log.info(
            "worker %s of share group %s: alarms are not evaluated here (they need every uplink"
            " of a device in order; a share group splits them)",
            settings.worker_id,
            settings.mqtt_share_group,
        )
    try:
        tts = storage_api(
            settings.mqtt_url, settings.tts_api_url, settings.tts_application, settings.tts_api_key
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    try:
        ingest = IngestService(
            store,
            devices,
            mqtt_url=settings.mqtt_url,
            topics=settings.topics,
            # at-least-once: the same id after a restart finds its persistent session again
            client_id=settings.mqtt_client_id or default_client_id(_store_identity(settings)),
            qos=settings.mqtt_qos,
            ca_file=settings.mqtt_ca_file,
            max_message_bytes=settings.max_message_bytes,
            alarms=service,
            backfill=tts,
            backfill_delay_s=settings.backfill_delay_s,
            backfill_margin_s=settings.backfill_margin_s,
        )
    except MqttError as exc:
        raise UsageError(str(exc)) from exc
    if service is not None and settings.alarm_mqtt_topic:
        service.notifier.publish = mqtt_publisher(ingest.mqtt.client)
    return ingest


def _alarm_service(settings: Settings, store: Store, devices: DeviceRegistry) -> AlarmService:
    from ingest.alarm_service import AlarmService
    from ingest.alarms import AlarmEngine
    from ingest.notify import Notifier

    alarms = _alarm_store(settings)
    notifier = Notifier(
        alarms,
        topic=settings.alarm_mqtt_topic,
        webhook_url=settings.alarm_webhook_url,
        secret=settings.alarm_webhook_secret,
        retry_max_s=settings.alarm_retry_max_s,
    )
    engine = AlarmEngine(alarms, devices, store, timezone=settings.timezone)
    return AlarmService(engine, notifier, sweep_s=settings.alarm_sweep_s)


def _alarm_store(settings: Settings) -> Any:
    """The alarm tables (the SQLite store's file, or a sidecar next to the InfluxDB spool)."""
    from storage import StoreError
    from storage.alarms import SQLiteAlarms, alarm_db_path

    channels = (("mqtt",) if settings.alarm_mqtt_topic else ()) + (
        ("webhook",) if settings.alarm_webhook_url else ()
    )
    path = alarm_db_path(settings.store_url, str(settings.spool_file))
    try:
        return SQLiteAlarms(path, channels=channels)
    except StoreError as exc:
        raise UsageError(str(exc)) from exc


def _scopes() -> dict[str, str]:
    from storage.api_keys import SCOPES

    return SCOPES


def _api_keys(settings: Settings) -> SQLiteKeys:
    """The API keys (the SQLite store's file, or a sidecar next to the InfluxDB spool)."""
    from storage import StoreError
    from storage.api_keys import SQLiteKeys, api_key_db_path

    try:
        return SQLiteKeys(api_key_db_path(settings.store_url, settings.spool_path))
    except StoreError as exc:
        raise UsageError(str(exc)) from exc


def _loopback_only(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only (127.0.0.0/8, ::1, localhost)."""
    import ipaddress

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        found = socket.getaddrinfo(host, None)
    except (OSError, UnicodeError):
        return False
    return bool(found) and all(ipaddress.ip_address(f[4][0]).is_loopback for f in found)


def _check_exposure(settings: Settings, keys: SQLiteKeys) -> bool:
    """Whether the API may run open (loopback, no keys); UsageError beyond loopback without."""
    loopback = _loopback_only(settings.api_host)
    if not loopback and not keys.any_active():
        raise UsageError(
            f"LORAMETER_API_HOST={settings.api_host} serves beyond this machine and no API key"
            " exists: create one first (lorameter keys create --scope read --name NAME), or"
            " bind to 127.0.0.1"
        )
    return loopback


def _check_port_free(host: str, port: int) -> None:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise UsageError(
                f"cannot serve the API on {host}:{port}: {exc.strerror};"
                " set LORAMETER_API_PORT to a free port"
            ) from exc


def _serve_api(
    settings: Settings,
    store: Store,
    ingest: IngestService | None,
    on_started: Callable[[], None],
    meters: Mapping[str, MeterConfig] | None = None,
    shutdown: threading.Event | None = None,
) -> None:
    """Serve the API until SIGINT/SIGTERM (uvicorn handles both), or until ``shutdown`` is set
    (a fatal ingest error: uvicorn stops as on a signal, whether it is starting or serving).

    ``meters``: the devices' metering settings (default: from the registry file).
    """
    import uvicorn

    from api.deps import ApiOptions
    from api.main import create_app
    from api.routes.ingest_webhooks import SECRET_HEADER

    keys = _api_keys(settings)
    loopback = _check_exposure(settings, keys)
    _check_port_free(settings.api_host, settings.api_port)
    alarms = ingest.alarms.engine.alarms if ingest is not None and ingest.alarms else None
    options = ApiOptions(
        open_paths=settings.open_paths,
        open_without_keys=loopback,
        timezone=settings.zone,
        max_body_bytes=settings.api_max_body_bytes,
        decode_timeout_s=settings.api_decode_timeout_s,
        meters=_registry(settings).meter_configs() if meters is None else meters,
        webhook_secret=settings.webhook_secret,
        # A network server's webhook that can send a fixed header but no key of ours.
        header_secrets={"/api/v1/ingest/": (SECRET_HEADER, settings.webhook_secret)}
        if settings.webhook_secret
        else {},
    )
    app = create_app(
        store,
        ingest,
        options,
        alarms=alarms or _alarm_store(settings),
        ingestor=ingest.webhooks if ingest is not None else None,
        keys=keys,
    )
    config = uvicorn.Config(
        app,
        host=settings.api_host,
        port=settings.api_port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=2,  # SIGTERM ends within 10 s whatever the clients do
    )
    server = uvicorn.Server(config)
    # uvicorn shuts down gracefully on SIGTERM, then re-raises it to the handler found before:
    # make that one unwind the stack, so the callers' cleanup (flush ingest, close store) runs.
    signal.signal(signal.SIGTERM, _exit_on_signal)

    def announce() -> None:
        while not server.started and not server.should_exit:
            time.sleep(0.05)
        if server.started:
            on_started()

    threading.Thread(target=announce, daemon=True).start()
    if shutdown is not None:

        def stop_on_shutdown() -> None:
            shutdown.wait()
            server.should_exit = True  # honoured before and after start-up alike

        threading.Thread(target=stop_on_shutdown, daemon=True).start()
    server.run()


def _log_address(settings: Settings) -> Callable[[], None]:
    """What the API's commands do once it listens: say where."""
    return lambda: log.info("API on http://%s:%d", settings.api_host, settings.api_port)


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _progress(ingest: IngestService, every: float, stop: threading.Event, prefix: str = "") -> None:
    """Log one status line every ``every`` seconds until ``stop``."""
    while not stop.wait(every):
        log.info(
            "%s%s, queue %d%s",
            prefix,
            _counts(ingest),
            ingest.writer.depth,
            "" if ingest.mqtt.connected.is_set() else " (broker not connected)",
        )


def _counts(ingest: IngestService) -> str:
    """``ingested N uplinks, rejected N, duplicates N``: the progress line, and the stop line."""
    s = ingest.stats.snapshot()
    return (
        f"ingested {s['accepted']} uplinks, rejected {s['rejected_total']},"
        f" duplicates {s['duplicates']}"
    )


def _log_stopped(ingest: IngestService, settings: Settings) -> None:
    """The stop line: with the worker's name, so an operator sees how a group shared the stream."""
    worker = f"worker {settings.worker_id} " if settings.worker_id else ""
    log.info("%sstopped: %s (client id %s)", worker, _counts(ingest), ingest.mqtt.client_id)


def _watch_fatal(
    ingest: IngestService, on_fatal: Callable[[], None], stop: threading.Event
) -> None:
    while not stop.wait(0.2):
        if ingest.fatal:
            on_fatal()
            return


# -- commands -------------------------------------------------------------------------------


def _rollup(settings: Settings, store: Any) -> Any:
    """The consumption points writer for dashboards, started (None when switched off)."""
    from lorameter.rollup import Rollup

    if not settings.rollup_interval_s:
        return None
    rollup = Rollup(
        store,
        _registry(settings).meter_configs(),
        settings.timezone,
        every_s=settings.rollup_interval_s,
    )
    rollup.start()
    return rollup


def _workers(args: argparse.Namespace, settings: Settings) -> int:
    """``--workers`` or LORAMETER_WORKERS; a bad count is a usage error."""
    text = getattr(args, "workers", None)
    if text is None:
        return settings.workers
    if not text.isdigit() or not 1 <= int(text) <= 64:
        raise UsageError(f"--workers {text!r}: a number of processes from 1 to 64")
    try:
        settings.model_validate({**settings.model_dump(), "workers": int(text)})
    except ValidationError as exc:
        raise UsageError(f"--workers {text}: {_one_line(exc)}") from None
    return int(text)


def _supervise_workers(args: argparse.Namespace, settings: Settings, count: int) -> Supervisor:
    """Start ``count`` ingest workers (lorameter/workers.py) and their watcher thread."""
    from lorameter.workers import DEFAULT_GROUP, Supervisor

    config = ["--config", args.config] if getattr(args, "config", None) else []
    supervisor = Supervisor(count, settings.mqtt_share_group or DEFAULT_GROUP, config)
    log.info(
        "%d ingest workers on $share/%s/...: alarms are not evaluated (one process does that)",
        count, supervisor.group,
    )  # fmt: skip
    supervisor.start()
    return supervisor


def _cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    # The operator's SIGTERM before the API runs: unwind, clean up, report.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    workers = _workers(args, settings)
    if workers > 1:
        return _run_with_workers(args, settings, workers)
    keys = _api_keys(settings)  # refuse an open API beyond loopback before ingest starts
    try:
        _check_exposure(settings, keys)
    finally:
        keys.close()
    store = _open_store(settings)
    try:
        ingest = _ingest_service(settings, store)
    except BaseException:
        store.close()
        raise
    stop, fatal = threading.Event(), threading.Event()
    # The API's imports (FastAPI, pydantic, the routes: ~0.4 s of CPU) before the first uplink:
    # run in the API's thread as ingest starts, they held the first uplinks ~0.6 s
    # (bench/latency.py's slowest second).
    import uvicorn  # noqa: F401

    import api.main  # noqa: F401

    freeze_start_up()
    ingest.start()
    rollup = _rollup(settings, store)
    threading.Thread(target=_progress, args=(ingest, 60, stop), daemon=True).start()
    # A fatal ingest error stops the API server directly: a signal sent to ourselves would
    # land wherever the main thread is (imports, uvicorn's start-up) and could leave it hanging.
    threading.Thread(target=_watch_fatal, args=(ingest, fatal.set, stop), daemon=True).start()
    try:
        _serve_api(
            settings,
            store,
            ingest,
            _log_address(settings),
            shutdown=fatal,
        )
    except SystemExit:
        pass  # SIGTERM (ours on a fatal error, or the operator's): shut down below
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # shutdown is bounded; let it finish
        stop.set()
        if rollup is not None:
            rollup.stop()
        ingest.stop()
        store.close()
        _log_stopped(ingest, settings)
    if ingest.fatal:
        print(f"error: {ingest.fatal}", file=sys.stderr)
        return 2
    return 0


def _run_with_workers(args: argparse.Namespace, settings: Settings, count: int) -> int:
    """``lorameter run --workers N``: the API here, ingest in N worker processes."""
    keys = _api_keys(settings)
    try:
        _check_exposure(settings, keys)
    finally:
        keys.close()
    store = _open_store(settings, writer=False)  # the workers write (and hold the spools)
    supervisor = _supervise_workers(args, settings, count)
    watcher = threading.Thread(target=supervisor.watch, daemon=True)
    watcher.start()

    fatal = threading.Event()

    def on_fatal() -> None:
        watcher.join()
        fatal.set()

    threading.Thread(target=on_fatal, daemon=True).start()
    try:
        _serve_api(
            settings,
            store,
            None,
            _log_address(settings),
            shutdown=fatal,
        )
    except SystemExit:
        pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        supervisor.stop()
        watcher.join()
        store.close()
    return supervisor.exit_code


def _cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    workers = _workers(args, settings)
    if workers > 1:
        supervisor = _supervise_workers(args, settings, workers)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: supervisor.stop())
        return supervisor.watch()
    store = _open_store(settings)
    ingest = _ingest_service(settings, store)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    freeze_start_up()
    ingest.start()  # handlers first: a SIGTERM from now on ends the loop below
    rollup = _rollup(settings, store)
    threading.Thread(target=_progress, args=(ingest, 60, stop), daemon=True).start()
    try:
        while not stop.wait(0.2):
            if ingest.fatal:
                break
    finally:
        if rollup is not None:
            rollup.stop()
        ingest.stop()
        store.close()
        _log_stopped(ingest, settings)
    if ingest.fatal:
        print(f"error: {ingest.fatal}", file=sys.stderr)
        return 2
    return 0


def _cmd_api(args: argparse.Namespace, settings: Settings) -> int:
    store = _open_store(settings, writer=False)  # ingest, elsewhere, holds the spool
    tune_gc()  # an API process only reads: fewer collections, at no memory cost that matters
    try:
        _serve_api(
            settings,
            store,
            None,
            _log_address(settings),
        )
    finally:
        store.close()
    return 0


def _cmd_keys_create(args: argparse.Namespace, settings: Settings) -> int:
    from storage.api_keys import KeyError_

    keys = _api_keys(settings)
    try:
        new = keys.create(args.name, args.scope)
    except KeyError_ as exc:
        raise UsageError(str(exc)) from None
    finally:
        keys.close()
    # The key alone on stdout (KEY=$(lorameter keys create ...)); the rest for the person.
    print(new.token)
    print(
        f"created key {new.key.name!r} (id {new.key.id}, scopes {','.join(new.key.scopes)});"
        " it is shown only this once: store it now. Send it as `Authorization: Bearer KEY`"
        " or `X-API-Key: KEY`.",
        file=sys.stderr,
    )
    return 0


def _cmd_keys_list(args: argparse.Namespace, settings: Settings) -> int:
    keys = _api_keys(settings)
    try:
        found = keys.keys(revoked=args.all)
    finally:
        keys.close()
    if args.json:
        for key in found:
            print(json.dumps({
                "id": key.id, "name": key.name, "scopes": list(key.scopes),
                "created_at": key.created_at.isoformat(),
                "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
            }))  # fmt: skip
        return 0
    if not found:
        print("no API keys: the API runs open on loopback only (lorameter keys create)")
        return 0
    print(f"{'ID':12}  {'NAME':20}  {'SCOPES':28}  {'CREATED':20}  REVOKED")
    for key in found:
        revoked = key.revoked_at.strftime("%Y-%m-%d %H:%M UTC") if key.revoked_at else "-"
        print(
            f"{key.id:12}  {key.name:20}  {','.join(key.scopes):28}"
            f"  {key.created_at.strftime('%Y-%m-%d %H:%M UTC'):20}  {revoked}"
        )
    return 0


def _cmd_keys_revoke(args: argparse.Namespace, settings: Settings) -> int:
    from storage.api_keys import KeyError_

    keys = _api_keys(settings)
    try:
        key = keys.revoke(args.key)
        left = len(keys.keys())
    except KeyError_ as exc:
        raise UsageError(str(exc)) from None
    finally:
        keys.close()
    print(
        f"revoked key {key.name!r} (id {key.id}); {left} active key(s) left"
        + ("" if left else ": the API now runs open on loopback and refuses other addresses")
    )
    return 0


def _cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from lorameter.demo import run_demo

    return run_demo(settings, args, serve_api=_serve_api, ingest_service=_ingest_service,
                    open_store=_open_store, fail=UsageError)  # fmt: skip


def _cmd_decode(args: argparse.Namespace, settings: Settings) -> int:
    from decoders import registry
    from decoders.core import DecodeError, Uplink, readings_to_json
    from storage.schema import clean_readings

    if args.list or not args.decoder:
        for decoder_id, known in registry.all_decoders().items():
            print(f"{decoder_id:32} {known.vendor} {known.model} ({known.medium or 'any'})")
        return 0
    decoder = registry.by_id(args.decoder)
    if decoder is None:
        raise UsageError(f"no decoder {args.decoder!r}; `lorameter decode --list` lists them")
    if args.hex is None:
        raise UsageError("give the payload as hex: lorameter decode DECODER HEX [--fport N]")
    try:
        payload = bytes.fromhex(args.hex.replace(" ", "").replace(":", ""))
    except ValueError as exc:
        raise UsageError(f"payload is not hex: {exc}") from exc
    port = args.fport if args.fport is not None else decoder.examples[0].f_port
    params: dict[str, Any] = {}
    for item in args.param:
        key, _, value = item.partition("=")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    try:
        readings = decoder.readings(Uplink(port, payload, None, params))
    except DecodeError as exc:
        print(f"error: {decoder.id} rejected the payload: {exc}", file=sys.stderr)
        if exc.offset is not None:
            text = payload.hex(" ")
            print(f"  {text}\n  {' ' * (3 * min(exc.offset, len(payload)))}^", file=sys.stderr)
        return 1
    except Exception as exc:  # a decoder bug on this payload or these params
        print(f"error: {decoder.id} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    shown = readings_to_json(clean_readings(readings))
    print(json.dumps({"decoder": decoder.id, "f_port": port, "readings": shown}, indent=2))
    return 0


def _cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    from ingest.pipeline import Pipeline
    from ingest.replay import ReplayError, replay_file
    from ingest.writer import Writer

    if not args.file.is_file():
        raise UsageError(f"{args.file}: no such file")
    store = _open_store(settings)
    writer = Writer(store)
    writer.start()
    pipeline = Pipeline(_registry(settings), max_bytes=settings.max_message_bytes)
    started = time.monotonic()
    try:
        messages = replay_file(args.file, writer, pipeline)
        writer.flush()
    except ReplayError as exc:
        raise UsageError(str(exc)) from None
    finally:
        writer.stop()
        store.close()
    s = writer.stats.snapshot()
    rejected = {k: v for k, v in s["rejected"].items() if v}
    print(
        f"replayed {messages} messages from {args.file} in {time.monotonic() - started:.1f} s:"
        f" {s['accepted']} stored, {s['duplicates']} duplicates, {s['simulated']} simulated,"
        f" {s['rejected_total']} rejected"
        + (f" ({', '.join(f'{k} {v}' for k, v in rejected.items())})" if rejected else "")
    )
    if s["accepted"] + s["duplicates"] == 0:
        # Nothing of the file is in the store: a script must notice (an all-duplicate replay
        # is fine, its uplinks are stored).
        print(f"error: no uplink of {args.file} was stored", file=sys.stderr)
        return 1
    return 0


def _cmd_backfill(args: argparse.Namespace, settings: Settings) -> int:
    import httpx

    from api.params import parse_time
    from ingest.backfill import BackfillError, BackfillReport, backfill, storage_api
    from ingest.pipeline import Pipeline
    from ingest.writer import Writer

    try:
        tts = storage_api(
            settings.mqtt_url, settings.tts_api_url, settings.tts_application, settings.tts_api_key
        )
        since = parse_time(args.since, settings.zone, "--since") if args.since else None
        until = parse_time(args.until, settings.zone, "--until") if args.until else None
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    if tts is None:
        raise UsageError(
            "no TTS Storage Integration to read: the MQTT user is not a TTS app@tenant; set"
            " LORAMETER_TTS_API_URL (and LORAMETER_TTS_APPLICATION, LORAMETER_TTS_API_KEY)"
        )
    store = _open_store(settings)
    writer = Writer(store)
    writer.start()
    pipeline = Pipeline(_registry(settings), max_bytes=settings.max_message_bytes)
    try:
        if since is None:
            newest = store.last_uplink_at("tts")
            if newest is None:
                raise UsageError("the store holds no TTS uplink yet: give --since")
            since = newest - timedelta(seconds=settings.backfill_margin_s)
        report = BackfillReport(after=since, before=until, reason="command line")
        with httpx.Client() as client:
            backfill(client, tts, pipeline, lambda outcome, done: writer.submit(outcome, done),
                     report)  # fmt: skip
        failed = ""
    except BackfillError as exc:
        failed = str(exc)
    finally:
        writer.flush()
        writer.stop()
        store.close()
    s = writer.stats.snapshot()
    print(f"{report.summary()}; {s['accepted']} stored new, {s['duplicates']} were already stored")
    if failed:
        print(f"error: {failed}", file=sys.stderr)
        return 1
    return 0


def _cmd_dashboards_push(args: argparse.Namespace, settings: Settings) -> int:
    from dashboards.publish import PublishError, push

    if not args.token:
        raise UsageError("give a Grafana service account token: --token or GRAFANA_TOKEN")
    try:
        pushed = push(args.url, args.token, folder=args.folder, datasource_uid=args.datasource_uid)
    except PublishError as exc:
        raise UsageError(str(exc)) from None
    for board in pushed:
        print(f"{board.title}: version {board.version} at {board.url or board.uid}")
    return 0


def _metering_request(settings: Settings, device: str, tz: str | None) -> tuple[Any, Any, Any, Any]:
    """The store, the device's summary, its metering settings and its zone, or a UsageError."""
    from api.consumption import config_for
    from api.params import parse_zone

    registry = _registry(settings).meter_configs()
    try:
        zone = parse_zone(tz or getattr(registry.get(device), "timezone", "") or settings.timezone)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    store = _open_store(settings)
    summary = store.device(device)
    if summary is None:
        store.close()
        raise UsageError(f"device {device!r} not found in {settings.store_url}")
    return store, summary, config_for(device, summary.decoder, registry), zone


def _cmd_consumption(args: argparse.Namespace, settings: Settings) -> int:
    from api.consumption import DEFAULT_SPAN, MeteringError, Window, device_report
    from api.params import parse_time

    store, summary, config, zone = _metering_request(settings, args.device, args.tz)
    try:
        if args.interval not in DEFAULT_SPAN:
            raise UsageError(f"--interval must be one of {', '.join(DEFAULT_SPAN)}")
        end = parse_time(args.end, zone, "--to") if args.end else datetime.now(UTC)
        start = (
            parse_time(args.start, zone, "--from")
            if args.start
            else end - DEFAULT_SPAN[args.interval]
        )
        report = device_report(
            store, summary, config, Window(start, end, args.interval, zone), args.field
        )
    except (MeteringError, ValueError) as exc:
        raise UsageError(str(exc)) from exc
    finally:
        store.close()
    if args.json:
        print(json.dumps(report.as_json(), indent=2))
        return 0
    items = list(report.items())
    if args.csv:
        import csv

        writer = csv.writer(sys.stdout, lineterminator="\n")
        columns = ("start", "end", "consumption", "start_reading", "end_reading", "status")
        writer.writerow(columns)
        for item in items:
            writer.writerow(["" if item[k] is None else item[k] for k in columns])
        return 0
    head = report.header()
    print(f"{head['device']} (meter {head['meter'] or '-'}), {head['field']} in {head['unit']},"
          f" per {head['interval']} in {head['tz']}")  # fmt: skip
    for item in items:
        used = "-" if item["consumption"] is None else f"{item['consumption']:.3f}"
        notes = ", ".join(f"{e['kind']} at {e['at']}" for e in item["events"])
        print(f"  {item['start']}  {used:>14}  {item['status']}{'  ' + notes if notes else ''}")
    total = "-" if head["total"] is None else f"{head['total']:.3f}"
    ignored = head["ignored_readings"]
    print(f"  total {total} {head['unit']}" + (f"; {ignored} readings ignored" if ignored else ""))
    return 0


def _cmd_register(args: argparse.Namespace, settings: Settings) -> int:
    from api.consumption import MeteringError, register_read
    from api.params import parse_time

    store, summary, config, zone = _metering_request(settings, args.device, args.tz)
    try:
        answer = register_read(
            store, summary, config, parse_time(args.at, zone, "--at"), args.field
        )
    except (MeteringError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()
    print(json.dumps(answer, indent=2))
    return 0


def _cmd_redecode(args: argparse.Namespace, settings: Settings) -> int:
    from ingest.pipeline import Pipeline
    from ingest.redecode import redecode_dead_letters, redecode_raw

    if args.raw and not args.device:
        raise UsageError("--raw decodes one device's history again: give --device ID")
    if args.raw and args.reason:
        raise UsageError("--reason selects dead letters; it does not apply to --raw")
    pipeline = Pipeline(_registry(settings), max_bytes=settings.max_message_bytes)
    store = _open_store(settings)
    try:
        if args.raw:
            raw = redecode_raw(store, pipeline, args.device)
        else:
            letters = redecode_dead_letters(store, pipeline, reason=args.reason, device=args.device)
    finally:
        store.close()
    if not args.raw:
        still = ", ".join(f"{k} {v}" for k, v in letters.still.most_common())
        print(
            f"re-processed {letters.examined} dead letters: {letters.stored} now stored as"
            f" readings (removed from the dead letters), {letters.examined - letters.stored}"
            f" still rejected" + (f" ({still})" if still else "")
        )
        return 0
    if not raw.uplinks:
        print(f"error: no raw uplinks of device {args.device!r} are stored", file=sys.stderr)
        return 1
    if not raw.replaced:
        failed = ", ".join(f"{k} {v}" for k, v in raw.failed.most_common())
        print(
            f"error: {sum(raw.failed.values())} of {raw.uplinks} uplinks of {args.device} no"
            f" longer decode ({failed}); its readings are unchanged. First: {raw.examples[0]}",
            file=sys.stderr,
        )
        return 1
    print(
        f"decoded {raw.uplinks} raw uplinks of {args.device} again:"
        f" its readings are now {raw.points} points"
    )
    return 0


def _error(message: str, secrets: Sequence[str]) -> None:
    """Print one error line, with every secret we know of masked (defence in depth)."""
    print(f"error: {redact_secrets(message, secrets)}", file=sys.stderr)


def _secrets(settings: Settings) -> list[str]:
    return [
        url_password(settings.mqtt_url),
        url_password(settings.store_url),
        settings.influx_token,
        settings.tts_api_key,
        settings.webhook_secret,
        *_secrets_in_environment(),
    ]


def _secrets_in_environment() -> list[str]:
    """Secrets the settings would hold, read raw: for errors raised before they exist."""
    env = os.environ
    return [
        url_password(env.get("LORAMETER_MQTT_URL", "")),
        url_password(env.get("LORAMETER_STORE_URL", "")),
        env.get("LORAMETER_INFLUX_TOKEN", ""),
        env.get("LORAMETER_TTS_API_KEY", ""),
        env.get("LORAMETER_WEBHOOK_SECRET", ""),
    ]


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(
            (f"LORAMETER_{'_'.join(str(p) for p in e['loc']).upper()}: " if e["loc"] else "")
            + e["msg"].removeprefix("Value error, ")
            for e in exc.errors()
        )
    return str(exc).splitlines()[0]


if __name__ == "__main__":
    sys.exit(main())
