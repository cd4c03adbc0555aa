"""What the benchmarks start and clean up: child processes, queues, databases and route files.

Every run uses its own broker namespaces and its own database, and removes them at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import sqlite3
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import orjson
import psycopg

__all__ = [
    "BROKER_URL",
    "PG_ADMIN_DSN",
    "SYSTEM_KEY",
    "BenchError",
    "ChildProcess",
    "Database",
    "broker_reachable",
    "declare_raw_queues",
    "delete_broker_objects",
    "free_port",
    "hub_command",
    "hub_env",
    "queue_consumers",
    "wait_for_broker",
    "wait_http",
    "write_routes",
]

BROKER_URL = os.environ.get("BENCH_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/")
PG_ADMIN_DSN = os.environ.get("BENCH_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
SYSTEM_KEY = "bench-key-onestop-not-a-secret"
PYTHON = sys.executable


class BenchError(Exception):
    """A benchmark could not run; the message says why and what to check."""


def broker_reachable() -> bool:
    host, port = BROKER_URL.rsplit("@", 1)[-1].split("/", 1)[0].rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=2):
            return True
    except OSError:
        return False


async def wait_for_broker(timeout: float = 180.0) -> bool:
    """Wait until RabbitMQ accepts connections again (another user may be restarting it).

    Probes every 2 s only: a broker that is still starting queues every connection attempt.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await asyncio.to_thread(broker_reachable):
            await asyncio.sleep(3)  # let it finish starting (queues, users) before the next connection
            return True
        await asyncio.sleep(2)
    return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def hub_command(*args: str) -> list[str]:
    """The ``hub`` command as a user runs it (the console script next to this Python)."""
    script = Path(PYTHON).with_name("hub")
    if script.exists():
        return [str(script), *args]
    return [PYTHON, "-c", "from hub.cli import main; main()", *args]


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the bench process dies, even if it is killed
    (a timeout, Ctrl-C twice), so no mock portal or hub process outlives its run (Linux only)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class ChildProcess:
    """A child process with its stdout read as JSON lines (events) and its stderr in a log file."""

    name: str
    process: asyncio.subprocess.Process
    log_path: Path
    events: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)
    _reader: asyncio.Task[None] | None = None

    @classmethod
    async def start(
        cls, name: str, argv: Sequence[str], *, log_dir: Path, env: Mapping[str, str] | None = None
    ) -> ChildProcess:
        log_path = log_dir / f"{name}.log"
        log = log_path.open("ab")
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
                env={**os.environ, **(env or {})},
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        finally:
            log.close()
        child = cls(name, process, log_path)
        child._reader = asyncio.create_task(child._read_events())
        return child

    def cpu_seconds(self) -> float:
        """User + system CPU time the process has used so far (from ``/proc``; 0 where there is none)."""
        return sum(self.cpu_split())

    def cpu_split(self) -> tuple[float, float]:
        """User and system (kernel) CPU time the process has used so far, apart (0 where there is none)."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0, 0.0
        tick = os.sysconf("SC_CLK_TCK")
        return int(fields[11]) / tick, int(fields[12]) / tick

    async def _read_events(self) -> None:
        assert self.process.stdout is not None
        while line := await self.process.stdout.readline():
            with contextlib.suppress(orjson.JSONDecodeError):
                event = orjson.loads(line)
                if isinstance(event, dict):
                    await self.events.put(event)

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.returncode is None

    async def event(self, name: str, timeout: float) -> dict[str, Any]:
        """Wait for the child to print ``{"event": name, ...}``; fail if it exits first."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BenchError(f"{self.name} did not report '{name}' within {timeout:g} s; see {self.log_path}.")
            try:
                event = await asyncio.wait_for(self.events.get(), timeout=min(remaining, 0.5))
            except TimeoutError:
                if not self.alive() and self.events.empty():
                    raise BenchError(
                        f"{self.name} exited with code {self.process.returncode} before reporting '{name}'; "
                        f"see {self.log_path}."
                    ) from None
                continue
            if event.get("event") == name:
                return event

    def rss_bytes(self) -> int:
        """Resident memory of the process (0 once it has exited)."""
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            return 0
        return 0

    async def stop(self, timeout: float = 20.0) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), timeout)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.process.kill()
                await self.process.wait()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._reader, 2)

    async def wait(self, timeout: float) -> int:
        try:
            return await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            raise BenchError(f"{self.name} did not finish within {timeout:g} s; see {self.log_path}.") from None


