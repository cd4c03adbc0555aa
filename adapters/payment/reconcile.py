"""Reconciliation: what result callbacks missed, the hub asks for.

One pass (``hub payments reconcile``, and every ``reconcile_interval`` inside each ingress process):

1. every payment still ``initiated`` whose next check is due is QUERY'd — the first time
   ``query_after`` after INIT, then every ``query_every``. A signed "paid" answer settles it exactly
   as a callback would (the ledger makes the two race-free); "cancelled"/"failed" close it; after
   ``give_up_after`` without a result it is marked ``expired`` (a late success still settles it).
   Several processes may reconcile at once: each QUERY is claimed in the database first.
2. every paid payment whose follow-up is incomplete (``payment.completed``, the portal's dossier
   state, the receipt) gets it: GET_BILL fetches the receipt, ``payment.receipt`` sends it on.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog

from adapters.payment.ledger import Payment, PaymentState
from adapters.payment.settlement import PaymentSettlement
from adapters.payment.wire import RESULT_NOT_FOUND, RESULT_PENDING
from hub.plugin import ConfigurationError, DeliveryError, StoreUnavailableError

__all__ = ["PaymentReconciler", "ReconcileReport"]

log = structlog.get_logger(__name__)

#: A payment settled less than this long ago is left to the callback handler's own follow-up.
FOLLOW_UP_GRACE = timedelta(seconds=2)


@dataclass
class ReconcileReport:
    queried: int = 0
    settled: int = 0
    closed_unpaid: int = 0
    rejected: int = 0
    still_waiting: int = 0
    expired: int = 0
    query_failures: int = 0
    followed_up: int = 0

    def summary(self) -> str:
        return (
            f"{self.queried} payment(s) queried: {self.settled} settled, {self.closed_unpaid} closed unpaid, "
            f"{self.expired} expired, {self.still_waiting} still waiting, {self.rejected} answer(s) rejected, "
            f"{self.query_failures} QUERY failure(s); {self.followed_up} paid payment(s) followed up."
        )


class PaymentReconciler:
    def __init__(self, settlement: PaymentSettlement) -> None:
        self.settlement = settlement
        self.ledger = settlement.ledger

    async def run_once(self, *, now: datetime | None = None) -> ReconcileReport:
        now = now or datetime.now(UTC)
        report = ReconcileReport()
        for payment in await self.ledger.due_for_check(now):
            adapter = self.settlement.by_target.get(payment.target)
            if adapter is None:
                log.warning("payment_target_gone", reference=payment.reference, target=payment.target)
                continue
            if not await self.ledger.claim_check(payment, now=now, next_check_at=now + adapter.timing.query_every):
                continue  # another process is asking about it
            await self._query(payment, now, report)
        await self._follow_up(now, report)
        if report.queried or report.followed_up:
            log.info("payments_reconciled", **report.__dict__)
        return report

    async def check_now(self, reference: str) -> ReconcileReport:
        """QUERY one payment at once, whether or not it is due (an official checks a citizen's claim)."""
        now = datetime.now(UTC)
        report = ReconcileReport()
        payment = await self.ledger.get(reference)
        if payment is None:
            raise ConfigurationError(f"The hub has no payment with MaThamChieu {reference}; check the reference.")
        if payment.state in PaymentState.SETTLEABLE:
            await self._query(payment, now, report)
        await self._follow_up(now, report)
        return report

    async def _query(self, payment: Payment, now: datetime, report: ReconcileReport) -> None:
        adapter = self.settlement.by_target.get(payment.target)
        if adapter is None:
            return
        report.queried += 1
        try:
            result = await adapter.query(payment.reference)
        except DeliveryError as exc:
            report.query_failures += 1
            log.warning("payment_query_failed", reference=payment.reference, reason=exc.reason)
            await self.ledger.note_error(payment.reference, f"QUERY failed: {exc.reason}")
            return
        if result.MaLoi == RESULT_NOT_FOUND and payment.payment_url is None:
            reason = (
                f"Payment {payment.reference} never reached the platform (INIT failed and the platform has no such "
                "payment); marked failed. The one-stop system can start a new payment."
            )
            await self.ledger.mark_unpaid(payment.reference, PaymentState.FAILED, reason)
            report.closed_unpaid += 1
            return
        if result.MaLoi in (RESULT_PENDING, RESULT_NOT_FOUND):
            if now - payment.created_at >= adapter.timing.give_up_after:
                reason = (
                    f"Payment {payment.reference} got no result within {adapter.timing.give_up_after} "
                    f"(the platform says MaLoi {result.MaLoi}); marked expired. A late success still settles it."
                )
                await self.ledger.mark_unpaid(payment.reference, PaymentState.EXPIRED, reason)
                report.expired += 1
            else:
                report.still_waiting += 1
            return
        decision = await self.settlement.accept_result(result, channel="query")
        if decision.outcome == "accepted":
            report.settled += 1
        elif decision.outcome == "recorded":
            report.closed_unpaid += 1
        else:
            report.rejected += 1

    async def _follow_up(self, now: datetime, report: ReconcileReport) -> None:
        for payment in await self.ledger.needing_follow_up(settled_before=now - FOLLOW_UP_GRACE):
            await self.settlement.send_on(payment)
            await self.settlement.fetch_receipt(payment)
            report.followed_up += 1

    async def run_every(self, interval: float) -> None:
        """Run a pass every ``interval`` seconds until cancelled; failures are logged, never fatal."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.run_once()
            except StoreUnavailableError as exc:
                log.warning("payments_reconcile_waiting", error=str(exc))
            except Exception:
                log.exception("payments_reconcile_failed")
