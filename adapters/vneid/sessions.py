"""Logins in progress, in the hub's database (``login_sessions``), so any ingress process may answer any step."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import CursorResult, delete, func, select, update

from adapters.vneid.tables import LoginSessionRow
from hub.plugin import TableSessions, as_utc, utc_now

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["CODE_LIFETIME", "LOGIN_LIFETIME", "LoginSessions", "sha256_hex"]

#: How long a citizen has from the start of a login to the provider's callback.
LOGIN_LIFETIME = timedelta(minutes=10)
#: How long the one-stop system has to redeem the one-time code.
CODE_LIFETIME = timedelta(minutes=2)


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class LoginSessions:
    """Logins in progress, in the hub's database (shared by every ingress process)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._db = TableSessions(engine, "The hub's database (logins in progress)")

    async def start(self, row: LoginSessionRow, *, at_most: int) -> bool:
        """Store a new login; False (nothing stored) when ``at_most`` logins are already in progress."""
        async with self._db.transaction() as session:
            # Expired logins go at once: an unredeemed identity must not linger in the database.
            await session.execute(delete(LoginSessionRow).where(LoginSessionRow.expires_at < utc_now()))
            if (await session.scalar(select(func.count()).select_from(LoginSessionRow)) or 0) >= at_most:
                return False
            session.add(row)
        return True

    async def get(self, login_id: str) -> LoginSessionRow | None:
        async with self._db.transaction() as session:
            return await session.get(LoginSessionRow, login_id)

    async def finish(self, login_id: str, *, code_hash: str | None, identity: dict[str, Any] | None) -> bool:
        """Close the browser part of a login (once): store the one-time code's hash and the identity."""
        now = utc_now()
        return await self._db.change(
            update(LoginSessionRow)
            .where(LoginSessionRow.id == login_id, LoginSessionRow.completed_at.is_(None))
            .values(completed_at=now, code_hash=code_hash, identity=identity, expires_at=now + CODE_LIFETIME)
        )

    async def redeem(self, code: str, system: str) -> tuple[LoginSessionRow, dict[str, Any]] | None:
        """The identity of a one-time code, once, for the system that started the login; then forgotten."""
        now = utc_now()
        async with self._db.transaction() as session:
            row = (
                await session.execute(select(LoginSessionRow).where(LoginSessionRow.code_hash == sha256_hex(code)))
            ).scalar_one_or_none()
            if row is None or row.identity is None or row.system != system or as_utc(row.expires_at) < now:
                return None
            identity = dict(row.identity)
            spent = cast(
                "CursorResult[Any]",  # an UPDATE answers with a cursor result (its rowcount)
                await session.execute(
                    update(LoginSessionRow)
                    .where(LoginSessionRow.id == row.id, LoginSessionRow.redeemed_at.is_(None))
                    .values(redeemed_at=now, identity=None)
                ),
            )
            if not spent.rowcount:
                return None
            return row, identity
