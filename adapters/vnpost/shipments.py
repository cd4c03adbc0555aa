"""The shipment book: every VNPost parcel the hub ordered, and every tracking status it learned.

Tables ``shipments`` and ``shipment_events`` (:mod:`adapters.vnpost.tables`) in the hub's database.
A status is stored once per parcel (unique ItemCode + status) however many times VNPost reports it,
by callback or by polling.
``emitted_status`` is the newest status already sent on as ``postal.status_changed``; sending is
done by one process at a time per parcel (a claim with a time limit), so statuses go out in order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError

from adapters.vnpost.tables import ShipmentEventRow, ShipmentRow
from hub.plugin import TableSessions, as_utc, utc_now

if TYPE_CHECKING:
    from sqlalchemy import Select
    from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["Shipment", "ShipmentBook", "ShipmentState", "TrackingRecord"]


class ShipmentState:
    ORDERING = "ordering"  # postOrder sent, no ItemCode yet
    OPEN = "open"  # VNPost has it; tracking
    DELIVERED = "delivered"
    CANCELLED = "cancelled"
    FAILED = "failed"  # VNPost refused the order


@dataclass(frozen=True, slots=True)
class Shipment:
    id: str
    target: str
    dossier_code: str
    order_number: str
    item_code: str | None
    direction: str
    state: str
    status: int | None
    emitted_status: int
    last_message_id: str | None
    cod_amount: int
    service_name: str | None
    fee: int | None
    created_at: datetime
    last_event_at: datetime | None
    next_poll_at: datetime | None
    cancel_reason: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "MaHoSo": self.dossier_code,
            "OrderNumber": self.order_number,
            "ItemCode": self.item_code,
            "Direction": self.direction,
            "state": self.state,
            "Status": self.status,
            "emitted_status": self.emitted_status,
            "CODAmount": self.cod_amount,
            "ServiceName": self.service_name,
            "TotalFee": self.fee,
            "created_at": self.created_at.isoformat(),
            "last_event_at": self.last_event_at.isoformat() if self.last_event_at else None,
            "next_poll_at": self.next_poll_at.isoformat() if self.next_poll_at else None,
            "target": self.target,
        }


@dataclass(frozen=True, slots=True)
class TrackingRecord:
    item_code: str
    status: int
    status_name: str
    event_time: str
    post_office: str | None
    note: str | None
    channel: str
    received_at: datetime

    def as_event(self) -> dict[str, Any]:
        event: dict[str, Any] = {"Status": self.status, "StatusName": self.status_name, "Time": self.event_time}
        if self.post_office:
            event["PostOffice"] = self.post_office
        if self.note:
            event["Note"] = self.note
        return event


def _shipment(row: ShipmentRow) -> Shipment:
    return Shipment(
        id=row.id, target=row.target, dossier_code=row.dossier_code, order_number=row.order_number,
        item_code=row.item_code, direction=row.direction, state=row.state, status=row.status,
        emitted_status=row.emitted_status, last_message_id=row.last_message_id, cod_amount=int(row.cod_amount),
        service_name=row.service_name, fee=None if row.fee is None else int(row.fee),
        created_at=as_utc(row.created_at), last_event_at=as_utc(row.last_event_at),
        next_poll_at=as_utc(row.next_poll_at), cancel_reason=row.cancel_reason,
    )  # fmt: skip


class ShipmentBook:
    def __init__(self, engine: AsyncEngine) -> None:
        self._db = TableSessions(engine, "The shipment book")

    # ------------------------------------------------------------------ orders

    async def open(
        self,
        *,
        request_id: str,
        target: str,
        dossier_code: str,
        direction: str,
        cod_amount: int,
        service_name: str | None,
    ) -> tuple[Shipment, bool]:
        """Record an order before postOrder is sent; a request seen before returns its shipment and False."""
        existing = await self.get(request_id)
        if existing is not None:
            return existing, False
        now = utc_now()
        row = ShipmentRow(
            id=request_id, target=target, dossier_code=dossier_code, order_number=dossier_code, direction=direction,
            state=ShipmentState.ORDERING, emitted_status=-1, cod_amount=cod_amount, service_name=service_name,
            created_at=now, updated_at=now,
        )  # fmt: skip
        try:
            async with self._db.transaction() as session:
                session.add(row)
        except IntegrityError:
            existing = await self.get(request_id)
            if existing is None:
                raise
            return existing, False
        return _shipment(row), True

    async def get(self, shipment_id: str) -> Shipment | None:
        return await self._one(select(ShipmentRow).where(ShipmentRow.id == shipment_id))

    async def by_item_code(self, item_code: str) -> Shipment | None:
        return await self._one(select(ShipmentRow).where(ShipmentRow.item_code == item_code))

    async def for_dossier(self, dossier_code: str) -> list[Shipment]:
        return await self._all(
            select(ShipmentRow).where(ShipmentRow.dossier_code == dossier_code).order_by(ShipmentRow.created_at)
        )

    async def recent(self, *, state: str | None = None, limit: int = 100) -> list[Shipment]:
        statement = select(ShipmentRow).order_by(ShipmentRow.created_at.desc()).limit(limit)
        if state is not None:
            statement = statement.where(ShipmentRow.state == state)
        return await self._all(statement)

    async def _one(self, statement: Select[ShipmentRow]) -> Shipment | None:
        row = await self._db.one_or_none(statement)
        return None if row is None else _shipment(row)

    async def _all(self, statement: Select[ShipmentRow]) -> list[Shipment]:
        return [_shipment(row) for row in await self._db.all(statement)]

    async def set_item_code(self, shipment_id: str, *, item_code: str, fee: int | None, poll_after: timedelta) -> None:
        now = utc_now()
        await self._db.change(
            update(ShipmentRow)
            .where(ShipmentRow.id == shipment_id)
            .values(
                item_code=item_code, fee=fee, state=ShipmentState.OPEN, next_poll_at=now + poll_after, updated_at=now
            )
        )

    async def mark(self, shipment_id: str, state: str, *, reason: str | None = None) -> None:
        await self._db.change(
            update(ShipmentRow)
            .where(ShipmentRow.id == shipment_id)
            .values(state=state, cancel_reason=reason, next_poll_at=None, updated_at=utc_now())
        )

    # ------------------------------------------------------------------ tracking

    async def record_event(
        self,
        item_code: str,
        *,
        status: int,
        status_name: str,
        event_time: str,
        post_office: str | None,
        note: str | None,
        channel: str,
        poll_after: timedelta,
    ) -> bool:
        """Store one tracking status; False when it was already known (a duplicate report)."""
        now = utc_now()
        try:
            async with self._db.transaction() as session:
                session.add(
                    ShipmentEventRow(
                        item_code=item_code, status=status, status_name=status_name[:100], event_time=event_time,
                        post_office=post_office, note=note, channel=channel, received_at=now,
                    )
                )  # fmt: skip
                await session.flush()
                delivered = status == 4
                values: dict[str, Any] = {"last_event_at": now, "updated_at": now}
                values["next_poll_at"] = None if delivered else now + poll_after
                if delivered:
                    values["state"] = ShipmentState.DELIVERED
                await session.execute(
                    update(ShipmentRow)
                    .where(ShipmentRow.item_code == item_code, ShipmentRow.state == ShipmentState.OPEN)
                    .values(**values)
                )
                await session.execute(
                    update(ShipmentRow)
                    .where(
                        ShipmentRow.item_code == item_code,
                        or_(ShipmentRow.status.is_(None), ShipmentRow.status < status),
                    )
                    .values(status=status)
                )
        except IntegrityError:
            return False
        return True

    async def events(self, item_code: str) -> list[TrackingRecord]:
        rows = await self._db.all(
            select(ShipmentEventRow).where(ShipmentEventRow.item_code == item_code).order_by(ShipmentEventRow.status)
        )
        return [
            TrackingRecord(
                item_code=r.item_code, status=r.status, status_name=r.status_name, event_time=r.event_time,
                post_office=r.post_office, note=r.note, channel=r.channel, received_at=as_utc(r.received_at),
            )
            for r in rows
        ]  # fmt: skip

    async def claim(self, item_code: str, owner: str, *, ttl: timedelta) -> bool:
        """Take the right to send this parcel's statuses on (until released or ``ttl`` passed)."""
        now = utc_now()
        return await self._db.change(
            update(ShipmentRow)
            .where(
                ShipmentRow.item_code == item_code,
                or_(ShipmentRow.claimed_until.is_(None), ShipmentRow.claimed_until < now),
            )
            .values(claimed_by=owner, claimed_until=now + ttl)
        )

    async def release(self, item_code: str, owner: str) -> None:
        await self._db.change(
            update(ShipmentRow)
            .where(ShipmentRow.item_code == item_code, ShipmentRow.claimed_by == owner)
            .values(claimed_by=None, claimed_until=None)
        )

    async def mark_emitted(self, item_code: str, status: int, message_id: str) -> None:
        await self._db.change(
            update(ShipmentRow)
            .where(ShipmentRow.item_code == item_code, ShipmentRow.emitted_status < status)
            .values(emitted_status=status, last_message_id=message_id, updated_at=utc_now())
        )

    async def has_unsent(self, item_code: str) -> bool:
        """Whether ``item_code`` has a stored status newer than the one last sent on."""
        async with self._db.transaction() as session:
            newest = (
                await session.execute(
                    select(func.max(ShipmentEventRow.status)).where(ShipmentEventRow.item_code == item_code)
                )
            ).scalar_one_or_none()
            emitted = (
                await session.execute(select(ShipmentRow.emitted_status).where(ShipmentRow.item_code == item_code))
            ).scalar_one_or_none()
        return newest is not None and emitted is not None and int(newest) > int(emitted)

    async def with_unsent_statuses(self, limit: int = 200) -> list[str]:
        """ItemCodes that have a status newer than the one last sent on."""
        newest = (
            select(ShipmentEventRow.item_code, func.max(ShipmentEventRow.status).label("newest"))
            .group_by(ShipmentEventRow.item_code)
            .subquery()
        )
        codes = await self._db.all(
            select(ShipmentRow.item_code)
            .join(newest, newest.c.item_code == ShipmentRow.item_code)
            .where(newest.c.newest > ShipmentRow.emitted_status)
            .limit(limit)
        )
        return [str(code) for code in codes if code]

    async def due_for_poll(self, now: datetime, limit: int = 100) -> list[Shipment]:
        return await self._all(
            select(ShipmentRow)
            .where(ShipmentRow.state == ShipmentState.OPEN, ShipmentRow.next_poll_at <= now)
            .order_by(ShipmentRow.next_poll_at)
            .limit(limit)
        )

    async def claim_poll(self, shipment: Shipment, *, now: datetime, next_poll_at: datetime) -> bool:
        return await self._db.change(
            update(ShipmentRow)
            .where(
                ShipmentRow.id == shipment.id,
                ShipmentRow.state == ShipmentState.OPEN,
                ShipmentRow.next_poll_at <= now,
            )
            .values(next_poll_at=next_poll_at)
        )
