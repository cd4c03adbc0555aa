"""``/healthz`` (the process answers), ``/readyz`` (RabbitMQ and the store answer, queues declared) and
``/metrics`` (Prometheus)."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from hub.api.deps import State
from hub.bootstrap import Hub
from hub.errors import BrokerUnavailableError, StoreUnavailableError
from hub.metrics import refresh_store_gauges

__all__ = ["refresh_gauges", "router"]

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(state: State) -> JSONResponse:
    hub = state.hub
    problems: list[str] = [hub.starting] if hub.starting else []
    try:
        await hub.broker.check()
    except BrokerUnavailableError as exc:
        problems.append(str(exc))
    try:
        await hub.store.ping()
    except StoreUnavailableError as exc:
        problems.append(str(exc))
    if problems:
        return JSONResponse({"status": "unavailable", "problems": problems}, status_code=503)
    return JSONResponse({"status": "ready"})


@router.get("/metrics")
async def metrics(state: State) -> Response:
    await refresh_gauges(state.hub)
    return Response(generate_latest(state.hub.metrics.registry), media_type=CONTENT_TYPE_LATEST)


async def refresh_gauges(hub: Hub) -> None:
    """Read queue depths from RabbitMQ and the oldest undelivered message from the store."""
    topology = hub.broker.topology
    now = datetime.now(UTC)
    for target in hub.routes.delivery_targets():
        depth = await hub.broker.queue_depth(topology.target_queue(target))
        if depth is not None:
            hub.metrics.queue_depth.labels(target).set(depth)
        dlq = await hub.broker.queue_depth(topology.dlq(target))
        if dlq is not None:
            hub.metrics.dlq_depth.labels(target).set(dlq)
        with contextlib.suppress(StoreUnavailableError):
            oldest = await hub.store.oldest_open_accepted_at(target)
            hub.metrics.oldest_pending_age.labels(target).set((now - oldest).total_seconds() if oldest else 0)
    with contextlib.suppress(StoreUnavailableError):
        await refresh_store_gauges(hub.metrics, hub.store, hub.routes.targets)
