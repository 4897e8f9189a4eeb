"""Real services for tests: a mosquitto broker on a free port, started and stopped by fixtures."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import uvicorn
from fastapi import FastAPI

__all__ = [
    "Mosquitto",
    "fill_disk",
    "free_port",
    "serve",
    "small_disk",
    "start_mosquitto",
    "stop_process",
    "wait_for_port",
]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 15.0, host: str = "127.0.0.1") -> None:
    """Block until something accepts TCP connections on the port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout} s")


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if the process has not ended after 10 s."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def find_binary(name: str, hint: str) -> str:
    for candidate in (shutil.which(name), f"/usr/sbin/{name}", f"/usr/bin/{name}"):
        if candidate and Path(candidate).exists():
            return candidate
    raise RuntimeError(f"{name} is not installed: {hint}")


@dataclass
class Mosquitto:
    """A running mosquitto on 127.0.0.1."""

    port: int
    process: subprocess.Popen[bytes]
    config: Path
    log: IO[bytes]

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def stop(self) -> None:
        stop_process(self.process)
        self.log.close()


def start_mosquitto(workdir: Path, *, port: int | None = None, extra: str = "") -> Mosquitto:
    """Start mosquitto with a temp config (anonymous access unless ``extra`` says otherwise)."""
    binary = find_binary("mosquitto", "apt-get install mosquitto (make test does it as root)")
    port = port or free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / f"mosquitto-{port}.conf"
    config.write_text(
        f"listener {port} 127.0.0.1\n"
        + ("allow_anonymous true\n" if "allow_anonymous" not in extra else "")
        + "persistence false\nmax_inflight_messages 100\nmax_queued_messages 100000\n"
        # as root, mosquitto drops to user 'mosquitto', who cannot read our temp files
        + ("user root\n" if os.geteuid() == 0 else "")
        + extra
    )
    log = open(workdir / f"mosquitto-{port}.log", "wb")  # noqa: SIM115 - lives with the process
    process = subprocess.Popen([binary, "-c", str(config)], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port)
    except TimeoutError:
        process.kill()
        log.close()
        raise RuntimeError(f"mosquitto did not start; see {workdir}/mosquitto-{port}.log") from None
    return Mosquitto(port, process, config, log)


@contextmanager
def small_disk(path: Path, size_kib: int = 2048) -> Iterator[Path]:
    """A real file system of ``size_kib`` (tmpfs) at ``path``, to run out of space for real.

    Needs root (CI runs as root); elsewhere the test is skipped with the reason.
    """
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs", str(path)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        import pytest

        pytest.skip(f"cannot mount a small tmpfs (needs root): {mounted.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill_disk(path: Path) -> Path:
    """Fill the file system of ``path`` up to the last byte; delete the file to free it."""
    filler = path / "filler"
    with filler.open("wb", buffering=0) as handle:
        chunk = b"\0" * 65536
        try:
            while True:
                handle.write(chunk)
        except OSError:
            pass
        try:
            while True:
                handle.write(b"\0")
        except OSError:
            pass
    return filler


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
