"""The audit trail of identity lookups and logins: who asked about whom, why, when, with what outcome.

Every request whose schema can say who is asking (:class:`Audited`) is recorded, whatever its
outcome (answered, refused, timed out, throttled). The citizen's ID number is stored masked;
``hub audit --since ... --system ...`` lists the records.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from sqlalchemy import select

from hub.observability import mask_text, mask_value
from hub.store import TableSessions, as_utc, utc_now
from hub.store.models import AuditRecordRow
from schemas.audit import AuditFacts

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["AuditEntry", "AuditFacts", "AuditLog", "Audited"]


@runtime_checkable
class Audited(Protocol):
    """A validated request model whose calls are audited."""

    def audit_facts(self) -> AuditFacts: ...


@dataclass(frozen=True, slots=True)
class AuditEntry:
    at: datetime
    request_id: str
    kind: str
    route: str
    system: str
    official: str | None
    agency: str | None
    purpose: str | None
    subject: str | None
    outcome: str
    detail: str | None = None

    def as_json(self) -> dict[str, str | None]:
        return {
            "at": self.at.isoformat(),
            "request_id": self.request_id,
            "kind": self.kind,
            "route": self.route,
            "system": self.system,
            "official": self.official,
            "agency": self.agency,
            "purpose": self.purpose,
            "subject": self.subject,
            "outcome": self.outcome,
            "detail": self.detail,
        }


class AuditLog:
    """Writes and reads audit records in the hub's database (the message store's engine)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._db = TableSessions(engine, "The audit trail")

    async def record(
        self,
        *,
        request_id: str,
        kind: str,
        route: str,
        system: str,
        facts: AuditFacts,
        outcome: str,
        detail: str | None = None,
        at: datetime | None = None,
    ) -> AuditEntry:
        """Store one record; the subject is masked here, so callers pass the plain ID number."""
        entry = AuditEntry(
            at=at or utc_now(),
            request_id=request_id,
            kind=kind,
            route=route,
            system=system,
            official=facts.official,
            agency=facts.agency,
            purpose=facts.purpose,
            subject=mask_value(facts.subject) if facts.subject else None,
            outcome=outcome,
            detail=mask_text(detail)[:2000] if detail else None,
        )
        async with self._db.transaction() as session:
            session.add(
                AuditRecordRow(
                    at=entry.at, request_id=entry.request_id, kind=entry.kind, route=entry.route,
                    system=entry.system, official=entry.official, agency=entry.agency, purpose=entry.purpose,
                    subject=entry.subject, outcome=entry.outcome, detail=entry.detail,
                )
            )  # fmt: skip
        return entry

    async def entries(
        self,
        *,
        since: datetime,
        until: datetime | None = None,
        system: str | None = None,
        kind: str | None = None,
        official: str | None = None,
        limit: int = 1000,
    ) -> list[AuditEntry]:
        """Records from ``since`` (inclusive) to ``until`` (exclusive), oldest first."""
        statement = select(AuditRecordRow).where(AuditRecordRow.at >= since)
        if until is not None:
            statement = statement.where(AuditRecordRow.at < until)
        if system is not None:
            statement = statement.where(AuditRecordRow.system == system)
        if kind is not None:
            statement = statement.where(AuditRecordRow.kind == kind)
        if official is not None:
            statement = statement.where(AuditRecordRow.official == official)
        statement = statement.order_by(AuditRecordRow.at, AuditRecordRow.id).limit(limit)
        rows = await self._db.all(statement)
        return [
            AuditEntry(
                at=as_utc(r.at), request_id=r.request_id, kind=r.kind, route=r.route, system=r.system,
                official=r.official, agency=r.agency, purpose=r.purpose, subject=r.subject, outcome=r.outcome,
                detail=r.detail,
            )
            for r in rows
        ]  # fmt: skip
