"""The VNeID plugin's own table: ``login_sessions`` (browser logins in progress through the hub).

It is created by the core's migration 0003 (deployed databases already have it); its definition here must
stay identical to it, which tests/integration/test_store_migrations.py checks through ``Plugin.tables``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Index, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = ["LoginSessionRow", "VNeIDTables"]


class VNeIDTables(DeclarativeBase):
    """The declarative base (and ``metadata``) of the plugin's tables, apart from the core's."""


class LoginSessionRow(VNeIDTables):
    """A browser login through the hub, from its start to the one-stop system redeeming its code.

    ``identity`` holds the verified identity only between the provider's callback and the
    redemption (at most a few minutes); it is cleared when the code is redeemed or expires.
    """

    __tablename__ = "login_sessions"
    __table_args__ = (Index("ix_login_sessions_expires_at", "expires_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    route: Mapped[str] = mapped_column(String(64), nullable=False)
    system: Mapped[str] = mapped_column(String(64), nullable=False)
    return_to: Mapped[str] = mapped_column(Text, nullable=False)
    client_state: Mapped[str | None] = mapped_column(String(500))
    browser_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    nonce: Mapped[str] = mapped_column(String(100), nullable=False)
    code_verifier: Mapped[str] = mapped_column(String(200), nullable=False)
    code_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    identity: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    redeemed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
