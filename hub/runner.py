"""Running the hub's roles: the ingress (HTTP), a worker per target, or all in one process."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import structlog
import uvicorn

from hub.bootstrap import Hub
from hub.errors import BrokerUnavailableError, StoreUnavailableError
from hub.ingress import create_ingress_app
from hub.request_worker import RequestWorker
from hub.store import wait_for_store
from hub.worker import TargetWorker

__all__ = ["run_hub", "start_workers"]

log = structlog.get_logger(__name__)


async def _start_services(hub: Hub, *, declare_all: bool) -> None:
    """Wait for the store and the broker (they may still be starting), migrate, declare queues."""
    await wait_for_store(hub.store, attempts=60)
    await hub.store.migrate()
    await hub.broker.connect_with_backoff()
    if declare_all:
        for target in hub.routes.delivery_targets():
            await hub.broker.declare_target(target, hub.routes.retry_delays(target))
        for target in hub.routes.request_targets():
            await hub.broker.declare_request_queue(target)


async def start_workers(hub: Hub, targets: Sequence[str]) -> list[TargetWorker | RequestWorker]:
    """A delivery worker for each target of deliver routes, a request worker for each of request-reply routes."""
    workers: list[TargetWorker | RequestWorker] = []
    delivery_targets, request_targets = hub.routes.delivery_targets(), hub.routes.request_targets()
    for target in targets:
        spec = hub.routes.targets[target]
        if target in request_targets:
            request_worker = RequestWorker(
                target=target,
                adapter=hub.create_request_adapter(target),
                routes=hub.routes,
                broker=hub.broker,
                prefetch=spec.prefetch or hub.settings.prefetch,
            )
            await request_worker.start()
            workers.append(request_worker)
        if target not in delivery_targets:
            continue
        worker = TargetWorker(
            target=target,
            adapter=hub.create_adapter(target),
            routes=hub.routes,
            store=hub.store,
            broker=hub.broker,
            metrics=hub.metrics,
            prefetch=spec.prefetch or hub.settings.prefetch,
            delivery_timeout=hub.settings.delivery_timeout_seconds,
            batch_linger_ms=hub.settings.batch_linger_ms,
            overdue_retry_after=hub.settings.overdue_retry_after_seconds,
        )
        await worker.start()
        workers.append(worker)
    return workers


#: Container objects allocated (net) before a young collection; Python's default is 700. Under load
#: the ingress and workers allocate a few hundred per message, and a collection every two or three
#: messages kept the objects of every request in flight alive long enough to be promoted, and later
#: walked again by full collections. 50,000 costs a collection of about 12 ms when one comes, and
#: about 10 MB more in a worker (bench/README.md).
GC_YOUNG_THRESHOLD = 50_000


def _tune_garbage_collector() -> None:
    """Freeze what exists once the hub is running (modules, the app, routes, schemas: it lives as long
    as the process), so full collections stop walking it; collect young objects less often. In the
    ingress under load the collector's share of the CPU fell from 4 % (freeze alone) to under 1 %
    (bench/README.md)."""
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)


async def run_hub(
    hub: Hub,
    *,
    ingress: bool,
    targets: Sequence[str],
    extra: Callable[[asyncio.Event], Coroutine[Any, Any, None]] | None = None,
    metrics_port: int | None = None,
) -> None:
    """Run the ingress and/or workers until SIGINT/SIGTERM; then stop cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    workers: list[TargetWorker | RequestWorker] = []
    server: uvicorn.Server | None = None
    tasks: list[asyncio.Task[None]] = []
    try:
        if ingress and targets:
            # Until the target queues are declared, a message would be refused as unroutable (503).
            hub.starting = "The hub is still declaring its queues in RabbitMQ."
        if ingress:
            # The ingress starts even when the broker or store is down: it answers 503 meanwhile.
            with contextlib.suppress(StoreUnavailableError):
                await hub.store.migrate()
            config = uvicorn.Config(
                create_ingress_app(hub),
                host=hub.settings.http_host,
                port=hub.settings.http_port,
                log_config=None,
                access_log=False,
                lifespan="on",
            )
            server = uvicorn.Server(config)
            tasks.append(asyncio.create_task(server.serve()))
        if targets:
            await _start_services(hub, declare_all=True)
            hub.starting = None
            workers = await start_workers(hub, targets)
            if metrics_port is not None and not ingress:
                from prometheus_client import start_http_server

                start_http_server(metrics_port, addr=hub.settings.http_host, registry=hub.metrics.registry)
        if extra is not None:
            tasks.append(asyncio.create_task(extra(stop)))
        log.info("hub_running", ingress=ingress, targets=list(targets))
        _tune_garbage_collector()
        waiter = asyncio.create_task(stop.wait())
        await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
    except (BrokerUnavailableError, StoreUnavailableError) as exc:
        log.exception("hub_cannot_start", error=str(exc))
        raise
    finally:
        log.info("hub_stopping")
        for worker in workers:
            await worker.stop()
        for worker in workers:
            await worker.adapter.aclose()
        if server is not None:
            server.should_exit = True
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, timeout=10)
        await hub.aclose()
