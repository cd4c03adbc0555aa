"""The benchmarks. Each measures the hub and its baseline back to back, in the same run.

Processes: the mock portal (``bench.mock_target``), the hub as a user starts it (``hub worker``,
``hub ingress``), the hub's publish path without HTTP (``bench.hub_producer``), the raw
baselines (``bench.raw``) and a load generator (``wrk``, else ``bench.loadgen``). This process
only orchestrates and reads the clocks the others report.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import orjson

from bench.figures import Figure, Report, percentile
from bench.profiling import profiled
from bench.seed import seed_hub_backlog
from bench.services import (
    BROKER_URL,
    PYTHON,
    SYSTEM_KEY,
    BenchError,
    ChildProcess,
    Database,
    declare_raw_queues,
    delete_broker_objects,
    free_port,
    hub_command,
    hub_env,
    queue_consumers,
    remember_broker_objects,
    remember_hub_namespace,
    wait_http,
    write_routes,
)
from bench.workload import BODY_BYTES, MESSAGE_TYPE, SOURCE, dossier_code, dossier_payload, ingress_body
from hub.bootstrap import build_hub
from hub.envelope import new_message_id
from hub.settings import HubSettings
from hub.store import MessageStore

__all__ = ["SCENARIOS", "Bench", "BenchConfig"]

MB = 1024 * 1024


class CpuMeter:
    """CPU time used by the consuming process and the mock portal since it was created; with the
    producer's (read as it finished), reported per message: where the machine's time went."""

    def __init__(self, worker: ChildProcess | None, mock: ChildProcess | None) -> None:
        self._processes = {"consumer": worker, "mock": mock}
        self._start = {name: p.cpu_seconds() if p else 0.0 for name, p in self._processes.items()}

    def per_message(self, count: int, *, producer: float) -> str:
        used = {name: (p.cpu_seconds() if p else 0.0) - self._start[name] for name, p in self._processes.items()}
        used["producer"] = producer
        return ", ".join(f"{name} {1000 * seconds / max(count, 1):.2f}" for name, seconds in used.items())


@dataclass
class BenchConfig:
    quick: bool = False
    repeat: int = 3
    store: str = "sqlite"
    prefetch: int = 64
    window: int = 256
    producer_concurrency: int = 32
    messages: int = 5000
    warmup: int = 300
    ingress_seconds: float = 10.0
    ingress_connections: int = 32
    latency_rate: float = 50.0
    latency_seconds: float = 15.0
    scale_targets: tuple[int, ...] = (1, 4, 16)
    scale_deliveries: int = 2400
    retry_messages: int = 3000
    retry_percent: int = 10
    backlog: int = 200_000
    store_messages: int = 20_000
    stall_seconds: float = 60.0

    @classmethod
    def quick_defaults(cls) -> BenchConfig:
        """Small sizes and one repetition: a smoke run of every benchmark in under a minute."""
        return cls(
            quick=True,
            repeat=1,
            messages=300,
            warmup=50,
            ingress_seconds=2.0,
            latency_rate=40.0,
            latency_seconds=2.5,
            scale_targets=(1, 4),
            scale_deliveries=200,
            retry_messages=200,
            backlog=500,
            store_messages=300,
        )


def say(message: str) -> None:
    print(f"# {message}", file=sys.stderr, flush=True)


class Bench:
    """Shared state of one run: the mock portal, ids, the run folder and the report."""

    def cpu_meter(self, *, worker: ChildProcess | None) -> CpuMeter:
        """Starts counting the CPU time of a consuming process and of the mock portal."""
        return CpuMeter(worker, self.mock)

    def __init__(self, config: BenchConfig, run_dir: Path, run_id: str, report: Report) -> None:
        self.config = config
        self.run_dir = run_dir
        self.run_id = run_id
        self.report = report
        self.mock: ChildProcess | None = None
        self.mock_url = ""
        self._control: httpx.AsyncClient | None = None
        self._next = 0
        self._main_hub: HubDeployment | None = None
        self._main_raw: RawQueues | None = None
        self._stack = contextlib.AsyncExitStack()
        self._shared = contextlib.AsyncExitStack()
        self.profile_dir: Path | None = None

    def take(self, count: int) -> int:
        """Reserve ``count`` dossier numbers; return the first (dossier codes never repeat in a run)."""
        first, self._next = self._next, self._next + count
        return first

    async def __aenter__(self) -> Bench:
        port = free_port()
        self.mock = await ChildProcess.start(
            "mock-portal",
            [PYTHON, "-m", "bench.mock_target", "--port", str(port), "--portals", str(max(self.config.scale_targets))],
            log_dir=self.run_dir,
        )
        self.mock_url = f"http://127.0.0.1:{port}"
        self._control = httpx.AsyncClient(base_url=self.mock_url, timeout=30)
        await wait_http(f"{self.mock_url}/_bench/stats", child=self.mock)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.reset_shared()
        await self._stack.aclose()
        if self._control is not None:
            await self._control.aclose()
        if self.mock is not None:
            await self.mock.stop()

    # ------------------------------------------------------------------ mock portal

    @property
    def control(self) -> httpx.AsyncClient:
        if self._control is None:
            raise BenchError("The mock portal is not running.")
        return self._control

    async def reset_mock(self, *, fail_first_percent: int = 0, record_arrivals: bool = False) -> None:
        reply = await self.control.post(
            "/_bench/reset", json={"fail_first_percent": fail_first_percent, "record_arrivals": record_arrivals}
        )
        reply.raise_for_status()

    async def mock_stats(self) -> dict[str, Any]:
        reply = await self.control.get("/_bench/stats")
        reply.raise_for_status()
        return dict(reply.json())

    async def arrivals(self) -> dict[str, float]:
        reply = await self.control.get("/_bench/arrivals")
        reply.raise_for_status()
        return dict(reply.json())

    async def wait_accepted(self, count: int, what: str) -> dict[str, Any]:
        """Wait until the mock portal has accepted ``count`` (portal, dossier) calls."""
        last_change, last_seen = time.monotonic(), -1
        while True:
            stats = await self.mock_stats()
            if stats["accepted"] >= count:
                return stats
            if stats["accepted"] != last_seen:
                last_change, last_seen = time.monotonic(), stats["accepted"]
            elif time.monotonic() - last_change > self.config.stall_seconds:
                raise BenchError(
                    f"{what}: the mock portal accepted {stats['accepted']} of {count} calls and nothing moved "
                    f"for {self.config.stall_seconds:g} s (mock stats: {stats}); see the logs in {self.run_dir}."
                )
            await asyncio.sleep(0.05)

    # ------------------------------------------------------------------ shared deployments

    async def main_hub(self, *, ingress: bool = False) -> HubDeployment:
        """The one-target hub shared by the broker-path, retry, latency, ingress and 1-target scale runs.

        Its worker starts at once; its ingress process only when a benchmark needs it.
        """
        if self._main_hub is None:
            self._main_hub = await self._shared.enter_async_context(
                hub_deployment(self, "m", targets=1, worker=True, ingress=False)
            )
            await self._main_hub.warm_up(self.config.warmup)
        if ingress:
            await self._main_hub.start_ingress()
        return self._main_hub

    async def reset_shared(self) -> None:
        """Stop the shared hub and remove the shared queues (they are recreated when next needed)."""
        try:
            await self._shared.aclose()
        finally:
            self._shared = contextlib.AsyncExitStack()
            self._main_hub = self._main_raw = None

    async def main_raw(self) -> RawQueues:
        if self._main_raw is None:
            self._main_raw = await self._shared.enter_async_context(raw_queues(self, "r", 1))
        return self._main_raw


# ---------------------------------------------------------------------- the hub, deployed


@dataclass
class HubDeployment:
    bench: Bench
    name: str
    namespace: str
    env: dict[str, str]
    targets: list[str]
    database: Database
    worker: ChildProcess | None = None
    ingress: ChildProcess | None = None
    url: str = ""
    _runs: int = 0

    async def start_worker(self) -> ChildProcess:
        argv = hub_command("worker", *(arg for t in self.targets for arg in ("--target", t)))
        self._runs += 1
        self.worker = await ChildProcess.start(
            f"hub-worker-{self.name}-{self._runs}", argv, log_dir=self.bench.run_dir, env=self.env
        )
        deadline = time.monotonic() + 60
        for target in self.targets:
            while await queue_consumers(f"{self.namespace}.target.{target}") < 1:
                if not self.worker.alive() or time.monotonic() > deadline:
                    raise BenchError(f"The hub worker did not start consuming; see {self.worker.log_path}.")
                await asyncio.sleep(0.05)
        return self.worker

    async def start_ingress(self) -> None:
        if self.ingress is not None:
            return
        port = free_port()
        env = {**self.env, "HUB_HTTP_PORT": str(port), "HUB_HTTP_HOST": "127.0.0.1"}
        self.ingress = await ChildProcess.start(
            f"hub-ingress-{self.name}", hub_command("ingress"), log_dir=self.bench.run_dir, env=env
        )
        self.url = f"http://127.0.0.1:{port}"
        await wait_http(f"{self.url}/readyz", child=self.ingress)

    async def stop_worker(self) -> None:
        if self.worker is not None:
            await self.worker.stop()
            self.worker = None

    async def produce(self, first: int, count: int) -> dict[str, Any]:
        """Feed ``count`` messages through the hub's publish path (store + confirm + mark_published)."""
        child = await ChildProcess.start(
            f"hub-producer-{self.name}",
            [
                PYTHON, "-m", "bench.hub_producer", "--run", self.bench.run_id, "--first", str(first),
                "--count", str(count), "--concurrency", str(self.bench.config.producer_concurrency),
            ],
            log_dir=self.bench.run_dir,
            env=self.env,
        )  # fmt: skip
        try:
            done = await child.event("done", timeout=max(120.0, count / 20))
            return {**done, "cpu_seconds": child.cpu_seconds()}
        finally:
            await child.stop()

    async def run(self, count: int, *, fail_first_percent: int = 0, profile: str = "") -> float:
        """Deliveries per second from the first publish to the mock portal accepting the last call."""
        first = self.bench.take(count)
        await self.bench.reset_mock(fail_first_percent=fail_first_percent)
        deliveries = count * len(self.targets)
        cpu = self.bench.cpu_meter(worker=self.worker)
        async with profiled(self.worker, self.bench.profile_dir if profile else None, profile):
            done = await self.produce(first, count)
            stats = await self.bench.wait_accepted(deliveries, f"hub {self.name}")
        published, delivered = done["finished_at"] - done["started_at"], stats["last_at"] - done["started_at"]
        say(
            f"  hub: {count} messages published in {published:.1f} s, all delivered after {delivered:.1f} s; "
            f"CPU ms/msg: {cpu.per_message(deliveries, producer=done['cpu_seconds'])}"
        )
        return float(deliveries / delivered)

    async def warm_up(self, count: int) -> None:
        """Token fetch, connection pools, database caches: done before anything is measured."""
        if count and self.worker is not None:
            await self.run(count)


