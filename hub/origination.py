"""Messages the hub originates itself, from partner callbacks and reconciliation.

A verified payment result becomes ``payment.completed``; a parcel's new tracking status becomes
``postal.status_changed``. They take the same path as a message a system posts to
``/v1/messages``: checked against the route's schema, stored with one delivery per target, published
to RabbitMQ, delivered by the targets' workers with retries and dead letters. Each carries an
idempotency key derived from what caused it (a MaGiaoDich, an ItemCode and status), so a cause
handled twice stores one message. A publish that fails leaves the message pending; the ingress's
outbox relay publishes it later.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from hub.envelope import normalize_text
from hub.errors import HubError
from hub.plugin import DossierState, OriginatedMessage
from hub.services import Publisher, submit
from hub.store import reachable
from hub.store.models import MessageRow
from schemas import SCHEMAS

if TYPE_CHECKING:
    from hub.bootstrap import Hub

__all__ = [
    "DossierState",
    "OriginatedMessage",
    "OriginationError",
    "dossier_states",
    "latest_dossier_state",
    "originate",
]

log = structlog.get_logger(__name__)

DOSSIER_UPSERTED = "dossier.upserted"


class OriginationError(HubError):
    """The hub built a message that its own route schema refuses (a bug in the hub or in a route file)."""


async def originate(
    hub: Hub,
    *,
    message_type: str,
    payload: dict[str, Any],
    source: str,
    idempotency_key: str,
) -> OriginatedMessage | None:
    """Accept ``payload`` as a message of ``message_type`` from ``source``; None when no route carries it.

    Raises :class:`StoreUnavailableError` when the store is down (nothing was stored; call again) and
    :class:`OriginationError` when the payload does not match the route's schema.
    """
    routes = [r for r in hub.routes.routes_for(message_type) if r.mode == "deliver"]
    if not routes:
        log.info("originated_without_route", type=message_type, source=source)
        return None
    model = SCHEMAS[routes[0].schema_name]
    try:
        canonical = model.model_validate(normalize_text(payload)).model_dump(mode="json", exclude_none=True)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise OriginationError(
            f"The hub built a '{message_type}' message that schema '{routes[0].schema_name}' refuses ({problems}). "
            "This is a bug in the hub or a route names the wrong schema; report it."
        ) from None
    view, created = await submit(
        hub,
        Publisher(hub),
        message_type=message_type,
        source=source,
        payload=canonical,
        routes=routes,
        idempotency_key=idempotency_key,
        if_unconfirmed="defer",
    )
    log.info("originated", type=message_type, message_id=view.envelope.id, duplicate=not created)
    return OriginatedMessage(view.envelope.id, created, tuple(view.targets()))


async def latest_dossier_state(engine: AsyncEngine, dossier_code: str) -> DossierState | None:
    """The newest ``dossier.upserted`` of ``dossier_code`` the hub accepted, if any.

    The one-stop system sends a dossier's full state with every change, so the newest one is the
    dossier as the hub last knew it.
    """
    states = await dossier_states(engine, dossier_code, limit=1)
    return states[0] if states else None


async def dossier_states(
    engine: AsyncEngine,
    dossier_code: str,
    *,
    source: str | None = None,
    after_seq: int | None = None,
    before_seq: int | None = None,
    limit: int | None = None,
) -> list[DossierState]:
    """The ``dossier.upserted`` of ``dossier_code``, newest first: from ``source`` only, and with a ``seq``
    strictly between ``after_seq`` and ``before_seq``, when given.

    Raises :class:`StoreUnavailableError` when the store cannot be reached.
    """
    statement = (
        select(MessageRow.seq, MessageRow.id, MessageRow.source, MessageRow.idempotency_key, MessageRow.payload)
        .where(MessageRow.dossier_code == dossier_code, MessageRow.type == DOSSIER_UPSERTED)
        .order_by(MessageRow.seq.desc())
    )
    if source is not None:
        statement = statement.where(MessageRow.source == source)
    if after_seq is not None:
        statement = statement.where(MessageRow.seq > after_seq)
    if before_seq is not None:
        statement = statement.where(MessageRow.seq < before_seq)
    if limit is not None:
        statement = statement.limit(limit)
    async with reachable("The message store"), engine.connect() as connection:
        rows = (await connection.execute(statement)).all()
    return [
        DossierState(int(seq), str(message_id), str(source_), key, dict(payload))
        for seq, message_id, source_, key, payload in rows
        if isinstance(payload, dict)
    ]