async def wait_http(url: str, timeout: float = 30.0, *, child: ChildProcess | None = None) -> None:
    """Wait until ``url`` answers 200."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() < deadline:
            if child is not None and not child.alive():
                raise BenchError(f"{child.name} exited with code {child.process.returncode}; see {child.log_path}.")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url)).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise BenchError(f"{url} did not answer within {timeout:g} s.")


# ------------------------------------------------------------------ broker


async def queue_consumers(queue: str) -> int:
    """Consumers of ``queue`` (0 when it does not exist yet)."""
    connection = await aio_pika.connect(BROKER_URL, timeout=15)
    async with connection:
        channel = await connection.channel()
        try:
            declared = await channel.declare_queue(queue, passive=True)
        except aio_pika.exceptions.ChannelClosed:
            return 0
        return int(declared.declaration_result.consumer_count or 0)


async def declare_raw_queues(exchange: str, queues: Iterable[str]) -> None:
    """A fanout exchange bound to quorum queues, as the baselines use (same queue type as the hub)."""
    connection = await aio_pika.connect(BROKER_URL, timeout=15)
    async with connection:
        channel = await connection.channel()
        fanout = await channel.declare_exchange(exchange, aio_pika.ExchangeType.FANOUT, durable=True)
        for name in queues:
            queue = await channel.declare_queue(name, durable=True, arguments={"x-queue-type": "quorum"})
            await queue.bind(fanout)


async def delete_broker_objects(prefix: str) -> None:
    """Delete every queue and exchange whose name starts with ``prefix`` (through the AMQP API).

    AMQP cannot list queues, so the names are the ones this package declares or the hub derives.
    """
    names = _DECLARED.pop(prefix, set())
    if not names:
        return
    connection = await aio_pika.connect(BROKER_URL, timeout=15)
    async with connection:
        for kind, name in sorted(names):
            channel = await connection.channel()
            with contextlib.suppress(Exception):
                if kind == "queue":
                    await channel.queue_delete(name)
                else:
                    await channel.exchange_delete(name)
            with contextlib.suppress(Exception):
                await channel.close()


_DECLARED: dict[str, set[tuple[str, str]]] = {}


def remember_broker_objects(prefix: str, *, queues: Iterable[str] = (), exchanges: Iterable[str] = ()) -> None:
    """Record names to delete with :func:`delete_broker_objects` at the end of a scenario."""
    names = _DECLARED.setdefault(prefix, set())
    names.update(("queue", q) for q in queues)
    names.update(("exchange", e) for e in exchanges)


def remember_hub_namespace(namespace: str, targets: Iterable[str], retry_delays_ms: Iterable[int]) -> None:
    delays = list(retry_delays_ms)
    queues: list[str] = []
    for target in targets:
        queues += [f"{namespace}.target.{target}", f"{namespace}.dlq.{target}"]
        queues += [f"{namespace}.retry.{target}.{ms}ms" for ms in delays]
    remember_broker_objects(namespace, queues=queues, exchanges=[f"{namespace}.deliver"])


# ------------------------------------------------------------------ databases


@dataclass
class Database:
    """A fresh hub database for one scenario: a SQLite file or a PostgreSQL database."""

    kind: str
    url: str
    path: Path | None = None
    pg_name: str | None = None

    @classmethod
    def create(cls, kind: str, run_dir: Path, name: str) -> Database:
        if kind == "sqlite":
            path = run_dir / f"{name}.db"
            database = cls(kind, f"sqlite+aiosqlite:///{path}", path=path)
            database.drop()  # a benchmark run again after a broker restart starts from an empty store
            return database
        if kind == "postgresql":
            pg_name = f"bench_{name}"
            try:
                with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{pg_name}"')
                    conn.execute(f'CREATE DATABASE "{pg_name}"')
            except psycopg.Error as exc:
                raise BenchError(
                    f"Could not create PostgreSQL database {pg_name} via {PG_ADMIN_DSN} ({exc}); "
                    "check that PostgreSQL runs or set BENCH_PG_DSN."
                ) from exc
            base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
            return cls(kind, f"{base}/{pg_name}", pg_name=pg_name)
        raise BenchError(f"Unknown store '{kind}'; use sqlite or postgresql.")

    def size_bytes(self) -> int:
        """Bytes the hub's tables take (SQLite: the file after a WAL checkpoint; PostgreSQL: the tables
        with their indexes and TOAST)."""
        if self.path is not None:
            with contextlib.closing(sqlite3.connect(self.path)) as conn:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            wal = self.path.with_name(self.path.name + "-wal")
            return self.path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
        with psycopg.connect(self.url.replace("postgresql+psycopg://", "postgresql://", 1), autocommit=True) as conn:
            row = conn.execute(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'public' AND c.relkind = 'r'"
            ).fetchone()
            return int(row[0]) if row else 0

    def drop(self) -> None:
        if self.path is not None:
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    self.path.with_name(self.path.name + suffix).unlink()
        if self.pg_name is not None:
            with contextlib.suppress(psycopg.Error), psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.pg_name}" WITH (FORCE)')


# ------------------------------------------------------------------ hub configuration


def write_routes(folder: Path, mock_url: str, targets: int, *, backoff: str = "[1s, 5s]") -> list[str]:
    """A route file: ``dossier.upserted`` from ``onestop`` to ``targets`` mock portals. Returns the target ids."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    ids = ["national-portal"] if targets == 1 else [f"portal-{i}" for i in range(1, targets + 1)]
    target_yaml = "".join(
        textwrap.dedent(
            f"""
              - id: {target}
                adapter: national_portal
                config:
                  base_url: {mock_url}/p{i}
                  client_id: bench-client
                  client_secret: bench-secret-not-real
                  timeout_seconds: 30
            """
        )
        for i, target in enumerate(ids, 1)
    )
    (folder / "bench.yaml").write_text(
        "systems:\n"
        "  - id: onestop\n"
        "    key_env: HUB_SYSTEM_KEY_ONESTOP\n"
        "    allowed_types: [dossier.upserted]\n"
        "targets:" + textwrap.indent(target_yaml, "") + "\n"
        "routes:\n"
        "  - name: dossier-sync\n"
        "    type: dossier.upserted\n"
        "    schema: dossier.upserted/v1\n"
        "    ordering: latest-state\n"
        "    sources: [onestop]\n"
        f"    targets: [{', '.join(ids)}]\n"
        f"    retry: {{attempts: 5, backoff: {backoff}}}\n",
        encoding="utf-8",
    )
    return ids