@contextlib.asynccontextmanager
async def hub_deployment(
    bench: Bench, name: str, *, targets: int, worker: bool, ingress: bool
) -> AsyncIterator[HubDeployment]:
    namespace = f"b{bench.run_id}{name}"
    database = Database.create(bench.config.store, bench.run_dir, f"{bench.run_id}_{name}")
    routes_dir = bench.run_dir / f"routes-{name}"
    target_ids = write_routes(routes_dir, bench.mock_url, targets)
    remember_hub_namespace(namespace, target_ids, [1000, 5000])
    env = hub_env(namespace=namespace, database=database, routes_dir=routes_dir)
    env["HUB_PREFETCH"] = str(bench.config.prefetch)
    deployment = HubDeployment(bench, name, namespace, env, target_ids, database)
    try:
        await _prepare_hub(env)
        if worker:
            await deployment.start_worker()
        if ingress:
            await deployment.start_ingress()
        yield deployment
    finally:
        await deployment.stop_worker()
        if deployment.ingress is not None:
            await deployment.ingress.stop()
        await delete_broker_objects(namespace)
        database.drop()


async def _prepare_hub(env: dict[str, str]) -> None:
    """Migrate the store and declare the queues once, before the hub's processes start."""
    settings = HubSettings(
        database_url=env["HUB_DATABASE_URL"],
        broker_url=env["HUB_BROKER_URL"],
        broker_namespace=env["HUB_BROKER_NAMESPACE"],
        routes_dir=Path(env["HUB_ROUTES_DIR"]),
    )
    hub = build_hub(settings)
    try:
        await hub.start()
    finally:
        await hub.aclose()


