"""The payment plugin's own tables: ``payments`` (the ledger) and ``payment_callbacks`` (every result received).

They are created by the core's migration 0004 (deployed databases already have them); their definitions here
must stay identical to it, which tests/integration/test_store_migrations.py checks through ``Plugin.tables``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = ["PaymentCallbackRow", "PaymentRow", "PaymentTables"]

_BigId = BigInteger().with_variant(Integer, "sqlite")


class PaymentTables(DeclarativeBase):
    """The declarative base (and ``metadata``) of the plugin's tables, apart from the core's."""


class PaymentRow(PaymentTables):
    """A fee payment the hub asked a payment platform for (``payment.init``), and what became of it.

    ``transaction_id`` (MaGiaoDich) is unique: a replayed or duplicated callback can never settle a
    second payment. Amounts are integers in VND.
    """

    __tablename__ = "payments"
    __table_args__ = (Index("ix_payments_state_next_check_at", "state", "next_check_at"),)

    reference: Mapped[str] = mapped_column(String(64), primary_key=True)
    target: Mapped[str] = mapped_column(String(64), nullable=False)
    partner_code: Mapped[str] = mapped_column(String(64), nullable=False)
    dossier_code: Mapped[str] = mapped_column(String(64), index=True, nullable=False)
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    fee_items: Mapped[list[dict[str, Any]]] = mapped_column(JSON, nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(20), nullable=False)
    payment_url: Mapped[str | None] = mapped_column(Text)
    request_id: Mapped[str] = mapped_column(String(36), unique=True, nullable=False)
    source: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    next_check_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    checks: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    transaction_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    bank_code: Mapped[str | None] = mapped_column(String(32))
    transaction_time: Mapped[str | None] = mapped_column(String(14))
    settled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    settled_by: Mapped[str | None] = mapped_column(String(20))
    completed_message_id: Mapped[str | None] = mapped_column(String(36))
    reflected_message_id: Mapped[str | None] = mapped_column(String(36))
    receipt: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    receipt_message_id: Mapped[str | None] = mapped_column(String(36))
    refund_reference: Mapped[str | None] = mapped_column(String(64), unique=True)
    refund_amount: Mapped[int | None] = mapped_column(BigInteger)
    refund_reason: Mapped[str | None] = mapped_column(Text)
    refunded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)


class PaymentCallbackRow(PaymentTables):
    """Every payment result the hub received (callback) or asked for (QUERY), accepted or rejected, and why."""

    __tablename__ = "payment_callbacks"
    __table_args__ = (Index("ix_payment_callbacks_outcome_received_at", "outcome", "received_at"),)

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    channel: Mapped[str] = mapped_column(String(20), nullable=False)
    reference: Mapped[str | None] = mapped_column(String(64), index=True)
    transaction_id: Mapped[str | None] = mapped_column(String(64))
    partner_code: Mapped[str | None] = mapped_column(String(64))
    result_code: Mapped[str | None] = mapped_column(String(8))
    amount: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str | None] = mapped_column(String(8))
    outcome: Mapped[str] = mapped_column(String(20), nullable=False)
    reason: Mapped[str | None] = mapped_column(String(40))
    detail: Mapped[str | None] = mapped_column(Text)
    answer_code: Mapped[str | None] = mapped_column(String(8))
