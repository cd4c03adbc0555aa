"""``/healthz`` (the process answers), ``/readyz`` (RabbitMQ and the store answer, queues declared) and
``/metrics`` (Prometheus)."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field

from hub.api.deps import State
from hub.api.guard import Lock
from hub.bootstrap import Hub
from hub.contract import problem_responses
from hub.errors import BrokerUnavailableError, StoreUnavailableError
from hub.metrics import refresh_store_gauges

__all__ = ["MetricsPage", "refresh_gauges", "router"]

router = APIRouter(tags=["operations"])


class Readiness(BaseModel):
    status: str = Field(description="ready, or unavailable (HTTP 503).")
    problems: list[str] = Field(default_factory=list, description="What is not ready, one sentence each.")


@dataclass
class MetricsPage:
    """``/metrics`` of one ingress application: its lock (HUB_METRICS_TOKEN), and the gauges read from
    RabbitMQ and the store at most once per ``max_age`` seconds, however many scrapers ask."""

    hub: Hub
    lock: Lock
    max_age: float
    _read_at: float = field(default=-math.inf, init=False)
    _reading: asyncio.Lock = field(default_factory=asyncio.Lock, init=False)

    @classmethod
    def for_hub(cls, hub: Hub) -> MetricsPage:
        settings = hub.settings
        return cls(hub, Lock(settings.metrics_token, realm="hub metrics"), settings.metrics_cache_seconds)

    async def render(self) -> bytes:
        async with self._reading:  # concurrent scrapes wait for one reading instead of each making their own
            if time.monotonic() - self._read_at >= self.max_age:
                await refresh_gauges(self.hub)
                self._read_at = time.monotonic()
        return generate_latest(self.hub.metrics.registry)


def _metrics_page(request: Request) -> MetricsPage:
    page: MetricsPage = request.app.state.metrics_page
    return page


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness, "description": "Not ready."}})
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


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}, **problem_responses(401)},
)
async def metrics(request: Request, page: Annotated[MetricsPage, Depends(_metrics_page)]) -> Response:
    """Prometheus metrics. Set HUB_METRICS_TOKEN to require a token."""
    if not page.lock.opens(request.headers.get("authorization")):
        return JSONResponse(
            {"detail": "Send the metrics token (HUB_METRICS_TOKEN) as 'Authorization: Bearer <token>'."},
            status_code=401,
            headers=page.lock.challenge,
        )
    return Response(await page.render(), media_type=CONTENT_TYPE_LATEST)


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