# ---------------------------------------------------------------------- the raw baselines


@dataclass
class RawQueues:
    bench: Bench
    exchange: str
    queues: list[str]

    def portals(self) -> list[str]:
        return [f"{self.bench.mock_url}/p{i}" for i in range(1, len(self.queues) + 1)]

    async def start_consumer(self, expect: int, *, http: bool) -> ChildProcess:
        argv = [
            PYTHON, "-m", "bench.raw", "--broker", BROKER_URL, "consume", "--queues", ",".join(self.queues),
            "--expect", str(expect), "--prefetch", str(self.bench.config.prefetch), "--run", self.bench.run_id,
        ]  # fmt: skip
        if http:
            argv += ["--http", ",".join(self.portals())]
        child = await ChildProcess.start("raw-consumer", argv, log_dir=self.bench.run_dir)
        await child.event("ready", timeout=60)
        return child

    async def produce(self, first: int, count: int, *, rate: float = 0.0, confirms_out: Path | None = None) -> Any:
        argv = [
            PYTHON, "-m", "bench.raw", "--broker", BROKER_URL, "produce", "--exchange", self.exchange,
            "--run", self.bench.run_id, "--first", str(first), "--count", str(count),
            "--window", str(self.bench.config.window),
        ]  # fmt: skip
        if rate:
            argv += ["--rate", str(rate), "--confirms-out", str(confirms_out)]
        child = await ChildProcess.start("raw-producer", argv, log_dir=self.bench.run_dir)
        try:
            done = await child.event("done", timeout=max(120.0, count / 50))
            return {**done, "cpu_seconds": child.cpu_seconds()}
        finally:
            await child.stop()

    async def run(self, count: int, *, http: bool) -> float:
        """Messages (× queues) per second from the first publish to the consumer's last ack."""
        first = self.bench.take(count)
        deliveries = count * len(self.queues)
        consumer = await self.start_consumer(deliveries, http=http)
        try:
            await self.bench.reset_mock()
            cpu = self.bench.cpu_meter(worker=consumer)
            produced = await self.produce(first, count)
            done = await consumer.event("done", timeout=max(120.0, deliveries / 20))
            say(
                f"  raw ({'with' if http else 'without'} HTTP call): CPU ms/msg: "
                f"{cpu.per_message(deliveries, producer=produced['cpu_seconds'])}"
            )
        finally:
            await consumer.stop()
        if http:
            stats = await self.bench.mock_stats()
            if stats["accepted"] < deliveries:
                raise BenchError(f"The raw consumer acked {deliveries} messages but the mock accepted {stats}.")
        return deliveries / (float(done["last_at"]) - float(produced["started_at"]))

    async def purge(self) -> None:
        await _purge(self.queues)


