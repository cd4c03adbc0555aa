"""Console logins kept server side (the core table ``console_sessions``).

A login adds a row; every console request finds it by the cookie's random id; logging out deletes it, so
a copy of the cookie (from a shared computer, a proxy's log) is no good afterwards, on every ingress
process that shares the database. Rows past their end are deleted at the next login.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from hub.console._auth import Role, Session
from hub.store import TableSessions, as_utc, utc_now
from hub.store.models import ConsoleSessionRow

__all__ = ["ConsoleSessions"]


def _key(token: str) -> str:
    """The row's id for a cookie's random id: the table alone logs nobody in."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class ConsoleSessions:
    """The console's logins in the hub's database."""

    def __init__(self, engine: AsyncEngine, *, lifetime_seconds: float) -> None:
        self._tables = TableSessions(engine, "The console's list of logins")
        self.lifetime_seconds = lifetime_seconds

    async def open(self, user: str, role: Role, method: str) -> tuple[str, Session]:
        """A new login: the random id for its cookie, and the session. Deletes the logins that have ended."""
        token = secrets.token_urlsafe(32)
        session = Session(user, role, secrets.token_urlsafe(24), method, key=_key(token))
        now = utc_now()
        async with self._tables.transaction() as db:
            await db.execute(delete(ConsoleSessionRow).where(ConsoleSessionRow.expires_at < now))
            db.add(
                ConsoleSessionRow(
                    id=session.key,
                    user_name=user,
                    role=role.value,
                    method=method,
                    csrf=session.csrf,
                    created_at=now,
                    expires_at=now + timedelta(seconds=self.lifetime_seconds),
                )
            )
        return token, session

    async def find(self, token: str) -> Session | None:
        """The login of a cookie's random id; None when it ended (logged out, expired) or never was."""
        row = await self._tables.one_or_none(select(ConsoleSessionRow).where(ConsoleSessionRow.id == _key(token)))
        if row is None or as_utc(row.expires_at) <= utc_now() or row.role not in {r.value for r in Role}:
            return None
        return Session(row.user_name, Role(row.role), row.csrf, row.method, key=row.id)

    async def end(self, session: Session) -> None:
        """Log ``session`` out everywhere."""
        await self._tables.change(delete(ConsoleSessionRow).where(ConsoleSessionRow.id == session.key))
