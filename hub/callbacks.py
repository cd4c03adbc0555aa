"""Callbacks from partner systems, and the periodic checks that catch what callbacks miss.

* ``POST /v1/callbacks/payment`` – a payment platform's signed result (:mod:`hub.payments.settlement`);
  answered HTTP 200 with ``{"MaLoi", "MoTaLoi"}`` as the platform expects ("00" taken, "01" unknown
  MaThamChieu, "02" already confirmed, "04" amount, "05" currency, "97" signature, "99" unreadable);
  503 with MaLoi "99" when the hub cannot record it (the platform sends it again).
* ``POST /v1/callbacks/vnpost`` – a VNPost tracking event (or a list), authenticated by the token in
  ``X-VNPost-Token`` (:mod:`hub.postal.tracking`); answered ``{"Status": "100"}``.

Inside every ingress process two loops run (when the route files have such targets): payment
reconciliation every ``reconcile_interval`` of the payment target, and VNPost polling every
``poll_interval`` of the VNPost target. ``hub payments reconcile`` and ``hub post track`` run one
pass by hand. See docs/payments-and-post.md.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import structlog
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.background import BackgroundTask

from adapters.payment import PaymentPlatformAdapter
from adapters.vnpost import VNPostAdapter
from hub.bootstrap import Hub
from hub.errors import ConfigurationError, StoreUnavailableError
from hub.payments.reconcile import PaymentReconciler
from hub.payments.settlement import PaymentSettlement
from hub.postal.tracking import ShipmentTracker

__all__ = ["PartnerServices", "build_partner_services", "create_partner_router"]

log = structlog.get_logger(__name__)

PAYMENT_ADAPTER = "payment_platform"
VNPOST_ADAPTER = "vnpost"
MAX_CALLBACK_BYTES = 65_536


@dataclass
class PartnerServices:
    """The payment and VNPost machinery of one hub process (empty when no route file names them)."""

    payment_adapters: dict[str, PaymentPlatformAdapter] = field(default_factory=dict)
    vnpost_adapters: dict[str, VNPostAdapter] = field(default_factory=dict)
    settlement: PaymentSettlement | None = None
    reconciler: PaymentReconciler | None = None
    tracker: ShipmentTracker | None = None
    problems: list[str] = field(default_factory=list)

    async def aclose(self) -> None:
        adapters: list[PaymentPlatformAdapter | VNPostAdapter] = [
            *self.payment_adapters.values(),
            *self.vnpost_adapters.values(),
        ]
        for adapter in adapters:
            with contextlib.suppress(Exception):
                await adapter.aclose()


def build_partner_services(hub: Hub) -> PartnerServices:
    """Adapters of every payment and VNPost target, with the settlement, reconciler and tracker over them.

    A target whose settings are incomplete is left out and named in ``problems`` (its callbacks are
    answered 503 with that sentence) instead of stopping the whole ingress.
    """
    services = PartnerServices()
    for target in hub.routes.targets.values():
        if target.adapter not in (PAYMENT_ADAPTER, VNPOST_ADAPTER):
            continue
        try:
            adapter = hub.build_adapter(target.id)
        except ConfigurationError as exc:
            services.problems.append(str(exc))
            log.error("partner_target_not_configured", target=target.id, error=str(exc))  # noqa: TRY400 - a sentence, no trace
            continue
        if isinstance(adapter, PaymentPlatformAdapter):
            services.payment_adapters[target.id] = adapter
        elif isinstance(adapter, VNPostAdapter):
            services.vnpost_adapters[target.id] = adapter
    if services.payment_adapters:
        services.settlement = PaymentSettlement(hub, services.payment_adapters)
        services.reconciler = PaymentReconciler(services.settlement)
    if services.vnpost_adapters:
        services.tracker = ShipmentTracker(hub, services.vnpost_adapters)
    return services


def create_partner_router(hub: Hub) -> APIRouter:
    """The partner callback endpoints (included by :func:`hub.ingress.create_ingress_app`)."""
    services = build_partner_services(hub)
    tasks: list[asyncio.Task[None]] = []

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if services.reconciler is not None:
            intervals = [a.timing.interval for a in services.payment_adapters.values() if a.timing.interval > 0]
            if intervals:
                tasks.append(asyncio.create_task(services.reconciler.run_every(min(intervals))))
        if services.tracker is not None:
            intervals = [a.poll_interval for a in services.vnpost_adapters.values() if a.poll_interval > 0]
            if intervals:
                tasks.append(asyncio.create_task(services.tracker.run_every(min(intervals))))
        yield
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if services.tracker is not None:
            await services.tracker.aclose()
        await services.aclose()

    router = APIRouter(lifespan=lifespan, tags=["partner callbacks"])

    def not_configured(what: str) -> str:
        problems = " ".join(services.problems)
        return f"This hub has no working {what} target. {problems}".strip()

    @router.post("/v1/callbacks/payment")
    async def payment_callback(request: Request) -> JSONResponse:
        settlement = services.settlement
        if settlement is None:
            detail = not_configured("payment platform")
            return JSONResponse({"MaLoi": "99", "MoTaLoi": "Chưa cấu hình", "detail": detail}, status_code=503)
        body = await request.body()
        if len(body) > MAX_CALLBACK_BYTES:
            return JSONResponse({"MaLoi": "99", "MoTaLoi": "Bản tin quá lớn"}, status_code=413)
        try:
            decision = await settlement.handle_callback(body)
        except StoreUnavailableError as exc:
            log.exception("payment_callback_not_recorded", error=str(exc))
            return JSONResponse(
                {"MaLoi": "99", "MoTaLoi": "Hệ thống tạm thời không ghi nhận được, vui lòng gửi lại"},
                status_code=503,
                headers={"Retry-After": "5"},
            )
        background = None
        if decision.outcome == "accepted" and decision.payment is not None:
            background = BackgroundTask(_fetch_receipt_quietly, settlement, decision.payment.reference)
        return JSONResponse(decision.answer.model_dump(), background=background)

    @router.post("/v1/callbacks/vnpost")
    async def vnpost_callback(request: Request) -> JSONResponse:
        tracker = services.tracker
        if tracker is None:
            detail = not_configured("VNPost")
            return JSONResponse({"Status": "500", "Message": "Chưa cấu hình", "detail": detail}, status_code=503)
        body = await request.body()
        if len(body) > MAX_CALLBACK_BYTES:
            return JSONResponse({"Status": "102", "Message": "Bản tin quá lớn"}, status_code=413)
        try:
            reply = await tracker.handle_callback(body, request.headers.get("x-vnpost-token"))
        except StoreUnavailableError as exc:
            log.exception("vnpost_callback_not_recorded", error=str(exc))
            return JSONResponse(
                {"Status": "500", "Message": "Tạm thời không ghi nhận được, vui lòng gửi lại"},
                status_code=503,
                headers={"Retry-After": "5"},
            )
        return JSONResponse(reply.body, status_code=reply.http_status)

    return router


async def _fetch_receipt_quietly(settlement: PaymentSettlement, reference: str) -> None:
    """After answering the platform: GET_BILL at once (the reconciler retries whatever fails here)."""
    try:
        payment = await settlement.ledger.get(reference)
        if payment is not None:
            await settlement.fetch_receipt(payment)
    except Exception:
        log.exception("payment_receipt_background_failed", reference=reference)