async def _purge(queues: Sequence[str]) -> None:
    connection = await aio_pika.connect(BROKER_URL, timeout=15)
    async with connection:
        channel = await connection.channel()
        for name in queues:
            with contextlib.suppress(aio_pika.exceptions.ChannelClosed):
                await (await channel.get_queue(name, ensure=False)).purge()


@contextlib.asynccontextmanager
async def raw_queues(bench: Bench, name: str, count: int) -> AsyncIterator[RawQueues]:
    prefix = f"b{bench.run_id}{name}"
    exchange = f"{prefix}.fanout"
    queues = [f"{prefix}.q{i}" for i in range(1, count + 1)]
    remember_broker_objects(prefix, queues=queues, exchanges=[exchange])
    try:
        await declare_raw_queues(exchange, queues)
        yield RawQueues(bench, exchange, queues)
    finally:
        await delete_broker_objects(prefix)


# ---------------------------------------------------------------------- 1. broker path


async def broker_path(bench: Bench) -> None:
    config = bench.config
    hub = await bench.main_hub()
    raw = await bench.main_raw()
    path = Figure("broker_path", "msg/s", "raw aio-pika consumer + same HTTP call")
    ceiling = Figure("broker_ceiling", "msg/s", "bare broker (publish + consume, no HTTP call)")
    for attempt in range(config.repeat):
        say(f"broker path {attempt + 1}/{config.repeat}: {config.messages} persistent {BODY_BYTES}-byte messages")
        hub_rate = await hub.run(config.messages, profile=f"worker-broker-{attempt + 1}")
        raw_rate = await raw.run(config.messages, http=True)
        bare_rate = await raw.run(config.messages, http=False)
        path.add(hub_rate, raw_rate)
        ceiling.add(hub_rate, bare_rate)
        say(f"  hub {hub_rate:.0f} msg/s, raw {raw_rate:.0f} msg/s, bare broker {bare_rate:.0f} msg/s")
    path.note = f"{config.messages} msgs, prefetch {config.prefetch}, store {config.store}; target ratio ≥ 0.60"
    ceiling.note = "ratio = hub / bare broker"
    bench.report.publish(path)
    bench.report.publish(ceiling)


# ---------------------------------------------------------------------- 2. HTTP ingress

_WRK_SCRIPT = """
local counter = 0
local tag = "x"
local head = [==[{head}]==]
local tail = [==[{tail}]==]
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {key}"
function init(args) tag = args[1] end
function request()
  counter = counter + 1
  return wrk.format(nil, nil, nil, head .. tag .. "." .. counter .. tail)
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{{"event":"done","requests":%d,"duration_us":%d,"status_errors":%d,"socket_errors":%d}}\\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout))
end
"""


