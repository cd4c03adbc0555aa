"""Callbacks from partner systems, and the periodic checks that catch what callbacks miss.

* ``POST /v1/callbacks/payment`` – a payment platform's signed result (:mod:`hub.payments.settlement`);
  answered HTTP 200 with ``{"MaLoi", "MoTaLoi"}`` as the platform expects ("00" taken, "01" unknown
  MaThamChieu, "02" already confirmed, "04" amount, "05" currency, "97" signature, "99" unreadable);
  503 with MaLoi "99" when the hub cannot record it (the platform sends it again).

Inside every ingress process a loop runs (when the route files have such targets): payment
reconciliation every ``reconcile_interval`` of the payment target. ``hub payments reconcile`` runs one
pass by hand. VNPost's callback and polling are the VNPost plugin's (:mod:`adapters.vnpost.callbacks`).
See docs/payments-and-post.md.
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
from hub.bootstrap import Hub
from hub.errors import ConfigurationError, StoreUnavailableError
from hub.payments.reconcile import PaymentReconciler
from hub.payments.settlement import PaymentSettlement

__all__ = ["PartnerServices", "build_partner_services", "create_partner_router"]

log = structlog.get_logger(__name__)

PAYMENT_ADAPTER = "payment_platform"
MAX_CALLBACK_BYTES = 65_536


@dataclass
class PartnerServices:
    """The payment machinery of one hub process (empty when no route file names it)."""

    payment_adapters: dict[str, PaymentPlatformAdapter] = field(default_factory=dict)
    settlement: PaymentSettlement | None = None
    reconciler: PaymentReconciler | None = None
    problems: list[str] = field(default_factory=list)

    async def aclose(self) -> None:
        for adapter in self.payment_adapters.values():
            with contextlib.suppress(Exception):
                await adapter.aclose()


def build_partner_services(hub: Hub) -> PartnerServices:
    """Adapters of every payment target, with the settlement and reconciler over them.

    A target whose settings are incomplete is left out and named in ``problems`` (its callbacks are
    answered 503 with that sentence) instead of stopping the whole ingress.
    """
    services = PartnerServices()
    for target in hub.routes.targets.values():
        if target.adapter != PAYMENT_ADAPTER:
            continue
        try:
            adapter = hub.build_adapter(target.id)
        except ConfigurationError as exc:
            services.problems.append(str(exc))
            log.error("partner_target_not_configured", target=target.id, error=str(exc))  # noqa: TRY400 - a sentence, no trace
            continue
        if isinstance(adapter, PaymentPlatformAdapter):
            services.payment_adapters[target.id] = adapter
    if services.payment_adapters:
        services.settlement = PaymentSettlement(hub, services.payment_adapters)
        services.reconciler = PaymentReconciler(services.settlement)
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
        yield
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
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

    return router


async def _fetch_receipt_quietly(settlement: PaymentSettlement, reference: str) -> None:
    """After answering the platform: GET_BILL at once (the reconciler retries whatever fails here)."""
    try:
        payment = await settlement.ledger.get(reference)
        if payment is not None:
            await settlement.fetch_receipt(payment)
    except Exception:
        log.exception("payment_receipt_background_failed", reference=reference)
