"""Node-RED comparison: uplinks/s of a Node-RED 4 flow and of ``lorameter ingest``, side by side.

The flow (bench/nodered/flow.json: mqtt in → JS decode (bench/nodered/decode.js) → join 1000 →
``influxdb batch``) is what issue 13 measured at 4,576 uplinks/s; lorameter is to reach ≥ 1.5×
it. Node-RED 4 and node-red-contrib-influxdb are installed from the npm registry with ``npm ci``
(bench/nodered/package-lock.json) into a cache directory under the system temp dir, reused by
later runs. Without ``npm`` (or ``node``) the script says so in one line and exits 0.

One influxd serves the run; each round starts its own mosquitto and gives each consumer a fresh
database. Per consumer: start it once (its persistent session subscribes at QoS 1, seen in the
broker's log), stop it, **preload** the same Elvaco CMi4110 "Standard" uplinks (TTS v3 JSON,
values varied per uplink) at QoS 1, start it again and time the drain from the first point of
measurement ``heat`` in InfluxDB to the last one (start-up does not count), polling
``count(energy_heat_kwh)`` every 50 ms. Consumers: (a) the Node-RED flow, (b) ``lorameter
ingest`` as one process, (c) ``lorameter ingest`` with ``LORAMETER_WORKERS`` = the core count,
when this lorameter has that setting. Rounds are interleaved (a, b, c, a, b, c, ...); medians
are printed with the ratio lorameter / Node-RED, CPU per uplink of the consumer (its process
tree from its start to the last point, less what it took to start and subscribe in the first
phase), influxd and mosquitto, and the points each stored: what Node-RED drops (it acks each
message on receipt, before the write) counts as lost, and a round ends when the count has not
moved for ``--stall`` seconds. Finally sampled uplinks are read back from the last round's
databases and compared field by field with the values their frames were built from. Every wait
is bounded (``--timeout``), so the script always ends; it exits 1 when a round failed or values
disagree.

    .venv/bin/python bench/nodered.py [--uplinks 20000] [--devices 500] [--rounds 3]
    .venv/bin/python bench/nodered.py --write-flow   # copy decode.js into flow.json
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine
from tests.helpers import tts_up
from tests.influxd import Influxd, start_influxd
from tests.services import Mosquitto, free_port, start_mosquitto

HERE = Path(__file__).resolve().parent / "nodered"
FLOW, DECODE_JS = HERE / "flow.json", HERE / "decode.js"
PACKAGE, LOCK = HERE / "package.json", HERE / "package-lock.json"
T0 = datetime(2025, 11, 20, tzinfo=UTC)
TICKS = os.sysconf("SC_CLK_TCK")
TTS_TOPIC = "v3/+/devices/+/up"
# mosquitto logs each subscription as "<time>: <client id> <qos> <topic>" (log_type subscribe)
SUBSCRIBED = re.compile(rf"^\d+: (\S+) \d (\S*{re.escape(TTS_TOPIC)})$", re.MULTILINE)
BROKER_LOG = "log_type subscribe\nlog_type error\nlog_type warning\n"
TARGET = 1.5  # issue 13: lorameter ≥ 1.5× the Node-RED batched flow
Value = float | str


# --- the uplinks -----------------------------------------------------------------------------


def _bcd(value: int, size: int) -> str:
    """``value`` as ``size`` BCD bytes, least significant byte first (EN 13757-3 type A)."""
    return bytes.fromhex(f"{value:0{2 * size}d}")[::-1].hex()


def _registers(n: int, device: int) -> tuple[int, int, int, int, int, int, int, int]:
    """Raw register values of uplink ``n``: energy kWh, volume 0.01 m³, power 100 W, flow l/h,
    flow and return temperature 0.1 °C, meter ID, error flags."""
    return (
        2_600_000 + 7 * n, 990_000 + 3 * n, (37 * n) % 100_000, (13 * n) % 999_999,
        400 + n % 500, 300 + n % 400, 66_000_000 + device, n % 3,
    )  # fmt: skip


def frame(n: int, device: int) -> bytes:
    """A CMi4110 Standard message (format 0x00; layout in decoders/devices/elvaco_cmi4110.py)."""
    e, v, p, f, t, r, meter, flags = _registers(n, device)
    error = flags.to_bytes(2, "little").hex()  # uint16, least significant byte first
    return bytes.fromhex(
        f"00 0C06{_bcd(e, 4)} 0C14{_bcd(v, 4)} 0B2D{_bcd(p, 3)} 0B3B{_bcd(f, 3)}"
        f" 0A5A{_bcd(t, 2)} 0A5E{_bcd(r, 2)} 0C78{_bcd(meter, 4)} 02FD17{error}"
    )


def expected(n: int, device: int) -> dict[str, Value]:
    """The fields uplink ``n`` must give, from the values its frame was built from."""
    e, v, p, f, t, r, meter, flags = _registers(n, device)
    return {
        "energy_heat_kwh": float(e), "volume_m3": v / 100, "power_w": float(p * 100),
        "flow_m3h": f / 1000, "flow_temp_c": t / 10, "return_temp_c": r / 10,
        "meter_serial": str(meter), "error_flags": float(flags),
    }  # fmt: skip


def stamp(n: int) -> datetime:
    return T0 + timedelta(seconds=n)


def messages(count: int, devices: int) -> list[tuple[str, bytes]]:
    out = []
    for n in range(count):
        device = f"cmi-{n % devices}"
        received = stamp(n).isoformat().replace("+00:00", "Z")
        eui = f"94193A01{n % devices:08X}"
        body = tts_up(device, frame(n, n % devices), f_port=2, brand="elvaco", model="cmi4110",
                      dev_eui=eui, f_cnt=n + 1, received_at=received)  # fmt: skip
        out.append((f"v3/bench@ttn/devices/{device}/up", body))
    return out


def publish(broker: Mosquitto, batch: list[tuple[str, bytes]], timeout: float) -> None:
    client = paho.Client(CallbackAPIVersion.VERSION2)
    client.max_inflight_messages_set(1000)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    deadline = time.monotonic() + timeout
    try:
        for info in [client.publish(topic, body, qos=1) for topic, body in batch]:
            info.wait_for_publish(max(deadline - time.monotonic(), 0.001))
            if not info.is_published():
                raise RuntimeError(f"the broker did not take the uplinks within {timeout} s")
    finally:
        client.disconnect()
        client.loop_stop()


# --- Node-RED: flow and installation --------------------------------------------------------


def _flow_nodes() -> list[dict[str, object]]:
    nodes: list[dict[str, object]] = json.loads(FLOW.read_text())
    return nodes


def _node(nodes: list[dict[str, object]], kind: str) -> dict[str, object]:
    return next(n for n in nodes if n["type"] == kind)


def write_flow() -> None:
    """Copy decode.js into the function node of flow.json (the file people import)."""
    nodes = _flow_nodes()
    _node(nodes, "function")["func"] = DECODE_JS.read_text()
    FLOW.write_text(json.dumps(nodes, indent=4, ensure_ascii=False) + "\n")


def flow_is_current() -> bool:
    """Whether flow.json's function node holds decode.js as it is."""
    return _node(_flow_nodes(), "function")["func"] == DECODE_JS.read_text()