async def _load(bench: Bench, url: str, seconds: float, tag: str) -> float:
    """Accepted (2xx) requests per second from ``wrk`` (or the Python load generator) at fixed concurrency."""
    config = bench.config
    if shutil.which("wrk"):
        script = bench.run_dir / "post.lua"
        if not script.exists():
            marker = "MARKER"
            template = ingress_body(dossier_code(marker, 0)).decode()
            head, tail = template.split(f"B{marker}.0", 1)
            script.write_text(
                _WRK_SCRIPT.format(head=head + "B" + bench.run_id, tail=tail, key=SYSTEM_KEY), encoding="utf-8"
            )
        argv = [
            "wrk", "-t1", f"-c{config.ingress_connections}", f"-d{seconds:g}s", "--timeout", "30s",
            "-s", str(script), f"{url}/v1/messages", "--", tag,
        ]  # fmt: skip
        child = await ChildProcess.start("wrk", argv, log_dir=bench.run_dir)
        done = await child.event("done", timeout=seconds + 60)
        await child.stop()
        ok = int(done["requests"]) - int(done["status_errors"]) - int(done["socket_errors"])
        if ok < int(done["requests"]) * 0.99:
            raise BenchError(f"{url}: {done['requests'] - ok} of {done['requests']} requests failed under load.")
        return ok / (int(done["duration_us"]) / 1e6)
    argv = [
        PYTHON, "-m", "bench.loadgen", "--url", f"{url}/v1/messages", "--key", SYSTEM_KEY,
        "--run", f"{bench.run_id}{tag}", "--duration", str(seconds), "--concurrency", str(config.ingress_connections),
    ]  # fmt: skip
    child = await ChildProcess.start("loadgen", argv, log_dir=bench.run_dir)
    done = await child.event("done", timeout=seconds + 60)
    await child.stop()
    return float(done["accepted"]) / (float(done["finished_at"]) - float(done["started_at"]))


def _cpu_since(before: tuple[float, float], after: tuple[float, float]) -> tuple[float, float]:
    return after[0] - before[0], after[1] - before[1]


def _per_request(cpu: tuple[float, float], rate: float, seconds: float) -> str:
    """``0.64 ms CPU/req (0.12 in the kernel), 0.93 cores``: CPU time per request, the kernel's part of
    it (socket calls), and how busy the process was."""
    requests = max(rate * seconds, 1)
    return (
        f"{1000 * sum(cpu) / requests:.2f} ms CPU/req ({1000 * cpu[1] / requests:.2f} in the kernel), "
        f"{sum(cpu) / seconds:.2f} cores"
    )


async def ingress(bench: Bench) -> None:
    config = bench.config
    hub = await bench.main_hub(ingress=True)
    raw = await bench.main_raw()
    generator = "wrk" if shutil.which("wrk") else "bench.loadgen (install wrk for a lighter generator)"
    port = free_port()
    bare = await ChildProcess.start(
        "bare-ingress",
        [PYTHON, "-m", "bench.raw", "--broker", BROKER_URL, "ingress", "--exchange", raw.exchange, "--port", str(port)],
        log_dir=bench.run_dir,
    )
    bare_url = f"http://127.0.0.1:{port}"
    figure = Figure("ingress_accept", "req/s", "bare FastAPI endpoint publishing with confirm")
    await hub.stop_worker()  # the ingress alone is measured; messages wait in the queue meanwhile
    try:
        await wait_http(f"{bare_url}/healthz", child=bare)
        warm = min(2.0, config.ingress_seconds / 2)
        await _load(bench, hub.url, warm, "wh")
        await _load(bench, bare_url, warm, "wb")
        for attempt in range(config.repeat):
            say(f"ingress {attempt + 1}/{config.repeat}: {config.ingress_connections} connections, {generator}")
            assert hub.ingress is not None
            hub_before = hub.ingress.cpu_split()
            async with profiled(hub.ingress, bench.profile_dir, f"ingress-{attempt + 1}"):
                hub_rate = await _load(bench, hub.url, config.ingress_seconds, f"h{attempt}")
            hub_cpu = _cpu_since(hub_before, hub.ingress.cpu_split())
            bare_before = bare.cpu_split()
            bare_rate = await _load(bench, bare_url, config.ingress_seconds, f"b{attempt}")
            bare_cpu = _cpu_since(bare_before, bare.cpu_split())
            figure.add(hub_rate, bare_rate)
            # CPU per request (of it in the kernel), and how busy the server process was (1.0 = one core).
            say(
                f"  hub {hub_rate:.0f} req/s, {_per_request(hub_cpu, hub_rate, config.ingress_seconds)}; "
                f"bare endpoint {bare_rate:.0f} req/s, {_per_request(bare_cpu, bare_rate, config.ingress_seconds)}"
            )
            await _purge([f"{hub.namespace}.target.{hub.targets[0]}", *raw.queues])
    finally:
        await bare.stop()
        await _purge([f"{hub.namespace}.target.{hub.targets[0]}", *raw.queues])
        await hub.start_worker()
    figure.note = (
        f"{config.ingress_connections} connections, {config.ingress_seconds:g} s, {generator}, "
        f"store {config.store}; target ratio ≥ 0.50"
    )
    bench.report.publish(figure)


