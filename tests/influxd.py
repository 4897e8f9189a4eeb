"""A real influxd (Debian's 1.6) for tests: free ports, temp config and data, stop/start again."""

from __future__ import annotations

import itertools
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import httpx

from tests.services import find_binary, free_port, stop_process

__all__ = ["Influxd", "start_influxd"]

_CONFIG = """\
reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"

[meta]
  dir = "{workdir}/meta"
  logging-enabled = false

[data]
  dir = "{workdir}/data"
  wal-dir = "{workdir}/wal"
  wal-fsync-delay = "0s"
  index-version = "inmem"
  query-log-enabled = false
  trace-logging-enabled = false

[coordinator]
  log-queries-after = "0s"

[retention]
  enabled = false

[shard-precreation]
  enabled = false

[monitor]
  store-enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:{http_port}"
  auth-enabled = {auth}
  log-enabled = false
  write-tracing = false
  pprof-enabled = false
  flux-enabled = false

[logging]
  level = "warn"
  suppress-logo = true

[subscriber]
  enabled = false

[continuous_queries]
  enabled = false
"""


@dataclass
class Influxd:
    """A running influxd on 127.0.0.1; ``stop()`` and ``start()`` keep its ports and data."""

    workdir: Path
    http_port: int
    rpc_port: int
    auth: bool = False
    process: subprocess.Popen[bytes] | None = None
    log: BinaryIO | None = None
    _names: itertools.count[int] = field(default_factory=itertools.count)
    # One client for every query: ``httpx.post`` builds a client (and its TLS context) per call,
    # ~30 ms of CPU, which a bench polling the count every 50 ms took from the consumers.
    _client: httpx.Client | None = field(default=None, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def url(self) -> str:
        """A store URL for the database ``lorameter``."""
        return f"influxdb://127.0.0.1:{self.http_port}/lorameter"

    def new_database_url(self, *, credentials: str = "") -> str:
        """A store URL naming a database no other caller got (isolation between tests)."""
        name = f"t{next(self._names)}_{uuid.uuid4().hex[:8]}"
        auth = f"{credentials}@" if credentials else ""
        return f"influxdb://{auth}127.0.0.1:{self.http_port}/{name}"

    def start(self) -> None:
        """Start influxd (again) with the same config, ports and data; wait for /ping."""
        if self.process is not None and self.process.poll() is None:
            return
        binary = find_binary("influxd", "apt-get install influxdb (make test does it as root)")
        config = self.workdir / "influxdb.conf"
        config.write_text(
            _CONFIG.format(
                workdir=self.workdir,
                http_port=self.http_port,
                rpc_port=self.rpc_port,
                auth="true" if self.auth else "false",
            )
        )
        self.log = open(self.workdir / "influxd.log", "ab")  # noqa: SIM115 - closed by stop()
        self.process = subprocess.Popen(
            [binary, "run", "-config", str(config)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env={"PATH": "/usr/bin:/bin", "HOME": str(self.workdir)},
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                if httpx.get(f"{self.base_url}/ping", timeout=0.5).status_code == 204:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"influxd did not start; see {self.workdir}/influxd.log")

    def stop(self) -> None:
        """Stop influxd (SIGTERM, then SIGKILL after 10 s); its data stays in ``workdir``."""
        if self.process is None:
            return
        stop_process(self.process)
        self.process = None
        if self.log is not None:
            self.log.close()
            self.log = None
        if self._client is not None:
            self._client.close()
            self._client = None

    def query(self, q: str, db: str = "", **params: str) -> httpx.Response:
        """Run InfluxQL directly (as a test oracle, bypassing the store)."""
        data = {"q": q, "db": db, "epoch": "ns", **params}
        if self._client is None:
            self._client = httpx.Client(timeout=10)
        return self._client.post(f"{self.base_url}/query", data=data)


def start_influxd(workdir: Path, *, auth: bool = False) -> Influxd:
    """Start influxd on free ports with a temp config and data dirs under ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    server = Influxd(workdir, http_port=free_port(), rpc_port=free_port(), auth=auth)
    server.start()
    return server
