"""Tables of the message store. Changes need an Alembic migration in ``migrations/versions``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "AuditRecordRow",
    "Base",
    "ConsoleSessionRow",
    "DeliveryEventRow",
    "DeliveryRow",
    "DossierCursorRow",
    "MessageRow",
]

_BigId = BigInteger().with_variant(Integer, "sqlite")


class Base(DeclarativeBase):
    pass


class MessageRow(Base):
    """One accepted message. ``seq`` orders messages (and so the states of one dossier)."""

    __tablename__ = "messages"
    __table_args__ = (UniqueConstraint("source", "idempotency_key", name="uq_messages_source_idempotency_key"),)

    seq: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(36), unique=True, nullable=False)
    type: Mapped[str] = mapped_column(String(100), nullable=False)
    source: Mapped[str] = mapped_column(String(64), nullable=False)
    dossier_code: Mapped[str | None] = mapped_column(String(64), index=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    accepted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class DeliveryRow(Base):
    """The state of one message towards one target."""

    __tablename__ = "deliveries"
    __table_args__ = (Index("ix_deliveries_target_state", "target", "state"),)

    message_id: Mapped[str] = mapped_column(String(36), ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True)
    target: Mapped[str] = mapped_column(String(64), primary_key=True)
    route: Mapped[str] = mapped_column(String(64), nullable=False)
    state: Mapped[str] = mapped_column(String(20), nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    #: An attempt may have reached the target unseen (no answer came): any later copy is looked up
    #: at the target before it is sent (hub/worker.py, ``_in_doubt``). Set once, never cleared.
    in_doubt: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, server_default=false())
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class DeliveryEventRow(Base):
    """The timeline of a delivery: accepted, each attempt's failure, delivered, dead-lettered, replayed."""

    __tablename__ = "delivery_events"
    __table_args__ = (Index("ix_delivery_events_target_kind_at", "target", "kind", "at"),)

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("messages.id", ondelete="CASCADE"), index=True, nullable=False
    )
    target: Mapped[str | None] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(30), nullable=False)
    attempt: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str | None] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class DossierCursorRow(Base):
    """The newest dossier state (by ``seq``) delivered to a target; older ones are never sent after it."""

    __tablename__ = "dossier_cursors"

    target: Mapped[str] = mapped_column(String(64), primary_key=True)
    dossier_code: Mapped[str] = mapped_column(String(64), primary_key=True)
    delivered_seq: Mapped[int] = mapped_column(BigInteger, nullable=False)


class AuditRecordRow(Base):
    """Who asked a national system about whom, why, when, and what came of it (population DB, VNeID).

    ``subject`` is the citizen's ID number masked (``00********45``); the full number is never stored.
    """

    __tablename__ = "audit_records"
    __table_args__ = (Index("ix_audit_records_at", "at"), Index("ix_audit_records_system_at", "system", "at"))

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    request_id: Mapped[str] = mapped_column(String(36), nullable=False)
    kind: Mapped[str] = mapped_column(String(100), nullable=False)
    route: Mapped[str] = mapped_column(String(64), nullable=False)
    system: Mapped[str] = mapped_column(String(64), nullable=False)
    official: Mapped[str | None] = mapped_column(String(100))
    agency: Mapped[str | None] = mapped_column(String(100))
    purpose: Mapped[str | None] = mapped_column(String(100))
    subject: Mapped[str | None] = mapped_column(String(40))
    outcome: Mapped[str] = mapped_column(String(20), nullable=False)
    detail: Mapped[str | None] = mapped_column(Text)


class ConsoleSessionRow(Base):
    """One console login, kept server side: the cookie carries a random id, signed; the row says whose it
    is and until when. Logging out deletes the row, so a copy of the cookie is no good afterwards.

    ``id`` is the SHA-256 of that random id (hex): the table alone logs nobody in. Rows past ``expires_at``
    are deleted at the next login.
    """

    __tablename__ = "console_sessions"
    __table_args__ = (Index("ix_console_sessions_expires_at", "expires_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_name: Mapped[str] = mapped_column(String(200), nullable=False)
    role: Mapped[str] = mapped_column(String(20), nullable=False)
    method: Mapped[str] = mapped_column(String(10), nullable=False)
    csrf: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