# ---------------------------------------------------------------------- 3. latency


def _quantiles(values: Sequence[float]) -> str:
    return "/".join(f"{percentile(values, q):.1f}" for q in (50, 95, 99))


def _latencies(sent: dict[str, float], arrived: dict[str, float], skip: int) -> list[float]:
    """Milliseconds from ``sent`` (202, confirm, request or publish) to the mock portal receiving the call.

    The first ``skip`` messages (warm-up) are left out. A negative value means the target had the
    message before the sender got its 202.
    """
    codes = sorted(sent, key=lambda code: int(code.split(".")[-1].split("-")[0]))[skip:]
    return [(arrived[code] - sent[code]) * 1000 for code in codes if code in arrived]


async def latency(bench: Bench) -> None:
    config = bench.config
    hub = await bench.main_hub(ingress=True)
    raw = await bench.main_raw()
    total = int(config.latency_rate * config.latency_seconds)
    skip = int(config.latency_rate)  # the first second of each run is warm-up
    baseline = "raw publish → consume → same HTTP call"
    from_done = {q: Figure(f"latency_p{q}", "ms", baseline + ", from the confirm") for q in (50, 95, 99)}
    from_sent = {q: Figure(f"latency_sent_p{q}", "ms", baseline + ", from the publish") for q in (50, 95, 99)}
    out = bench.run_dir / "latency.json"
    for attempt in range(config.repeat):
        say(f"latency {attempt + 1}/{config.repeat}: {config.latency_rate:g} msg/s for {config.latency_seconds:g} s")
        first = bench.take(total)
        await bench.reset_mock(record_arrivals=True)
        argv = [
            PYTHON, "-m", "bench.loadgen", "--url", f"{hub.url}/v1/messages", "--key", SYSTEM_KEY,
            "--run", bench.run_id, "--first", str(first), "--duration", str(config.latency_seconds),
            "--rate", str(config.latency_rate), "--out", str(out),
        ]  # fmt: skip
        generator = await ChildProcess.start("loadgen", argv, log_dir=bench.run_dir)
        done = await generator.event("done", timeout=config.latency_seconds + 120)
        await generator.stop()
        if done["errors"] > done["sent"] * 0.01:
            raise BenchError(
                f"The hub ingress refused {done['errors']} of {done['sent']} requests at the offered load."
            )
        await bench.wait_accepted(int(done["accepted"]), "latency (hub)")
        arrivals = await bench.arrivals()
        times = orjson.loads(out.read_bytes())
        hub_done = _latencies(times["done"], arrivals, skip)
        hub_sent = _latencies({c: t for c, t in times["sent"].items() if c in times["done"]}, arrivals, skip)

        first = bench.take(total)
        consumer = await raw.start_consumer(total, http=True)
        try:
            await bench.reset_mock(record_arrivals=True)
            await raw.produce(first, total, rate=config.latency_rate, confirms_out=out)
            await consumer.event("done", timeout=config.latency_seconds + 120)
        finally:
            await consumer.stop()
        arrivals = await bench.arrivals()
        times = orjson.loads(out.read_bytes())
        raw_done = _latencies(times["done"], arrivals, skip)
        raw_sent = _latencies(times["sent"], arrivals, skip)
        for q in (50, 95, 99):
            from_done[q].add(percentile(hub_done, q), percentile(raw_done, q))
            from_sent[q].add(percentile(hub_sent, q), percentile(raw_sent, q))
        say(
            f"  from the 202 / confirm: hub p50/p95/p99 {_quantiles(hub_done)} ms, raw {_quantiles(raw_done)} ms; "
            f"from the request / publish: hub {_quantiles(hub_sent)} ms, raw {_quantiles(raw_sent)} ms "
            f"({len(hub_done)}/{len(raw_done)} samples)"
        )
    for figure in (*from_done.values(), *from_sent.values()):
        figure.note = f"{config.latency_rate:g} msg/s offered, {config.latency_seconds:g} s, first second skipped"
        bench.report.publish(figure)


