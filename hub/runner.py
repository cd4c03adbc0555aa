"""Running the hub's roles: the ingress (HTTP), a worker per target, or all in one process.

Stopping (docs/reliability.md, "Stopping"): the SIGTERM and SIGINT handlers are installed before anything
waits, and the start-up (waiting for the store and RabbitMQ, migrating, declaring queues) runs as a task that
a stop cancels at once. A running process stops accepting connections and consuming; the requests and
deliveries under way get ``HUB_SHUTDOWN_GRACE_SECONDS`` to finish, then they are cancelled and their messages,
never acknowledged, go back to RabbitMQ (:mod:`hub.consumer`). A watchdog thread ends the process if the
stop takes longer than the grace + :data:`STOP_MARGIN_SECONDS`, and a second signal ends it at once; both
hard stops exit with 128 + the signal's number (130 for SIGINT, 143 for SIGTERM). A clean stop exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import math
import os
import signal
import sys
import threading
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

import structlog
import uvicorn
from prometheus_client import start_http_server

from hub.bootstrap import Hub
from hub.errors import BrokerUnavailableError, StoreUnavailableError
from hub.ingress import create_ingress_app
from hub.request_worker import RequestWorker
from hub.store import wait_for_store
from hub.worker import TargetWorker

__all__ = ["STOP_MARGIN_SECONDS", "run_hub", "start_workers"]

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


async def start_workers(
    hub: Hub, targets: Sequence[str], *, started: list[TargetWorker | RequestWorker] | None = None
) -> list[TargetWorker | RequestWorker]:
    """A delivery worker for each target of deliver routes, a request worker for each of request-reply routes.

    Each worker is added to ``started`` (when given) as soon as it consumes, so that a stop during the
    start-up of the next one still stops it."""
    workers: list[TargetWorker | RequestWorker] = [] if started is None else started
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
                shutdown_grace=hub.settings.shutdown_grace_seconds,
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
            shutdown_grace=hub.settings.shutdown_grace_seconds,
        )
        await worker.start()
        workers.append(worker)
    return workers


#: Container objects allocated (net) before a young collection; Python's default is 700. Under load
#: the ingress and workers allocate a few hundred per message: a collection every two or three
#: messages would keep the objects of every request in flight alive long enough to be promoted, and
#: later walked again by full collections. The price is a longer young collection, less often, and a
#: little more memory.
GC_YOUNG_THRESHOLD = 50_000


def _tune_garbage_collector() -> None:
    """Freeze what exists once the hub is running (modules, the app, routes, schemas: it lives as long
    as the process), so full collections stop walking it; collect young objects less often."""
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)


#: A stop ends the process within HUB_SHUTDOWN_GRACE_SECONDS + this. After the grace come the workers'
#: last steps (cancelled deliveries recording their doubt, channels closing: 2 s at most), the adapters'
#: and the ingress's (0.7 s) and closing the store and the broker connection (1.5 s): 4.2 s at most,
#: usually a fraction of a second. Beyond the bound a watchdog thread ends the process.
STOP_MARGIN_SECONDS = 5.0
#: Closing the store and the broker connection at the end of a stop.
_CLOSE_SECONDS = 1.5


@dataclass
class _Roles:
    """What a hub process runs; filled in by the start-up, emptied by the stop."""

    server: uvicorn.Server | None = None
    workers: list[TargetWorker | RequestWorker] = field(default_factory=list)
    #: The ingress's server and ``extra``: the process stops when one of them ends.
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


class _IngressServer(uvicorn.Server):
    """uvicorn's server without its own SIGINT/SIGTERM handlers. uvicorn replaces the process's handlers
    while it serves and stops only itself; the hub's (:class:`_StopSignals`) stop every role, from the first
    instant of the start-up, and a second signal ends the process."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class _StopSignals:
    """SIGTERM and SIGINT. The first sets ``requested`` and starts a watchdog that ends the process if the
    stop takes longer than the grace + STOP_MARGIN_SECONDS; a second ends it at once."""

    def __init__(self, *, grace: float) -> None:
        self.requested = asyncio.Event()
        self.grace = grace
        self.bound = grace + STOP_MARGIN_SECONDS
        self._first: int | None = None

    def install(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):  # not on Windows' event loop
                loop.add_signal_handler(sig, self._received, sig)

    def _received(self, sig: int) -> None:
        name = signal.Signals(sig).name
        if self._first is not None:
            log.error(
                "hub_stopped_at_once", signal=name,
                detail="A second signal: the hub exits now without waiting for the work under way. Messages "
                "not yet acknowledged go back to RabbitMQ and are delivered again (looked up at the target "
                "first when the target allows it).",
            )  # fmt: skip
            _exit_now(sig)
        self._first = sig
        log.warning(
            "hub_stop_requested", signal=name, grace_seconds=self.grace, exits_within_seconds=self.bound,
            detail=f"Stopping: work under way gets {self.grace:g} s to finish (HUB_SHUTDOWN_GRACE_SECONDS). "
            f"Send {name} again to stop at once.",
        )  # fmt: skip
        self.requested.set()
        watchdog = threading.Timer(self.bound, self._overran, args=(sig,))
        watchdog.daemon = True
        watchdog.start()

    def _overran(self, sig: int) -> None:
        log.error(
            "hub_stop_overran", seconds=self.bound,
            detail=f"The hub did not finish stopping within {self.bound:g} s of the signal and exits now. "
            "Messages not yet acknowledged go back to RabbitMQ and are delivered again.",
        )  # fmt: skip
        _exit_now(sig)


