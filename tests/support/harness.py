"""A hub running inside the test's event loop, on real sockets, against the real RabbitMQ and database.

Only the national portal is fake, and it is the real mock HTTP server from ``mocks/``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import textwrap
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aio_pika
import httpx
import uvicorn

from hub.bootstrap import Hub, build_hub
from hub.ingress import create_ingress_app
from hub.request_worker import RequestWorker
from hub.runner import start_workers
from hub.settings import HubSettings
from hub.worker import TargetWorker

T = TypeVar("T")

ONESTOP_KEY = "test-key-onestop-not-a-secret"
MINISTRY_KEY = "test-key-ministry-not-a-secret"
RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/"

#: Every broker namespace this test session created; the session deletes what is left of them at its end
#: (a failed or interrupted test must not leave quorum queues behind on the shared broker).
CREATED_NAMESPACES: set[str] = set()


def new_namespace(prefix: str) -> str:
    namespace = f"{prefix}{uuid.uuid4().hex[:10]}"
    CREATED_NAMESPACES.add(namespace)
    return namespace


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_port_run(count: int) -> int:
    """A port p such that p .. p+count-1 are free now (the demo's mocks use consecutive ports)."""
    for _ in range(50):
        base = random.randint(20_000, 60_000)
        sockets = []
        try:
            for port in range(base, base + count):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
        return base
    raise AssertionError("no run of free ports found")


def write_routes(
    folder: Path,
    portal_url: str,
    *,
    backoff: str = "[200ms, 500ms, 1s]",
    attempts: int = 5,
    client_secret: str = "test-secret-not-real",  # noqa: S107 - a sample, as the docstring says
) -> Path:
    """A route file to the mock portal. Its client secret is a sample, which a hub accepts only with
    HUB_ALLOW_SAMPLE_SECRETS (``running_hub`` and ``HubEnvironment`` set it)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "portal.yaml").write_text(
        textwrap.dedent(
            f"""
            systems:
              - id: onestop
                key_env: HUB_SYSTEM_KEY_ONESTOP
                allowed_types: [dossier.upserted, dossier.progress]
              - id: ministry
                key_env: HUB_SYSTEM_KEY_MINISTRY
                allowed_types: [dossier.progress]
            targets:
              - id: national-portal
                adapter: national_portal
                config:
                  base_url: {portal_url}
                  client_id: test-client
                  client_secret: {client_secret}
                  timeout_seconds: 3
            routes:
              - name: dossier-sync
                type: dossier.upserted
                schema: dossier.upserted/v1
                ordering: latest-state
                targets: [national-portal]
                retry: {{attempts: {attempts}, backoff: {backoff}}}
              - name: dossier-progress
                type: dossier.progress
                schema: dossier.progress/v1
                targets: [national-portal]
                retry: {{attempts: {attempts}, backoff: {backoff}}}
            """
        ),
        encoding="utf-8",
    )
    return folder


async def eventually(check: Callable[[], Awaitable[T | None]], timeout: float = 30.0, interval: float = 0.1) -> T:
    """Await ``check()`` until it returns something truthy; fail with its last value after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s; last value: {last!r}")


async def delete_namespace(namespace: str, hub: Hub) -> None:
    """Remove every queue and exchange the hub declared for ``namespace``."""
    topology = hub.broker.topology
    connection = await aio_pika.connect(RABBITMQ_URL)
    async with connection:
        for target in hub.routes.targets:
            names = [topology.target_queue(target), topology.dlq(target)]
            names += [topology.retry_queue(target, d) for d in hub.routes.retry_delays(target)]
            names.append(topology.request_queue(target))
            for name in names:
                channel = await connection.channel()
                with contextlib.suppress(Exception):
                    await channel.queue_delete(name)
                with contextlib.suppress(Exception):
                    await channel.close()
        channel = await connection.channel()
        with contextlib.suppress(Exception):
            await channel.exchange_delete(topology.deliver_exchange)


@dataclass
class RunningHub:
    hub: Hub
    url: str
    client: httpx.AsyncClient
    workers: list[TargetWorker | RequestWorker]
    portal_url: str

    async def post(
        self,
        message_type: str,
        payload: dict[str, Any],
        *,
        key: str = ONESTOP_KEY,
        idempotency_key: str | None = None,
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        return await self.client.post(
            f"{self.url}/v1/messages", json={"type": message_type, "payload": payload}, headers=headers
        )

    async def message(self, message_id: str) -> dict[str, Any]:
        response = await self.client.get(
            f"{self.url}/v1/messages/{message_id}", headers={"Authorization": f"Bearer {ONESTOP_KEY}"}
        )
        response.raise_for_status()
        return dict(response.json())

    async def delivery_state(self, message_id: str, target: str = "national-portal") -> str:
        message = await self.message(message_id)
        return str(next(d["state"] for d in message["deliveries"] if d["target"] == target))

    async def stop_workers(self) -> None:
        for worker in self.workers:
            await worker.stop()
        self.workers = []

    async def start_workers(self) -> None:
        self.workers = await start_workers(self.hub, list(self.hub.routes.targets))


@contextlib.asynccontextmanager
async def running_hub(
    *,
    database_url: str,
    routes_dir: Path,
    portal_url: str,
    workers: bool = True,
    **overrides: Any,
) -> AsyncIterator[RunningHub]:
    namespace = new_namespace("t")
    port = free_port()
    overrides.setdefault("metrics_cache_seconds", 0)  # a test's scrapes see each change (test_api_docs: the cache)
    # A test hub declares what makes it a test: the mocks' sample secrets, plain http on 127.0.0.1 (its public
    # address, and cookies without Secure). A test of the production defaults passes them explicitly.
    overrides.setdefault("allow_sample_secrets", True)
    overrides.setdefault("console_secure_cookie", False)
    overrides.setdefault("identity_public_url", f"http://127.0.0.1:{port}")
    overrides.setdefault("console_public_url", f"http://127.0.0.1:{port}")
    settings = HubSettings(
        database_url=database_url,
        broker_namespace=namespace,
        routes_dir=routes_dir,
        http_port=port,
        prefetch=32,
        delivery_timeout_seconds=5,
        outbox_relay_after_seconds=2,
        batch_linger_ms=30,
        **overrides,
    )
    hub = build_hub(settings)
    await hub.start()
    server = uvicorn.Server(
        uvicorn.Config(create_ingress_app(hub), host="127.0.0.1", port=port, log_config=None, lifespan="on")
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    started = await start_workers(hub, list(hub.routes.targets)) if workers else []
    client = httpx.AsyncClient(timeout=30)
    running = RunningHub(hub, f"http://127.0.0.1:{port}", client, started, portal_url)
    try:
        yield running
    finally:
        await running.stop_workers()
        for worker in started:
            await worker.adapter.aclose()
        await client.aclose()
        server.should_exit = True
        await serving
        await delete_namespace(namespace, hub)
        await hub.aclose()
