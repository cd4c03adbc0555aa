"""The plugin's own tables: ``shipments`` and ``shipment_events``.

They were created by the hub's migration ``0004`` (deployed databases have them from there); the
definitions here must stay equal to that migration, which tests/integration/test_store_migrations.py
checks through ``Plugin.tables``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Index, Integer, MetaData, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = ["ShipmentEventRow", "ShipmentRow", "ShipmentTables", "metadata"]

_BigId = BigInteger().with_variant(Integer, "sqlite")


class ShipmentTables(DeclarativeBase):
    """The declarative base of the VNPost plugin's tables (its own metadata, apart from the core's)."""


#: Every table of the plugin (``Plugin.tables``).
metadata: MetaData = ShipmentTables.metadata


class ShipmentRow(ShipmentTables):
    """A VNPost parcel the hub ordered (``postal.order``) and the newest tracking status sent on."""

    __tablename__ = "shipments"
    __table_args__ = (Index("ix_shipments_state_next_poll_at", "state", "next_poll_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    target: Mapped[str] = mapped_column(String(64), nullable=False)
    dossier_code: Mapped[str] = mapped_column(String(64), index=True, nullable=False)
    order_number: Mapped[str] = mapped_column(String(64), nullable=False)
    item_code: Mapped[str | None] = mapped_column(String(64), unique=True)
    direction: Mapped[str] = mapped_column(String(10), nullable=False)
    state: Mapped[str] = mapped_column(String(20), nullable=False)
    status: Mapped[int | None] = mapped_column(Integer)
    emitted_status: Mapped[int] = mapped_column(Integer, nullable=False, default=-1)
    last_message_id: Mapped[str | None] = mapped_column(String(36))
    cod_amount: Mapped[int] = mapped_column(BigInteger, nullable=False)
    service_name: Mapped[str | None] = mapped_column(String(50))
    fee: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    last_event_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    next_poll_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancel_reason: Mapped[str | None] = mapped_column(Text)


class ShipmentEventRow(ShipmentTables):
    """One tracking status of a parcel; a status is stored once however often VNPost reports it."""

    __tablename__ = "shipment_events"
    __table_args__ = (UniqueConstraint("item_code", "status", name="uq_shipment_events_item_code_status"),)

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    item_code: Mapped[str] = mapped_column(String(64), nullable=False)
    status: Mapped[int] = mapped_column(Integer, nullable=False)
    status_name: Mapped[str] = mapped_column(String(100), nullable=False)
    event_time: Mapped[str] = mapped_column(String(14), nullable=False)
    post_office: Mapped[str | None] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(String(20), nullable=False)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