# ---------------------------------------------------------------------- 4. scale


async def scale_targets(bench: Bench) -> None:
    config = bench.config
    for targets in config.scale_targets:
        count = max(50, config.scale_deliveries // targets)
        figure = Figure(f"scale_targets_{targets}", "deliveries/s", f"raw fan-out to {targets} queues + same calls")
        async with contextlib.AsyncExitStack() as stack:
            if targets == 1:
                hub = await bench.main_hub()
                raw = await bench.main_raw()
            else:
                hub = await stack.enter_async_context(
                    hub_deployment(bench, f"s{targets}", targets=targets, worker=True, ingress=False)
                )
                await hub.warm_up(max(10, config.warmup // targets))
                raw = await stack.enter_async_context(raw_queues(bench, f"s{targets}r", targets))
            for attempt in range(config.repeat):
                say(f"scale {targets} target(s) {attempt + 1}/{config.repeat}: {count} messages × {targets}")
                hub_rate = await hub.run(count)
                raw_rate = await raw.run(count, http=True)
                figure.add(hub_rate, raw_rate)
                say(f"  hub {hub_rate:.0f} deliveries/s, raw {raw_rate:.0f} deliveries/s")
        figure.note = f"{count} messages per run, each to {targets} target(s)"
        bench.report.publish(figure)


# ---------------------------------------------------------------------- 4. backlog drain


async def _sample_rss(child: ChildProcess, samples: list[int], stop: asyncio.Event) -> None:
    while not stop.is_set() and child.alive():
        if rss := child.rss_bytes():
            samples.append(rss)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.25)


async def backlog(bench: Bench) -> None:
    config = bench.config
    size = config.backlog
    drain = Figure("backlog_drain", "msg/s", "raw consumer + same HTTP call")
    rss = {p: Figure(f"backlog_rss_{p}", "MB", "raw consumer RSS") for p in ("start", "peak", "end")}
    async with hub_deployment(bench, "bl", targets=1, worker=False, ingress=False) as hub:
        say(f"backlog: writing {size} accepted messages into the hub's store and queue (no worker running)")
        started = time.monotonic()
        await seed_hub_backlog(
            database_url=hub.database.url, namespace=hub.namespace, target=hub.targets[0], route="dossier-sync",
            run_id=bench.run_id, first=bench.take(size), count=size, window=config.window,
        )  # fmt: skip
        say(f"  queued in {time.monotonic() - started:.0f} s; starting the worker")
        await bench.reset_mock()
        hub_rss = await _drain(bench, hub.start_worker, size)
        stats = await bench.mock_stats()
        hub_drain = (size - 1) / (stats["last_at"] - stats["first_at"])
        db_size = hub.database.size_bytes()
        say(f"  drained at {hub_drain:.0f} msg/s; worker RSS {_rss_text(hub_rss)}; store {db_size / MB:.0f} MB")
        await hub.stop_worker()
    async with raw_queues(bench, "blr", 1) as raw:
        say(f"backlog: queueing {size} raw messages")
        await raw.produce(bench.take(size), size)
        await bench.reset_mock()
        consumer: list[ChildProcess] = []

        async def start_consumer() -> ChildProcess:
            consumer.append(await raw.start_consumer(size, http=True))
            return consumer[0]

        raw_rss = await _drain(bench, start_consumer, size)
        stats = await bench.mock_stats()
        raw_drain = (size - 1) / (stats["last_at"] - stats["first_at"])
        for child in consumer:
            await child.stop()
        say(f"  raw drained at {raw_drain:.0f} msg/s; consumer RSS {_rss_text(raw_rss)}")
    drain.add(hub_drain, raw_drain)
    for point, figure in rss.items():
        figure.add(hub_rss[point] / MB, raw_rss[point] / MB)
    drain.note = f"{size} queued messages, prefetch {config.prefetch}, store {config.store}"
    rss["peak"].note = f"hub worker peak/start = {hub_rss['peak'] / hub_rss['start']:.2f} (flat is ≈ 1)"
    rss["end"].note = f"hub worker end/half-way = {hub_rss['end'] / hub_rss['q2']:.2f} (no growth while draining ≈ 1)"
    for figure in (drain, *rss.values()):
        bench.report.publish(figure)


async def _drain(bench: Bench, start: Any, size: int) -> dict[str, int]:
    """Start the consumer, sample its RSS until the mock has accepted ``size`` calls; start/peak/end RSS."""
    child: ChildProcess = await start()
    start_rss = child.rss_bytes()
    samples: list[int] = [start_rss]
    stop = asyncio.Event()
    sampler = asyncio.create_task(_sample_rss(child, samples, stop))
    try:
        await bench.wait_accepted(size, "backlog drain")
        await asyncio.sleep(1.0)
    finally:
        stop.set()
        await sampler
    end_rss = child.rss_bytes() or samples[-1]
    quarters = {f"q{q}": samples[len(samples) * q // 4] for q in (1, 2, 3)}  # by time: growing or flat?
    return {"start": start_rss, "peak": max(samples), "end": end_rss, **quarters}


def _rss_text(rss: dict[str, int]) -> str:
    return (
        f"start {rss['start'] / MB:.0f} MB, at a quarter/half/three quarters of the drain "
        f"{rss['q1'] / MB:.0f}/{rss['q2'] / MB:.0f}/{rss['q3'] / MB:.0f} MB, "
        f"peak {rss['peak'] / MB:.0f} MB, end {rss['end'] / MB:.0f} MB"
    )


# ---------------------------------------------------------------------- 5. retry overhead


async def retry_overhead(bench: Bench) -> None:
    config = bench.config
    hub = await bench.main_hub()
    figure = Figure(f"retry_{config.retry_percent}pct", "msg/s", "the hub with no failures")
    for attempt in range(config.repeat):
        say(
            f"retry {attempt + 1}/{config.repeat}: {config.retry_messages} messages, "
            f"{config.retry_percent} % fail once with HTTP 503"
        )
        clean = await hub.run(config.retry_messages)
        failing = await hub.run(config.retry_messages, fail_first_percent=config.retry_percent)
        stats = await bench.mock_stats()
        figure.add(failing, clean)
        say(
            f"  0 %: {clean:.0f} msg/s, {config.retry_percent} %: {failing:.0f} msg/s "
            f"({stats['injected_failures']} failed once)"
        )
    figure.note = "retried through the 1 s retry tier (TTL queue) back to the target queue"
    bench.report.publish(figure)


# ---------------------------------------------------------------------- 4. store size


async def _fill_store(store: MessageStore, run_id: str, first: int, count: int, writers: int) -> None:
    """Write ``count`` messages as the hub does for each: accept, mark_published, mark_delivered."""
    next_index = 0

    async def writer() -> None:
        nonlocal next_index
        while next_index < count:
            n = first + next_index
            next_index += 1
            # Five states per dossier, as a dossier moves through the one-stop desk.
            payload = dossier_payload(dossier_code(run_id, n // 5))
            payload["TrangThaiHoSo"] = 1 + n % 5
            view, _ = await store.accept(
                message_type=MESSAGE_TYPE, source=SOURCE, dossier_code=payload["MaHoSo"], payload=payload,
                targets=[("national-portal", "dossier-sync")], idempotency_key=None, message_id=new_message_id(),
            )  # fmt: skip
            await store.mark_published(view.envelope.id, ["national-portal"])
            await store.mark_delivered(
                view.envelope.id, "national-portal", attempt=1, dossier_code=payload["MaHoSo"], seq=view.envelope.seq
            )

    await asyncio.gather(*(writer() for _ in range(writers)))


async def store_size(bench: Bench) -> None:
    config = bench.config
    count = config.store_messages
    for kind in ("sqlite", "postgresql"):
        database = Database.create(kind, bench.run_dir, f"{bench.run_id}_st_{kind}")
        store = MessageStore.open(database.url, pool_size=16)
        try:
            await store.migrate()
            empty = database.size_bytes()
            say(f"store size ({kind}): writing {count} messages (accept, mark_published, mark_delivered)")
            await _fill_store(store, bench.run_id, bench.take(count), count, 4 if kind == "sqlite" else 16)
            used = database.size_bytes() - empty
        finally:
            await store.aclose()
            database.drop()
        per_message = used / count
        figure = Figure(f"store_{kind}", "GB/1M_msgs", f"the {BODY_BYTES}-byte messages themselves")
        figure.add(per_message * 1e6 / 1e9, BODY_BYTES * 1e6 / 1e9)
        figure.note = f"measured on {count} delivered messages ({per_message:.0f} bytes each), scaled to 1 million"
        bench.report.publish(figure)


SCENARIOS = {
    "broker": broker_path,
    "retry": retry_overhead,
    "latency": latency,
    "ingress": ingress,
    "scale": scale_targets,
    "backlog": backlog,
    "store": store_size,
}