def flow_for(broker_port: int, influx_port: int, database: str) -> str:
    """flow.json pointed at this run's broker and database."""
    nodes = _flow_nodes()
    _node(nodes, "mqtt-broker")["port"] = str(broker_port)
    config = _node(nodes, "influxdb")
    config["port"], config["database"] = str(influx_port), database
    return json.dumps(nodes)


def install_nodered(timeout: float) -> Path:
    """``npm ci`` of bench/nodered/package-lock.json into a cache dir (reused while the lockfile
    is unchanged); the directory holding node_modules."""
    digest = hashlib.sha256(PACKAGE.read_bytes() + LOCK.read_bytes()).hexdigest()[:12]
    cache = Path(tempfile.gettempdir()) / f"lorameter-bench-nodered-{digest}"
    if (cache / ".installed").exists():
        return cache
    stage = cache.with_name(f"{cache.name}.{os.getpid()}")
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir()
    shutil.copy(PACKAGE, stage)
    shutil.copy(LOCK, stage)
    print(f"installing Node-RED from the npm registry into {cache} (npm ci) ...", flush=True)
    done = subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=stage, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        shutil.rmtree(stage, ignore_errors=True)
        raise SystemExit(f"npm ci failed ({done.returncode}):\n{done.stderr[-2000:]}")
    (stage / ".installed").touch()
    try:
        stage.rename(cache)
    except OSError:  # another run installed it meanwhile
        shutil.rmtree(stage, ignore_errors=True)
    return cache