def _exit_now(sig: int) -> NoReturn:
    """End the process without any further clean-up. RabbitMQ sees the connection drop and gives every
    message not yet acknowledged out again, as after a crash."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(128 + sig)


async def run_hub(
    hub: Hub,
    *,
    ingress: bool,
    targets: Sequence[str],
    extra: Callable[[asyncio.Event], Coroutine[Any, Any, None]] | None = None,
    metrics_port: int | None = None,
) -> None:
    """Run the ingress and/or workers until SIGINT/SIGTERM; then stop within the bound of the module's docstring."""
    signals = _StopSignals(grace=hub.settings.shutdown_grace_seconds)
    signals.install()  # before anything that waits: every wait below gives way to a stop
    roles = _Roles()
    starting = asyncio.create_task(
        _start(
            hub, roles, ingress=ingress, targets=targets, extra=extra, stop=signals.requested, metrics_port=metrics_port
        )
    )
    stop_requested = asyncio.create_task(signals.requested.wait())
    try:
        await asyncio.wait([starting, stop_requested], return_when=asyncio.FIRST_COMPLETED)
        if starting.done():
            starting.result()
            log.info("hub_running", ingress=ingress, targets=list(targets))
            _tune_garbage_collector()
            await asyncio.wait([stop_requested, *roles.tasks], return_when=asyncio.FIRST_COMPLETED)
        else:
            log.info(
                "hub_start_abandoned",
                detail="Stopped during start-up (waiting for the store or RabbitMQ, or declaring queues).",
            )
            starting.cancel()
            await asyncio.wait([starting], timeout=_CLOSE_SECONDS)
            _log_failure(starting)
    except (BrokerUnavailableError, StoreUnavailableError) as exc:
        log.exception("hub_cannot_start", error=str(exc))
        raise
    finally:
        stop_requested.cancel()
        signals.requested.set()  # tells `extra` to stop too when a role ended by itself
        await _stop(hub, roles, grace=hub.settings.shutdown_grace_seconds)


async def _start(
    hub: Hub,
    roles: _Roles,
    *,
    ingress: bool,
    targets: Sequence[str],
    extra: Callable[[asyncio.Event], Coroutine[Any, Any, None]] | None,
    stop: asyncio.Event,
    metrics_port: int | None,
) -> None:
    """Start the roles, filling in ``roles`` as each one runs (a stop cancels this at any await)."""
    await hub.check_targets()  # a refused setting (a sample secret outside --demo) stops the hub here
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
            timeout_graceful_shutdown=math.ceil(hub.settings.shutdown_grace_seconds),
        )
        roles.server = _IngressServer(config)
        roles.tasks.append(asyncio.create_task(roles.server.serve()))
    if targets:
        await _start_services(hub, declare_all=True)
        hub.starting = None
        await start_workers(hub, targets, started=roles.workers)
        if metrics_port is not None and not ingress:
            start_http_server(metrics_port, addr=hub.settings.http_host, registry=hub.metrics.registry)
    if extra is not None:
        roles.tasks.append(asyncio.create_task(extra(stop)))


async def _stop(hub: Hub, roles: _Roles, *, grace: float) -> None:
    """Stop the roles: the ingress and the workers at once, each within the grace + 2 s; then the store and
    the broker connection."""
    log.info("hub_stopping", grace_seconds=grace)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace + 1  # uvicorn's own grace is the grace rounded up to a second
    if roles.server is not None:
        roles.server.should_exit = True  # stops accepting; requests under way get the grace (uvicorn's timeout)
    for outcome in await asyncio.gather(*(worker.stop() for worker in roles.workers), return_exceptions=True):
        if isinstance(outcome, Exception):
            log.error("worker_stop_failed", error_type=type(outcome).__name__, error=str(outcome), exc_info=outcome)
    await asyncio.gather(*(_close_adapter(worker) for worker in roles.workers))
    running = [task for task in roles.tasks if not task.done()]
    if running:
        await asyncio.wait(running, timeout=max(deadline - loop.time(), 0.01))
    for task in running:
        task.cancel()
    if running:
        await asyncio.wait(running, timeout=0.5)
    for task in roles.tasks:
        _log_failure(task)
    try:
        async with asyncio.timeout(_CLOSE_SECONDS):
            await hub.aclose()
    except TimeoutError:
        log.warning("hub_close_timed_out", seconds=_CLOSE_SECONDS)
    log.info("hub_stopped")


async def _close_adapter(worker: TargetWorker | RequestWorker) -> None:
    with contextlib.suppress(Exception):
        async with asyncio.timeout(0.2):
            await worker.adapter.aclose()


def _log_failure(task: asyncio.Task[None]) -> None:
    """Log what a task of the hub raised, if it ended by an error (the stop goes on)."""
    if task.done() and not task.cancelled() and (error := task.exception()) is not None:
        log.error("hub_task_failed", error_type=type(error).__name__, error=str(error), exc_info=error)
