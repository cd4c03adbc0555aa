"""The payment platform's result callbacks, and the reconciliation that catches what callbacks miss.

* ``POST /v1/callbacks/payment`` – a payment platform's signed result (:mod:`adapters.payment.settlement`);
  answered HTTP 200 with ``{"MaLoi", "MoTaLoi"}`` as the platform expects ("00" taken, "01" unknown
  MaThamChieu, "02" already confirmed, "04" amount, "05" currency, "97" signature, "99" unreadable);
  503 with MaLoi "99" when the hub cannot record it (the platform sends it again). Before anything is
  recorded: 429 when one address sends more than ``CALLBACK_RATE`` a second, 413 past ``MAX_CALLBACK_BYTES``
  (the rest is not read), 400 for a control character in the JSON. Records of rejected callbacks that need
  no secret to send expire (``UNVERIFIED_KEPT_FOR``, at most ``UNVERIFIED_KEPT_AT_MOST``).

Inside every ingress process a reconciliation pass runs every ``reconcile_interval`` of the payment
targets (the shortest one); ``hub payments reconcile`` runs one by hand. See docs/payments-and-post.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from dataclasses import dataclass, field
from datetime import timedelta

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.background import BackgroundTask

from adapters.payment.adapter import PaymentPlatformAdapter
from adapters.payment.ledger import PaymentLedger
from adapters.payment.reconcile import PaymentReconciler
from adapters.payment.settlement import PaymentSettlement
from adapters.payment.wire import CallbackAnswer, PaymentResult
from hub.plugin import (
    BodyTooLargeError,
    ConfigurationError,
    Extension,
    HubContext,
    RateLimiter,
    StoreUnavailableError,
    json_problem,
    read_body,
    utc_now,
)

__all__ = ["PAYMENT_ADAPTER", "PaymentServices", "build_payment_services", "create_callback_router", "extend"]

log = structlog.get_logger(__name__)

#: The ``adapter:`` name of a payment platform in the route files.
PAYMENT_ADAPTER = "payment_platform"
MAX_CALLBACK_BYTES = 65_536
#: Callbacks one address may send: the platform sends one per payment; junk beyond this is answered 429.
CALLBACK_RATE = 5.0
CALLBACK_BURST = 50
#: Records of rejected callbacks anyone could have sent (unsigned, unreadable) are kept this long, and at
#: most this many; a clean-up removes the rest every ``_CLEAN_UP_EVERY``.
UNVERIFIED_KEPT_FOR = timedelta(days=30)
UNVERIFIED_KEPT_AT_MOST = 10_000
_CLEAN_UP_EVERY = 3600.0


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
    limiter = RateLimiter()

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
        address = request.client.host if request.client else "-"
        wait = limiter.try_take(address, rate=CALLBACK_RATE, burst=CALLBACK_BURST)
        if wait is not None:
            log.warning("payment_callbacks_throttled", address=address)
            detail = (
                f"Too many payment callbacks from {address}: at most {CALLBACK_RATE:g} per second "
                f"(bursts of {CALLBACK_BURST}). Send it again after Retry-After."
            )
            return JSONResponse(
                {"MaLoi": "99", "MoTaLoi": "Quá nhiều bản tin, vui lòng gửi lại sau", "detail": detail},
                status_code=429,
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )
        try:
            body = await read_body(request, MAX_CALLBACK_BYTES)
        except BodyTooLargeError as exc:
            return JSONResponse({"MaLoi": "99", "MoTaLoi": "Bản tin quá lớn", "detail": str(exc)}, status_code=413)
        if (problem := json_problem(body)) is not None:
            log.warning("payment_callback_refused", reason="control_characters", address=address)
            return JSONResponse(
                {"MaLoi": "99", "MoTaLoi": "Không đọc được bản tin", "detail": problem}, status_code=400
            )
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
    if services.settlement is not None:
        ledger = services.settlement.ledger

        async def clean_up_loop() -> None:
            while True:
                await forget_unverified_callbacks(ledger)
                await asyncio.sleep(_CLEAN_UP_EVERY)

        loops.append(clean_up_loop)
    return Extension(routers=[create_callback_router(services)], loops=loops, aclose=services.aclose)


async def forget_unverified_callbacks(ledger: PaymentLedger) -> None:
    """One clean-up of the records of rejected callbacks anyone could have sent (see UNVERIFIED_KEPT_FOR)."""
    try:
        removed = await ledger.forget_unverified(
            older_than=utc_now() - UNVERIFIED_KEPT_FOR, keep=UNVERIFIED_KEPT_AT_MOST
        )
    except StoreUnavailableError as exc:
        log.warning("payment_callbacks_clean_up_waiting", error=str(exc))
        return
    if removed:
        log.info("payment_callbacks_forgotten", count=removed)


async def _fetch_receipt_quietly(settlement: PaymentSettlement, reference: str) -> None:
    """After answering the platform: GET_BILL at once (the reconciler retries whatever fails here)."""
    try:
        payment = await settlement.ledger.get(reference)
        if payment is not None:
            await settlement.fetch_receipt(payment)
    except Exception:
        log.exception("payment_receipt_background_failed", reference=reference)
