"""The sender thread of the InfluxDB store: drains the spool into InfluxDB, in order.

Batches go out by line count, or ``flush_interval_s`` after the first line waits; a failure
backs off (up to ``retry_max_s``) and keeps everything in the spool; lines InfluxDB refuses for
good are set aside one by one (``InfluxTarget.write_lines``). No error ends the thread: each is
logged, counted (``crashes``) and shown in /health.
"""

from __future__ import annotations

import logging
import threading
import time

import httpx

from storage.influx_http import InfluxError, InfluxTarget
from storage.spool import Spool

__all__ = ["Sender"]

log = logging.getLogger("lorameter.storage.influx")


class Sender:
    """Sends what the spool holds; ``flush`` waits for it, ``stop`` ends the thread."""

    def __init__(
        self,
        target: InfluxTarget,
        spool: Spool,
        *,
        batch_lines: int,
        flush_interval_s: float,
        timeout_s: float,
        retry_max_s: float,
        create_database: bool,
    ) -> None:
        self.target = target
        self.spool = spool
        self.batch_lines = batch_lines
        self.flush_interval_s = flush_interval_s
        self.timeout_s = timeout_s
        self.retry_max_s = retry_max_s
        self.create_database = create_database
        self.sent_lines = 0
        self.sent_batches = 0
        self.crashes = 0
        self.error: InfluxError | None = None
        self.rejected_error = ""
        self._cond = threading.Condition()
        self._attempts = 0
        self._flush_wanted = False
        self._pending_since = 0.0 if spool.rows else None  # spooled earlier: send now
        self._backoff_until = 0.0
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="influx-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self, join_timeout: float) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(join_timeout)

    def queued(self) -> None:
        """New lines are in the spool: send them when due."""
        with self._cond:
            if self.spool.rows and self._pending_since is None:
                self._pending_since = time.monotonic()
            self._cond.notify_all()

    def flush(self, timeout: float) -> bool:
        """Send everything spooled now; True when the spool is empty, False on failure/timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            if not self.spool.rows:
                return True
            self._flush_wanted = True
            attempts = self._attempts
            self._cond.notify_all()
            while self.spool.rows and not self._stopping:
                if self._attempts > attempts and self.error is not None:
                    return False
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return not self.spool.rows

    def _wait_for_work(self) -> bool:
        with self._cond:
            while not self._stopping:
                now = time.monotonic()
                if not self.spool.rows:
                    self._pending_since = None
                    self._flush_wanted = False
                    self._cond.notify_all()
                    self._cond.wait()
                    continue
                if not self._flush_wanted and now < self._backoff_until:
                    self._cond.wait(self._backoff_until - now)
                    continue
                due = (self._pending_since or 0.0) + self.flush_interval_s
                if self._flush_wanted or self.spool.lines >= self.batch_lines or now >= due:
                    return True
                self._cond.wait(due - now)
            return False

    def _run(self) -> None:
        """The sender thread: no error ends it (each is logged, counted and in /health)."""
        while not self._stopping:
            try:
                return self._send_loop()
            except Exception as exc:
                self._crashed(exc)
                time.sleep(1.0)

    def _crashed(self, exc: Exception) -> None:
        self.crashes += 1
        log.exception("InfluxDB sender failed (%d so far); going on", self.crashes)
        self.error = InfluxError("internal", f"sender failed: {exc}")

    def _send_loop(self) -> None:
        client = self.target.client(timeout=self.timeout_s)
        backoff = 0.0
        try:
            while self._wait_for_work():
                try:
                    ok = self._send_one(client)
                except Exception as exc:  # keep the sender alive whatever happens
                    self._crashed(exc)
                    ok = False
                backoff = 0.0 if ok else min(max(backoff * 2, 0.2), self.retry_max_s)
                with self._cond:
                    self._attempts += 1
                    self._backoff_until = time.monotonic() + backoff
                    if not ok:
                        self._flush_wanted = False
                    self._cond.notify_all()
        finally:
            client.close()

    def _send_one(self, client: httpx.Client) -> bool:
        batch = self.spool.head(self.batch_lines)
        if batch is None:
            return True
        try:
            refused = self.target.write_lines(client, batch.body)
        except InfluxError as exc:
            if exc.kind == "database" and self.create_database and self.ensure_database(client):
                return True
            if self.error is None or str(self.error) != str(exc):
                log.error("%s; spooling (%d lines waiting)", exc, self.spool.lines)
            self.error = exc
            return False
        if refused:
            log.error("InfluxDB refused %d of %d lines, kept in the table 'rejected' of %s: %s",
                      len(refused), batch.lines, self.spool.path, refused[0][1])  # fmt: skip
            self.rejected_error = refused[0][1]
        self.spool.remove(batch, rejected=refused)
        self.sent_lines += batch.lines - len(refused)
        self.sent_batches += 1
        if self.error is not None:
            log.warning("InfluxDB %s answers again; draining the spool", self.target.display)
            self.error = None
        return True

    def ensure_database(self, client: httpx.Client | None = None) -> bool:
        """``CREATE DATABASE`` (1.x); False, logged, where that is refused."""
        own = client is None
        http = client or self.target.client(timeout=min(self.timeout_s, 3.0))
        try:
            self.target.create_database(http)
            return True
        except InfluxError as exc:
            log.info("could not create database %r: %s", self.target.database, exc)
            return False
        finally:
            if own:
                http.close()
