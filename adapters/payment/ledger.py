"""The payment ledger: every payment the hub asked for, the results it received, and refunds.

Kept in the hub's database beside the messages (tables ``payments`` and ``payment_callbacks``, defined in
:mod:`adapters.payment.tables`).
Money is an integer number of VND. ``payments.transaction_id`` (MaGiaoDich) is unique, and a payment
is settled by a conditional update, so two copies of a callback arriving at once settle it once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import IntegrityError

from adapters.payment.tables import PaymentCallbackRow, PaymentRow
from hub.plugin import TableSessions, as_utc, utc_now

if TYPE_CHECKING:
    from sqlalchemy import Select
    from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["UNVERIFIED_REASONS", "CallbackRecord", "Payment", "PaymentLedger", "PaymentState", "SettleOutcome"]

#: Reasons of rejected results that need no secret to cause (anyone may post a callback): their records expire.
UNVERIFIED_REASONS = ("malformed", "unknown_partner", "bad_signature")


class PaymentState:
    INITIATED = "initiated"  # INIT sent (or being sent); waiting for the citizen and the result
    PAID = "paid"
    CANCELLED = "cancelled"  # the citizen cancelled on the payment page
    FAILED = "failed"  # the bank declined, or the platform refused INIT
    EXPIRED = "expired"  # no result within the configured time
    REFUNDING = "refunding"  # REFUND sent, not yet confirmed
    REFUNDED = "refunded"

    #: A success result may still settle a payment in these states (the citizen may retry on the page).
    SETTLEABLE = frozenset({INITIATED, CANCELLED, FAILED, EXPIRED})


SettleOutcome = Literal["settled", "already_settled", "transaction_reused"]


@dataclass(frozen=True, slots=True)
class Payment:
    reference: str
    target: str
    partner_code: str
    dossier_code: str
    amount: int
    currency: str
    fee_items: list[dict[str, Any]]
    description: str | None
    state: str
    payment_url: str | None
    request_id: str
    source: str
    created_at: datetime
    updated_at: datetime
    next_check_at: datetime | None
    checks: int
    transaction_id: str | None
    bank_code: str | None
    transaction_time: str | None
    settled_at: datetime | None
    settled_by: str | None
    completed_message_id: str | None
    reflected_message_id: str | None
    receipt: dict[str, Any] | None
    receipt_message_id: str | None
    refund_reference: str | None
    refund_amount: int | None
    refund_reason: str | None
    refunded_at: datetime | None
    last_error: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "MaThamChieu": self.reference,
            "MaHoSo": self.dossier_code,
            "target": self.target,
            "MaDoiTac": self.partner_code,
            "SoTien": self.amount,
            "MaTienTe": self.currency,
            "state": self.state,
            "UrlThanhToan": self.payment_url,
            "MaGiaoDich": self.transaction_id,
            "MaNganHang": self.bank_code,
            "ThoiGianGD": self.transaction_time,
            "settled_by": self.settled_by,
            "settled_at": self.settled_at.isoformat() if self.settled_at else None,
            "checks": self.checks,
            "completed_message_id": self.completed_message_id,
            "reflected_message_id": self.reflected_message_id,
            "receipt": self.receipt,
            "MaHoanTien": self.refund_reference,
            "refund_amount": self.refund_amount,
            "refunded_at": self.refunded_at.isoformat() if self.refunded_at else None,
            "created_at": self.created_at.isoformat(),
            "last_error": self.last_error,
        }


def _payment(row: PaymentRow) -> Payment:
    return Payment(
        reference=row.reference, target=row.target, partner_code=row.partner_code, dossier_code=row.dossier_code,
        amount=int(row.amount), currency=row.currency, fee_items=list(row.fee_items), description=row.description,
        state=row.state, payment_url=row.payment_url, request_id=row.request_id, source=row.source,
        created_at=as_utc(row.created_at), updated_at=as_utc(row.updated_at),
        next_check_at=as_utc(row.next_check_at), checks=row.checks, transaction_id=row.transaction_id,
        bank_code=row.bank_code, transaction_time=row.transaction_time, settled_at=as_utc(row.settled_at),
        settled_by=row.settled_by, completed_message_id=row.completed_message_id,
        reflected_message_id=row.reflected_message_id, receipt=row.receipt,
        receipt_message_id=row.receipt_message_id, refund_reference=row.refund_reference,
        refund_amount=None if row.refund_amount is None else int(row.refund_amount),
        refund_reason=row.refund_reason, refunded_at=as_utc(row.refunded_at), last_error=row.last_error,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class CallbackRecord:
    id: int
    received_at: datetime
    channel: str
    reference: str | None
    transaction_id: str | None
    partner_code: str | None
    result_code: str | None
    amount: int | None
    currency: str | None
    outcome: str
    reason: str | None
    detail: str | None
    answer_code: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "received_at": self.received_at.isoformat(),
            "channel": self.channel,
            "MaThamChieu": self.reference,
            "MaGiaoDich": self.transaction_id,
            "MaDoiTac": self.partner_code,
            "MaLoi": self.result_code,
            "SoTien": self.amount,
            "MaTienTe": self.currency,
            "outcome": self.outcome,
            "reason": self.reason,
            "detail": self.detail,
            "answer": self.answer_code,
        }


class PaymentLedger:
    """Reads and writes the ledger through the hub's database engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._db = TableSessions(engine, "The payment ledger")

    # ------------------------------------------------------------------ orders

    async def open_order(
        self,
        *,
        reference: str,
        target: str,
        partner_code: str,
        dossier_code: str,
        amount: int,
        currency: str,
        fee_items: list[dict[str, Any]],
        description: str | None,
        request_id: str,
        source: str,
        check_after: timedelta,
    ) -> tuple[Payment, bool]:
        """Record a new payment before INIT is sent; a request seen before returns its payment and False."""
        existing = await self.by_request(request_id)
        if existing is not None:
            return existing, False
        now = utc_now()
        row = PaymentRow(
            reference=reference, target=target, partner_code=partner_code, dossier_code=dossier_code,
            amount=amount, currency=currency, fee_items=fee_items, description=description,
            state=PaymentState.INITIATED, request_id=request_id, source=source, created_at=now, updated_at=now,
            next_check_at=now + check_after, checks=0,
        )  # fmt: skip
        try:
            async with self._db.transaction() as session:
                session.add(row)
        except IntegrityError:
            existing = await self.by_request(request_id)
            if existing is None:
                raise
            return existing, False
        return _payment(row), True

    async def get(self, reference: str) -> Payment | None:
        return await self._one(select(PaymentRow).where(PaymentRow.reference == reference))

    async def by_request(self, request_id: str) -> Payment | None:
        return await self._one(select(PaymentRow).where(PaymentRow.request_id == request_id))

    async def for_dossier(self, dossier_code: str) -> list[Payment]:
        return await self._all(
            select(PaymentRow).where(PaymentRow.dossier_code == dossier_code).order_by(PaymentRow.created_at)
        )

    async def recent(self, *, state: str | None = None, limit: int = 100) -> list[Payment]:
        statement = select(PaymentRow).order_by(PaymentRow.created_at.desc()).limit(limit)
        if state is not None:
            statement = statement.where(PaymentRow.state == state)
        return await self._all(statement)

    async def _one(self, statement: Select[PaymentRow]) -> Payment | None:
        row = await self._db.one_or_none(statement)
        return None if row is None else _payment(row)

    async def _all(self, statement: Select[PaymentRow]) -> list[Payment]:
        return [_payment(row) for row in await self._db.all(statement)]

    async def set_payment_url(self, reference: str, url: str) -> None:
        await self._update(reference, payment_url=url, last_error=None)

    async def mark_unpaid(self, reference: str, state: str, reason: str) -> bool:
        """An INIT refused, a cancelled/failed/expired payment: only while nobody has paid it."""
        return await self._db.change(
            update(PaymentRow)
            .where(PaymentRow.reference == reference, PaymentRow.state == PaymentState.INITIATED)
            .values(state=state, last_error=reason, next_check_at=None, updated_at=utc_now())
        )

    async def note_error(self, reference: str, reason: str) -> None:
        await self._update(reference, last_error=reason)

    async def _update(self, reference: str, **values: Any) -> None:
        await self._db.change(
            update(PaymentRow).where(PaymentRow.reference == reference).values(**values, updated_at=utc_now())
        )

    # ------------------------------------------------------------------ results

    async def settle(
        self,
        reference: str,
        *,
        transaction_id: str,
        bank_code: str | None,
        transaction_time: str | None,
        settled_by: str,
    ) -> SettleOutcome:
        """Mark a payment paid by ``transaction_id``, once: the first caller wins, every other copy loses."""
        now = utc_now()
        try:
            settled = await self._db.change(
                update(PaymentRow)
                .where(
                    PaymentRow.reference == reference,
                    PaymentRow.transaction_id.is_(None),
                    PaymentRow.state.in_(list(PaymentState.SETTLEABLE)),
                )
                .values(
                    state=PaymentState.PAID, transaction_id=transaction_id, bank_code=bank_code,
                    transaction_time=transaction_time, settled_at=now, settled_by=settled_by,
                    next_check_at=None, last_error=None, updated_at=now,
                )
            )  # fmt: skip
        except IntegrityError:
            return "transaction_reused"  # MaGiaoDich already settled another payment
        return "settled" if settled else "already_settled"

    async def by_transaction(self, transaction_id: str) -> Payment | None:
        return await self._one(select(PaymentRow).where(PaymentRow.transaction_id == transaction_id))

    async def record_result(
        self,
        *,
        channel: str,
        outcome: str,
        reason: str | None,
        detail: str | None,
        answer_code: str | None,
        reference: str | None = None,
        transaction_id: str | None = None,
        partner_code: str | None = None,
        result_code: str | None = None,
        amount: int | None = None,
        currency: str | None = None,
    ) -> None:
        """Keep one received result (callback or QUERY answer) with what the hub made of it."""
        async with self._db.transaction() as session:
            session.add(
                PaymentCallbackRow(
                    received_at=utc_now(), channel=channel, reference=_cut(reference, 64),
                    transaction_id=_cut(transaction_id, 64), partner_code=_cut(partner_code, 64),
                    result_code=_cut(result_code, 8), amount=amount, currency=_cut(currency, 8), outcome=outcome,
                    reason=reason, detail=detail, answer_code=answer_code,
                )
            )  # fmt: skip

    async def forget_unverified(self, *, older_than: datetime, keep: int) -> int:
        """Delete the records of rejected results that anyone could have sent (unreadable, unknown partner,
        wrong signature): those received before ``older_than``, and all but the newest ``keep``. Returns how
        many went. Accepted results and those the platform signed stay."""
        unverified = (PaymentCallbackRow.outcome == "rejected") & PaymentCallbackRow.reason.in_(UNVERIFIED_REASONS)
        async with self._db.transaction() as session:
            newest_kept = (
                await session.scalars(
                    select(PaymentCallbackRow.id)
                    .where(unverified)
                    .order_by(PaymentCallbackRow.id.desc())
                    .offset(keep)
                    .limit(1)
                )
            ).one_or_none()
            condition = PaymentCallbackRow.received_at < older_than
            if newest_kept is not None:
                condition = or_(condition, PaymentCallbackRow.id <= newest_kept)
            result = await session.execute(delete(PaymentCallbackRow).where(unverified, condition))
        return int(getattr(result, "rowcount", 0) or 0)

    async def results(
        self, *, reference: str | None = None, outcome: str | None = None, limit: int = 200
    ) -> list[CallbackRecord]:
        statement = select(PaymentCallbackRow).order_by(PaymentCallbackRow.id.desc()).limit(limit)
        if reference is not None:
            statement = statement.where(PaymentCallbackRow.reference == reference)
        if outcome is not None:
            statement = statement.where(PaymentCallbackRow.outcome == outcome)
        rows = await self._db.all(statement)
        return [
            CallbackRecord(
                id=r.id, received_at=as_utc(r.received_at), channel=r.channel, reference=r.reference,
                transaction_id=r.transaction_id, partner_code=r.partner_code, result_code=r.result_code,
                amount=None if r.amount is None else int(r.amount), currency=r.currency, outcome=r.outcome,
                reason=r.reason, detail=r.detail, answer_code=r.answer_code,
            )
            for r in rows
        ]  # fmt: skip

    # ------------------------------------------------------------------ follow-up of paid payments

    async def set_completed_message(self, reference: str, message_id: str) -> None:
        await self._update(reference, completed_message_id=message_id)

    async def set_reflected_message(self, reference: str, message_id: str) -> None:
        await self._update(reference, reflected_message_id=message_id)

    async def set_receipt(self, reference: str, receipt: dict[str, Any]) -> None:
        await self._update(reference, receipt=receipt)

    async def set_receipt_message(self, reference: str, message_id: str) -> None:
        await self._update(reference, receipt_message_id=message_id)

    async def needing_follow_up(self, *, settled_before: datetime, limit: int = 200) -> list[Payment]:
        """Paid payments whose messages or receipt are still missing (the hub stopped half-way, or the
        platform had no receipt yet)."""
        return await self._all(
            select(PaymentRow)
            .where(
                PaymentRow.transaction_id.is_not(None),
                PaymentRow.settled_at <= settled_before,
                or_(
                    PaymentRow.completed_message_id.is_(None),
                    PaymentRow.reflected_message_id.is_(None),
                    PaymentRow.receipt_message_id.is_(None),
                ),
            )
            .order_by(PaymentRow.settled_at)
            .limit(limit)
        )

    # ------------------------------------------------------------------ reconciliation

    async def due_for_check(self, now: datetime, limit: int = 100) -> list[Payment]:
        """Payments still waiting for a result whose next QUERY is due."""
        return await self._all(
            select(PaymentRow)
            .where(PaymentRow.state == PaymentState.INITIATED, PaymentRow.next_check_at <= now)
            .order_by(PaymentRow.next_check_at)
            .limit(limit)
        )

    async def claim_check(self, payment: Payment, *, now: datetime, next_check_at: datetime) -> bool:
        """Take the next QUERY of ``payment`` (several hub processes may reconcile at once): True when
        this caller got it."""
        return await self._db.change(
            update(PaymentRow)
            .where(
                PaymentRow.reference == payment.reference,
                PaymentRow.state == PaymentState.INITIATED,
                PaymentRow.next_check_at <= now,
            )
            .values(next_check_at=next_check_at, checks=PaymentRow.checks + 1, updated_at=now)
        )

    # ------------------------------------------------------------------ refunds

    async def begin_refund(self, reference: str, *, refund_reference: str, amount: int, reason: str) -> bool:
        """paid -> refunding with the refund's own reference; False when the payment is not paid."""
        return await self._db.change(
            update(PaymentRow)
            .where(PaymentRow.reference == reference, PaymentRow.state == PaymentState.PAID)
            .values(
                state=PaymentState.REFUNDING, refund_reference=refund_reference, refund_amount=amount,
                refund_reason=reason, updated_at=utc_now(),
            )
        )  # fmt: skip

    async def finish_refund(self, reference: str, *, refunded: bool, error: str | None = None) -> None:
        """refunding -> refunded, or back to paid when the platform refused the refund."""
        now = utc_now()
        values: dict[str, Any] = (
            {"state": PaymentState.REFUNDED, "refunded_at": now, "last_error": None}
            if refunded
            else {"state": PaymentState.PAID, "refund_reference": None, "refund_amount": None, "last_error": error}
        )
        await self._db.change(
            update(PaymentRow)
            .where(PaymentRow.reference == reference, PaymentRow.state == PaymentState.REFUNDING)
            .values(**values, updated_at=now)
        )


def _cut(value: str | None, length: int) -> str | None:
    return None if value is None else value[:length]


def payment_states() -> Sequence[str]:
    return (
        PaymentState.INITIATED, PaymentState.PAID, PaymentState.CANCELLED, PaymentState.FAILED,
        PaymentState.EXPIRED, PaymentState.REFUNDING, PaymentState.REFUNDED,
    )  # fmt: skip
