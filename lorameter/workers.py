"""``LORAMETER_WORKERS=N``: N ``lorameter ingest`` processes on one shared subscription.

One Python process decodes on one core (the GIL); N worker processes use N. The supervisor
starts ``lorameter ingest`` N times as members of the share group ``LORAMETER_MQTT_SHARE_GROUP``
(``lorameter`` when unset) with ``LORAMETER_WORKER_ID`` 1..N, so the broker hands each message
to one of them (``$share/<group>/<topic>``), each acknowledges what it stored, and each keeps
its own persistent session and spool under its worker id. A worker that dies is started again
under the same id after a second: it finds its session, and the broker redelivers what it had
not acknowledged, so nothing is lost (at-least-once; the store's dedup makes the overlap
harmless). A worker that exits with code 2 (a setting or login that cannot work) ends them all
with code 2. SIGTERM/SIGINT stop every worker (each stores what it holds and says so); on Linux a
worker also gets SIGTERM when the supervisor dies, even by SIGKILL, so no orphan holds on to a
worker's session when the supervisor is started again.

What it does not do: alarms need each device's uplinks in order, which a share group splits, so
workers evaluate none (run one process for alarms); the consumption rollup runs in worker 1 only.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

__all__ = ["DEFAULT_GROUP", "Supervisor"]

log = logging.getLogger("lorameter.workers")

DEFAULT_GROUP = "lorameter"
RESTART_DELAY_S = 1.0
PR_SET_PDEATHSIG = 1  # prctl(2): the signal a process gets when its parent thread ends


def _die_with_parent() -> None:
    """In the worker before exec: SIGTERM when the supervisor's thread that started it ends."""
    with contextlib.suppress(OSError, AttributeError):  # not Linux: stop it with SIGTERM
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Supervisor:
    """Starts ``count`` ingest workers and keeps them running until ``stop``."""

    def __init__(self, count: int, group: str, config: Sequence[str] = ()) -> None:
        self.count = count
        self.group = group
        self.config = list(config)  # ["--config", "file.toml"] when given
        self.processes: dict[int, subprocess.Popen[bytes]] = {}
        self.restarts = 0
        self.exit_code = 0
        self.stopping = threading.Event()

    def _start(self, n: int) -> None:
        env = dict(os.environ)
        env.update(
            LORAMETER_WORKERS="1",
            LORAMETER_MQTT_SHARE_GROUP=self.group,
            LORAMETER_WORKER_ID=str(n),
        )
        if n > 1:  # one rollup writer is enough (the consumption points are idempotent anyway)
            env["LORAMETER_ROLLUP_INTERVAL_S"] = "0"
        command = [sys.executable, "-m", "lorameter.cli", *self.config, "ingest"]
        self.processes[n] = subprocess.Popen(command, env=env, preexec_fn=_die_with_parent)
        log.info("worker %d of share group %s started (pid %d)", n, self.group,
                 self.processes[n].pid)  # fmt: skip

    def start(self) -> None:
        for n in range(1, self.count + 1):
            self._start(n)

    def watch(self) -> int:
        """Restart workers that die, until ``stop`` or a fatal exit; the exit code."""
        restart_at: dict[int, float] = {}
        while not self.stopping.wait(0.2):
            for n, process in list(self.processes.items()):
                code = process.poll()
                if code is None or n in restart_at:
                    continue
                if code == 2:  # a setting or login that cannot work: the worker said why
                    log.error("worker %d exited with code 2; stopping all workers", n)
                    self.exit_code = 2
                    self.stopping.set()
                    break
                log.error("worker %d (pid %d) exited with code %s; restarting it in %.0f s",
                          n, process.pid, code, RESTART_DELAY_S)  # fmt: skip
                restart_at[n] = time.monotonic() + RESTART_DELAY_S
            for n, when in list(restart_at.items()):
                if time.monotonic() >= when and not self.stopping.is_set():
                    del restart_at[n]
                    self.restarts += 1
                    self._start(n)
        self._stop_all()
        return self.exit_code

    def stop(self) -> None:
        self.stopping.set()

    def _stop_all(self, timeout: float = 20.0) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for n, process in self.processes.items():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("worker %d did not stop within %.0f s; killing it", n, timeout)
                process.kill()
                process.wait()
