"""Supervised worker threads: a worker that crashes is logged, counted, and started again.

No thread of the ingest path may die silently (issue 8): the MQTT network loop, the batching
writer and the store's sender each run their body under ``Worker``, which catches whatever
escapes, records it for ``/health`` and ``/metrics``, waits a little (growing up to 5 s, so a
crash at every start cannot spin) and runs the body again until ``stop()``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

__all__ = ["Worker"]

log = logging.getLogger("lorameter.ingest")


class Worker:
    """One named background thread that runs ``body`` again after a crash until stopped.

    ``body`` returns when its work is done (then the worker ends); it should watch
    ``stopping`` to return promptly on ``stop()``.
    """

    def __init__(
        self,
        name: str,
        body: Callable[[], None],
        *,
        on_crash: Callable[[str, BaseException], None] | None = None,
        restart_min_s: float = 0.2,
        restart_max_s: float = 5.0,
    ) -> None:
        self.name = name
        self.body = body
        self.on_crash = on_crash
        self.restart_min_s = restart_min_s
        self.restart_max_s = restart_max_s
        self.stopping = threading.Event()
        self.crashes = 0
        self.last_crash = ""
        self.finished = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=f"lorameter-{self.name}")
        self._thread.daemon = True
        self._thread.start()

    @property
    def alive(self) -> bool:
        """The thread runs (or is waiting to restart its body after a crash)."""
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        self.stopping.set()

    def join(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for the thread to end; True if it did."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _loop(self) -> None:
        delay = self.restart_min_s
        while True:
            started = time.monotonic()
            try:
                self.body()
                self.finished = True
                return
            except Exception as exc:  # the point of supervision: nothing ends the worker
                self.crashes += 1
                self.last_crash = f"{type(exc).__name__}: {exc}"[:300]
                log.exception("%s thread crashed (%d so far); restarting", self.name, self.crashes)
                if self.on_crash is not None:
                    self.on_crash(self.name, exc)
            if time.monotonic() - started > 60:
                delay = self.restart_min_s  # it ran a good while: not a crash loop
            if self.stopping.wait(delay):
                return
            delay = min(delay * 2, self.restart_max_s)