def installed_version(install: Path, package: str) -> str:
    meta = json.loads((install / "node_modules" / package / "package.json").read_text())
    return str(meta["version"])


SETTINGS_JS = """\
module.exports = {{
    uiHost: "127.0.0.1",
    uiPort: {port},
    flowFile: "flows.json",
    credentialSecret: false,
    httpAdminRoot: false,
    httpNodeRoot: false,
    diagnostics: {{ enabled: false, ui: false }},
    telemetry: {{ enabled: false }},
    externalModules: {{ autoInstall: false, palette: {{ allowInstall: false }},
                       modules: {{ allowInstall: false }} }},
    functionExternalModules: false,
    logging: {{ console: {{ level: "info", metrics: false, audit: false }} }},
}};
"""


# --- consumers ------------------------------------------------------------------------------


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process and its reaped children (/proc/<pid>/stat)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(v) for v in fields[11:15]) / TICKS


def tree_cpu_s(pid: int) -> float:
    """CPU seconds of a process and all its live descendants."""
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += cpu_s(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                todo.extend(int(child) for child in task.read_text().split())
    return total


@dataclass
class Consumer:
    """One consumer process (tree) started twice per round: to subscribe, then to drain."""

    name: str
    work: Path
    command: list[str]
    env: dict[str, str]
    many_subscribers: bool = False  # workers: wait until no new subscriber shows up
    process: subprocess.Popen[bytes] | None = None
    logs: list[Path] = field(default_factory=list)

    def start(self, tag: str) -> None:
        log = self.work / f"{self.name.split()[0].lower()}-{tag}.log"
        with log.open("wb") as handle:
            self.process = subprocess.Popen(
                self.command, stdout=handle, stderr=subprocess.STDOUT, cwd=self.work,
                env=self.env, start_new_session=True,
            )  # fmt: skip
        self.logs.append(log)

    def tail(self) -> str:
        return self.logs[-1].read_text(errors="replace")[-2000:] if self.logs else ""

    def cpu_s(self) -> float:
        return tree_cpu_s(self.process.pid) if self.process else 0.0

    def stop(self) -> None:
        """SIGTERM, up to 60 s to end, then SIGKILL to what is left of its process group."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(60)
        with contextlib.suppress(ProcessLookupError):  # a worker that outlived its parent
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.process = None


def nodered_consumer(work: Path, install: Path, flow: str) -> Consumer:
    user_dir = work / "nodered"
    user_dir.mkdir()
    (user_dir / "flows.json").write_text(flow)
    node = shutil.which("node") or "node"
    red = install / "node_modules" / "node-red" / "red.js"
    settings = user_dir / "settings.js"
    settings.write_text(SETTINGS_JS.format(port=free_port()))
    command = [node, str(red), "--userDir", str(user_dir), "--settings", str(settings)]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(user_dir)}
    return Consumer("Node-RED flow", work, command, env)


def lorameter_consumer(work: Path, broker: Mosquitto, store_url: str, workers: int) -> Consumer:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LORAMETER_")}
    env.update(
        LORAMETER_MQTT_URL=broker.url,
        LORAMETER_STORE_URL=store_url,
        LORAMETER_SPOOL_PATH=str(work / f"spool-{workers}.db"),
        LORAMETER_ROLLUP_INTERVAL_S="0",
    )
    name = "lorameter ingest, 1 process"
    if workers > 1:  # the workers' sessions derive from their worker ids 1..N
        env["LORAMETER_WORKERS"] = str(workers)
        name = f"lorameter ingest, LORAMETER_WORKERS={workers}"
    else:
        env["LORAMETER_MQTT_CLIENT_ID"] = "bench-lorameter"
    command = [sys.executable, "-m", "lorameter.cli", "ingest"]
    return Consumer(name, work, command, env, many_subscribers=workers > 1)


def workers_supported() -> str:
    """How this lorameter exposes LORAMETER_WORKERS ("" if it does not)."""
    from lorameter.settings import Settings

    if "workers" in Settings.model_fields:
        return "the setting LORAMETER_WORKERS"
    help_text = subprocess.run(
        [sys.executable, "-m", "lorameter.cli", "ingest", "--help"],
        capture_output=True, text=True, timeout=60, check=False,
    ).stdout  # fmt: skip
    return "`lorameter ingest --help`" if "LORAMETER_WORKERS" in help_text else ""


# --- one round ------------------------------------------------------------------------------


def heat_points(server: Influxd, db: str) -> int:
    result = server.query("SELECT count(energy_heat_kwh) FROM heat", db=db).json()["results"][0]
    return int(result["series"][0]["values"][0][1]) if "series" in result else 0


def subscribers(broker: Mosquitto, since: int) -> set[str]:
    text = Path(broker.log.name).read_text(errors="replace")[since:]
    return {match.group(1) for match in SUBSCRIBED.finditer(text)}


def wait_subscribed(consumer: Consumer, broker: Mosquitto, since: int, timeout: float) -> None:
    """Until the consumer's session holds the TTS subscription (for workers: until no new
    subscriber has shown up for 3 s)."""
    deadline = time.monotonic() + timeout
    seen: set[str] = set()
    settled = math.inf
    while time.monotonic() < deadline:
        if consumer.process is None or consumer.process.poll() is not None:
            raise RuntimeError(f"{consumer.name} ended before subscribing:\n{consumer.tail()}")
        now = subscribers(broker, since)
        if now and not consumer.many_subscribers:
            return
        if now != seen:
            seen, settled = now, time.monotonic() + 3
        if seen and time.monotonic() > settled:
            return
        time.sleep(0.05)
    if not seen:
        raise RuntimeError(f"{consumer.name} did not subscribe in {timeout} s:\n{consumer.tail()}")


@dataclass
class Round:
    rate: float  # uplinks/s from the first to the last point stored
    consumer_us: float  # CPU µs per uplink stored: consumer process tree, start-up taken off
    influxd_us: float  # CPU µs per uplink stored, from the consumer's start to the last point
    mosquitto_us: float
    stored: int
    db: str


def one_round(
    make: Callable[[Path, Mosquitto, str], Consumer],
    work: Path,
    server: Influxd,
    batch: list[tuple[str, bytes]],
    args: argparse.Namespace,
) -> Round:
    work.mkdir(parents=True)
    broker = start_mosquitto(work / "broker", extra=BROKER_LOG)
    db = server.new_database_url().rsplit("/", 1)[1]
    server.query(f'CREATE DATABASE "{db}"')
    consumer = make(work, broker, db)
    assert server.process is not None
    try:
        since = len(Path(broker.log.name).read_text(errors="replace"))
        consumer.start("subscribe")
        wait_subscribed(consumer, broker, since, args.timeout)
        start_up = consumer.cpu_s()  # to start and subscribe, with no message waiting
        consumer.stop()
        publish(broker, batch, args.timeout)

        services = cpu_s(server.process.pid), cpu_s(broker.process.pid)
        consumer.start("drain")
        deadline = time.monotonic() + args.timeout
        while (first := heat_points(server, db)) == 0:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"nothing reached InfluxDB in {args.timeout} s:\n{consumer.tail()}"
                )
            if consumer.process is not None and consumer.process.poll() is not None:
                raise RuntimeError(f"{consumer.name} ended:\n{consumer.tail()}")
            time.sleep(0.05)
        started = last_change = time.perf_counter()
        cpu = consumer.cpu_s(), cpu_s(server.process.pid), cpu_s(broker.process.pid)
        count = first
        while count < len(batch):
            if time.monotonic() > deadline or time.perf_counter() - last_change > args.stall:
                break  # what has not arrived by now is lost
            time.sleep(0.05)
            now = heat_points(server, db)
            if now != count:
                count, last_change = now, time.perf_counter()
                cpu = consumer.cpu_s(), cpu_s(server.process.pid), cpu_s(broker.process.pid)
        drained = count - first
        seconds = last_change - started
        # CPU over the whole drain, not from the first point: a consumer may decode far ahead
        # of its writes (Node-RED acks and decodes as messages arrive, writes trail)
        per = 1e6 / count
        return Round(
            rate=drained / seconds if seconds > 0 else math.nan,
            consumer_us=max(cpu[0] - start_up, 0.0) * per,
            influxd_us=(cpu[1] - services[0]) * per,
            mosquitto_us=(cpu[2] - services[1]) * per,
            stored=count,
            db=db,
        )
    finally:
        consumer.stop()
        broker.stop()


# --- values check ---------------------------------------------------------------------------


def stored_fields(server: Influxd, db: str, device: str, when: datetime) -> dict[str, object]:
    ns = int(when.timestamp()) * 1_000_000_000
    q = f"SELECT * FROM heat WHERE device = '{device}' AND time = {ns}"
    result = server.query(q, db=db).json()["results"][0]
    if "series" not in result:
        return {}
    series = result["series"][0]
    return dict(zip(series["columns"], series["values"][0], strict=True))


def disagreements(row: dict[str, object], want: dict[str, Value]) -> list[str]:
    out = []
    for name, value in want.items():
        got = row.get(name)
        if isinstance(value, str):
            same = got == value
        else:
            same = isinstance(got, int | float) and math.isclose(got, value, rel_tol=1e-12)
        if not same:
            out.append(f"{name}={got!r} (built {value!r})")
    return out


def check_values(
    server: Influxd, dbs: dict[str, str], count: int, devices: int, samples: int
) -> tuple[int, int, list[str]]:
    """Sampled uplinks read back from each consumer's database against their frames' values:
    (uplinks sampled, those every consumer stored with those values, the problems)."""
    agree, problems = 0, []
    picked = sorted({round(i * (count - 1) / max(samples - 1, 1)) for i in range(samples)})
    for n in picked:
        device = n % devices
        want = expected(n, device)
        ok = True
        for name, db in dbs.items():
            row = stored_fields(server, db, f"cmi-{device}", stamp(n))
            wrong = disagreements(row, want) if row else ["not stored"]
            if wrong:
                ok = False
                problems.append(f"uplink {n} in {name}: {', '.join(wrong)}")
        agree += ok
    return len(picked), agree, problems


# --- main -----------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uplinks", type=int, default=20_000)
    parser.add_argument("--devices", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=180.0, help="bound of each wait, s")
    parser.add_argument("--stall", type=float, default=15.0,
                        help="a round ends when no point arrived for this long, s")  # fmt: skip
    parser.add_argument("--install-timeout", type=float, default=900.0, help="bound of npm ci, s")
    parser.add_argument("--samples", type=int, default=20, help="uplinks whose values are checked")
    every = ["nodered", "lorameter", "workers"]
    parser.add_argument("--consumers", nargs="+", default=every, choices=every,
                        help="which consumers to measure (default: all)")  # fmt: skip
    parser.add_argument("--write-flow", action="store_true", help="copy decode.js into flow.json")
    args = parser.parse_args()
    if args.write_flow:
        write_flow()
        print(f"wrote {FLOW}")
        return 0
    if shutil.which("npm") is None or shutil.which("node") is None:
        print("npm/node not found: the Node-RED comparison needs them; nothing measured")
        return 0
    if not flow_is_current():
        print("bench/nodered/flow.json is older than decode.js: run with --write-flow")
        return 2

    install = install_nodered(args.install_timeout)
    work = Path(tempfile.mkdtemp(prefix="bench-nodered-"))
    try:
        server = start_influxd(work / "influxd")
    except RuntimeError as exc:
        print(exc)
        return 1
    batch = messages(args.uplinks, args.devices)
    cores = os.cpu_count() or 1
    how = workers_supported()

    def nodered(w: Path, broker: Mosquitto, db: str) -> Consumer:
        return nodered_consumer(w, install, flow_for(broker.port, server.http_port, db))

    def single(w: Path, broker: Mosquitto, db: str) -> Consumer:
        return lorameter_consumer(w, broker, f"influxdb://127.0.0.1:{server.http_port}/{db}", 1)

    def many(w: Path, broker: Mosquitto, db: str) -> Consumer:
        url = f"influxdb://127.0.0.1:{server.http_port}/{db}"
        return lorameter_consumer(w, broker, url, cores)

    kinds: dict[str, Callable[[Path, Mosquitto, str], Consumer]] = {}
    if "nodered" in args.consumers:
        kinds["Node-RED flow"] = nodered
    if "lorameter" in args.consumers:
        kinds["lorameter, 1 process"] = single
    if how and cores > 1 and "workers" in args.consumers:
        kinds[f"lorameter, {cores} workers"] = many

    node = subprocess.run(["node", "--version"], capture_output=True, text=True, timeout=60)
    node_version = node.stdout.strip()
    print(f"machine: {machine()}; load average at start {os.getloadavg()[0]:.1f}")
    print(
        f"Node-RED {installed_version(install, 'node-red')} + node-red-contrib-influxdb"
        f" {installed_version(install, 'node-red-contrib-influxdb')} (npm ci, cached in {install}),"
        f" node {node_version}"
    )
    if how:
        print(f"lorameter on every core: LORAMETER_WORKERS={cores} (found {how})")
    else:
        print("lorameter on every core: not available (no LORAMETER_WORKERS in this lorameter)")
    print(
        f"{args.uplinks} Elvaco CMi4110 Standard uplinks (TTS v3 JSON) of {args.devices} devices"
        " preloaded at QoS 1 into each consumer's persistent session; drain timed from the first"
        f" to the last heat point in InfluxDB; {args.rounds} interleaved rounds, medians"
    )
    if args.uplinks < 10_000 and "Node-RED flow" in kinds:
        print("  (Node-RED writes 1000 points at a time and starts slowly: below 10,000 uplinks its"
              " rate rests on a few warm-up batches)")  # fmt: skip
    results: dict[str, list[Round]] = {k: [] for k in kinds}
    failures = 0
    try:
        for r in range(args.rounds):
            for name, make in kinds.items():
                slug = re.sub(r"\W+", "-", name).strip("-").lower()
                try:
                    result = one_round(make, work / f"r{r}-{slug}", server, batch, args)
                except (RuntimeError, OSError, httpx.HTTPError, subprocess.SubprocessError) as exc:
                    failures += 1
                    print(f"  round {r + 1}, {name}: FAILED: {exc}", flush=True)
                    continue
                results[name].append(result)
                print(
                    f"  round {r + 1}, {name}: {result.rate:,.0f} uplinks/s, stored"
                    f" {result.stored:,}/{len(batch):,}",
                    flush=True,
                )
        dbs = {name: rows[-1].db for name, rows in results.items() if rows}
        sampled, agree, problems = check_values(server, dbs, len(batch), args.devices, args.samples)
    finally:
        server.stop()

    def median(name: str, key: str) -> float:
        values = [getattr(r, key) for r in results[name]]
        return statistics.median(values) if values else math.nan

    anchor = median("Node-RED flow", "rate")
    print(
        f"\n{'consumer':<26} | {'uplinks/s':>9} | vs Node-RED | CPU µs/uplink: consumer,"
        " influxd, broker | lost per round"
    )
    for name, rows in results.items():
        rate = median(name, "rate")
        cpu = [median(name, key) for key in ("consumer_us", "influxd_us", "mosquitto_us")]
        lost = ", ".join(f"{len(batch) - r.stored:,}" for r in rows) or "-"
        print(
            f"{name:<26} | {rate:>9,.0f} | {rate / anchor:10.2f}× | {cpu[0]:>8,.0f},"
            f" {cpu[1]:>6,.0f}, {cpu[2]:>5,.0f} | {lost}"
        )
    print(
        "(Node-RED writes one heat point per uplink; lorameter also writes the radio point and"
        " the raw uplink, and acks each message only after its durable write)"
    )
    lorameters = [median(k, "rate") for k in results if k != "Node-RED flow"]
    best = max((v for v in lorameters if not math.isnan(v)), default=math.nan)
    verdict = "met" if best / anchor >= TARGET else "NOT met"
    print(f"target lorameter ≥ {TARGET}× Node-RED: best {best / anchor:.2f}× → {verdict}")
    print(
        f"values agree on {agree} of {sampled} sampled uplinks: {' = '.join(dbs)} = the values"
        " the frames were built from, field by field (8 fields, read back from InfluxDB)"
    )
    for problem in problems[:10]:
        print(f"  {problem}")
    print(
        f"cores: {cores} (consumers, influxd, mosquitto and the publisher share them); load"
        f" average at the end {os.getloadavg()[0]:.1f} (other work on the machine skews all)"
    )
    if failures or problems:
        print(f"logs and data kept in {work}")
        return 1
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