def hub_env(*, namespace: str, database: Database, routes_dir: Path, port: int | None = None) -> dict[str, str]:
    env = {
        "HUB_BROKER_URL": BROKER_URL,
        "HUB_BROKER_NAMESPACE": namespace,
        "HUB_DATABASE_URL": database.url,
        "HUB_ROUTES_DIR": str(routes_dir),
        "HUB_SYSTEM_KEY_ONESTOP": SYSTEM_KEY,
        "HUB_LOG_LEVEL": os.environ.get("BENCH_HUB_LOG_LEVEL", "INFO"),
        "HUB_LOG_FORMAT": "json",
        "HUB_QUEUE_TYPE": "quorum",
        "HUB_ALLOW_SAMPLE_SECRETS": "true",  # the bench's targets are the mock portal, with its sample secret
    }
    if port is not None:
        env["HUB_HTTP_PORT"] = str(port)
        env["HUB_HTTP_HOST"] = "127.0.0.1"
    return env


@contextlib.asynccontextmanager
async def started(
    name: str, argv: Sequence[str], *, log_dir: Path, env: Mapping[str, str] | None = None
) -> AsyncIterator[ChildProcess]:
    child = await ChildProcess.start(name, argv, log_dir=log_dir, env=env)
    try:
        yield child
    finally:
        await child.stop()
