"""The payment platform's result callbacks, and the reconciliation that catches what callbacks miss.

* ``POST /v1/callbacks/payment`` – a payment platform's signed result (:mod:`adapters.payment.settlement`);
  answered HTTP 200 with ``{"MaLoi", "MoTaLoi"}`` as the platform expects ("00" taken, "01" unknown
  MaThamChieu, "02" already confirmed, "04" amount, "05" currency, "97" signature, "99" unreadable);
  503 with MaLoi "99" when the hub cannot record it (the platform sends it again).

Inside every ingress process a reconciliation pass runs every ``reconcile_interval`` of the payment
targets (the shortest one); ``hub payments reconcile`` runs one by hand. See docs/payments-and-post.md.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.background import BackgroundTask

from adapters.payment.adapter import PaymentPlatformAdapter
from adapters.payment.reconcile import PaymentReconciler
from adapters.payment.settlement import PaymentSettlement
from adapters.payment.wire import CallbackAnswer, PaymentResult
from hub.plugin import ConfigurationError, Extension, HubContext, StoreUnavailableError

__all__ = ["PAYMENT_ADAPTER", "PaymentServices", "build_payment_services", "create_callback_router", "extend"]

log = structlog.get_logger(__name__)

#: The ``adapter:`` name of a payment platform in the route files.
PAYMENT_ADAPTER = "payment_platform"
MAX_CALLBACK_BYTES = 65_536


@dataclass
class PaymentServices:
    """The payment machinery of one hub process (empty when no route file names a payment platform)."""

    adapters: dict[str, PaymentPlatformAdapter] = field(default_factory=dict)
    settlement: PaymentSettlement | None = None
    reconciler: PaymentReconciler | None = None
    problems: list[str] = field(default_factory=list)

    def not_configured(self) -> str:
        """The sentence that says why there is no working payment target."""
        return f"This hub has no working payment platform target. {' '.join(self.problems)}".strip()

    async def aclose(self) -> None:
        for adapter in self.adapters.values():
            with contextlib.suppress(Exception):
                await adapter.aclose()


def build_payment_services(context: HubContext) -> PaymentServices:
    """Adapters of every payment target, with the settlement and reconciler over them.

    A target whose settings are incomplete is left out and named in ``problems`` (callbacks are then
    answered 503 with that sentence) instead of stopping the whole ingress.
    """
    services = PaymentServices()
    for target in context.targets_using(PAYMENT_ADAPTER):
        try:
            adapter = context.adapter(target)
        except ConfigurationError as exc:
            services.problems.append(str(exc))
            log.error("partner_target_not_configured", target=target, error=str(exc))  # noqa: TRY400 - a sentence, no trace
            continue
        if isinstance(adapter, PaymentPlatformAdapter):
            services.adapters[target] = adapter
    if services.adapters:
        services.settlement = PaymentSettlement(context, services.adapters)
        services.reconciler = PaymentReconciler(services.settlement)
    return services


def create_callback_router(services: PaymentServices) -> APIRouter:
    """``POST /v1/callbacks/payment`` over ``services``."""
    router = APIRouter(tags=["partner callbacks"])

    @router.post(
        "/v1/callbacks/payment",
        response_model=CallbackAnswer,
        responses={
            400: {"model": CallbackAnswer, "description": "The body holds control characters (MaLoi 99)."},
            413: {"model": CallbackAnswer, "description": "The body is larger than a callback can be."},
            429: {"model": CallbackAnswer, "description": "Too many callbacks from one address (Retry-After)."},
            503: {"model": CallbackAnswer, "description": "Not recorded (no payment target, or no store); send again."},
        },
        openapi_extra={
            "security": [],  # the platform signs the body (MaXacThuc) instead
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": PaymentResult.model_json_schema()}},
            },
        },
    )
    async def payment_callback(request: Request) -> JSONResponse:
        settlement = services.settlement
        if settlement is None:
            detail = services.not_configured()
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


def extend(context: HubContext) -> Extension:
    """What the payment plugin adds to an ingress process: the callback endpoint (always there, answering
    503 with the reason when no payment target works), the reconciliation loop, and closing the adapters."""
    services = build_payment_services(context)
    loops = []
    if services.reconciler is not None:
        reconciler = services.reconciler
        intervals = [a.timing.interval for a in services.adapters.values() if a.timing.interval > 0]
        if intervals:
            every = min(intervals)
            loops.append(lambda: reconciler.run_every(every))
    return Extension(routers=[create_callback_router(services)], loops=loops, aclose=services.aclose)


async def _fetch_receipt_quietly(settlement: PaymentSettlement, reference: str) -> None:
    """After answering the platform: GET_BILL at once (the reconciler retries whatever fails here)."""
    try:
        payment = await settlement.ledger.get(reference)
        if payment is not None:
            await settlement.fetch_receipt(payment)
    except Exception:
        log.exception("payment_receipt_background_failed", reference=reference)
