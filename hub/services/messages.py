"""The hub's use cases as plain functions: accept a posted message, originate one the hub produces itself
(for a plugin), submit (store, then publish) either, read a dossier's states. The ingress (HTTP), the
CLI, the console, plugins (through hub.plugin's HubContext) and the benchmark call these; none of them
repeats the steps.

A message is stored (one pending delivery per routed target) *before* it is published with broker
confirms; only then is it accepted. What the broker did not confirm stays pending for the outbox
relay, or is forgotten when the sender is told that nothing was accepted.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

import orjson
import structlog
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from hub.broker import delivery_headers
from hub.edge import control_characters
from hub.envelope import Envelope, encode_envelope, new_message_id, nfc_json_text, normalize_text
from hub.errors import BrokerUnavailableError, HubError, StoreUnavailableError
from hub.plugin import DossierState, OriginatedMessage
from hub.routing import Route, SystemSpec
from hub.store import DeliveryState, MessageView, reachable
from hub.store.models import MessageRow

if TYPE_CHECKING:
    from hub.bootstrap import Hub

__all__ = [
    "Accepted",
    "OriginationError",
    "Publisher",
    "RefusalError",
    "accept",
    "dossier_states",
    "latest_dossier_state",
    "originate",
    "routed_targets",
    "schema_problems",
    "submit",
]

log = structlog.get_logger(__name__)

IDEMPOTENCY_KEY_MAX = 200
_RAW_CONTROL = re.compile(r"[\x7f-\x9f]")
#: An answer names at most this many unknown fields, and lists at most this many problems.
_UNKNOWN_NAMED = 20
_PROBLEMS_NAMED = 50


class RefusalError(HubError):
    """A message the hub does not accept, with the HTTP status that says why and a sentence per problem."""

    def __init__(self, status: int, detail: str, errors: list[str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors or []


@dataclass(frozen=True, slots=True)
class Accepted:
    """A message the hub stored and RabbitMQ confirmed (``duplicate``: an earlier send with its key)."""

    id: str
    targets: list[str]
    duplicate: bool


class Publisher:
    """Publishes a stored message to each of its targets and records the broker's confirm."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    async def publish(self, envelope: Envelope, targets: list[str], *, wait_for_record: bool = True) -> None:
        """Publish with confirms; then record the confirm, waiting for that write or (``wait_for_record=False``,
        the ingress) not: the 202 needs the message stored and confirmed, which it is by then."""
        body = encode_envelope(envelope)
        headers = delivery_headers(envelope, attempt=1)
        publishes = [
            self.hub.broker.publish(body, routing_key=target, message_id=envelope.id, headers=headers)
            for target in targets
        ]
        if len(publishes) == 1:
            await publishes[0]  # most messages have one target: no tasks to gather
        else:
            await asyncio.gather(*publishes)
        await self.hub.store.mark_published(envelope.id, targets, wait=wait_for_record)

    async def relay_unpublished(self, older_than: timedelta) -> int:
        """Publish messages that were stored but never confirmed (the transactional outbox).

        One message the broker cannot take (its queue was deleted, say) is logged and skipped, so it
        does not hold back the others; when the broker itself is away, the round stops.
        """
        count = 0
        known = list(self.hub.routes.targets)
        for envelope, targets in await self.hub.store.unpublished(older_than, targets=known):
            try:
                await self.publish(envelope, targets)
            except BrokerUnavailableError as exc:
                if not self.hub.broker.connected:
                    raise
                log.exception("outbox_relay_failed", message_id=envelope.id, targets=targets, error=str(exc))
                continue
            count += 1
            log.warning("outbox_relayed", message_id=envelope.id, targets=targets)
        return count


def routed_targets(routes: Sequence[Route]) -> dict[str, str]:
    """Each target of ``routes`` → the first route that sends to it (one delivery per target)."""
    targets: dict[str, str] = {}
    for route in routes:
        for target in route.targets:
            targets.setdefault(target, route.name)
    return targets


async def submit(
    hub: Hub,
    publisher: Publisher,
    *,
    message_type: str,
    source: str,
    payload: dict[str, Any],
    routes: Sequence[Route],
    idempotency_key: str | None,
    if_unconfirmed: Literal["refuse", "defer"],
    wait_for_record: bool = True,
) -> tuple[MessageView, bool]:
    """Store a validated (canonical) message with a pending delivery per target, then publish it.

    When RabbitMQ does not confirm: ``refuse`` forgets a message this call created and raises
    :class:`RefusalError` (503: the sender sends it again); ``defer`` keeps it pending for the outbox relay
    (the hub itself is the sender). Raises :class:`StoreUnavailableError` when nothing could be stored.
    """
    dossier_code = payload.get("MaHoSo")
    view, created = await hub.store.accept(
        message_type=message_type,
        source=source,
        dossier_code=dossier_code if isinstance(dossier_code, str) else None,
        payload=payload,
        targets=list(routed_targets(routes).items()),
        idempotency_key=idempotency_key,
        message_id=new_message_id(),
    )
    structlog.contextvars.bind_contextvars(message_id=view.envelope.id, dossier=dossier_code)
    pending = [d.target for d in view.deliveries if d.state == DeliveryState.PENDING]
    if pending:
        try:
            await publisher.publish(view.envelope, pending, wait_for_record=wait_for_record)
        except (BrokerUnavailableError, StoreUnavailableError) as exc:
            if if_unconfirmed == "defer":
                log.warning("publish_deferred", message_id=view.envelope.id, error=str(exc))
            else:
                log.exception("ingress_publish_failed", error=str(exc))
                outcome = "It may still be delivered; send it again later with the same Idempotency-Key."
                if created and isinstance(exc, BrokerUnavailableError):
                    # Only a publish RabbitMQ did not confirm is forgotten. When the store failed after the
                    # confirm, the message is queued and a worker may be delivering it: it stays (the outbox
                    # relay and the client's retry with the same key find it; the worker drops the copies).
                    with contextlib.suppress(StoreUnavailableError):
                        if await hub.store.forget_unpublished(view.envelope.id):
                            outcome = "Nothing was accepted; send it again later with the same Idempotency-Key."
                raise RefusalError(
                    503, f"The hub could not queue message {view.envelope.id} ({exc}) {outcome}"
                ) from exc
    if created:
        for route_name in {r.name for r in routes}:
            hub.metrics.accepted.labels(route_name, source).inc()
    return view, created


def schema_problems(exc: ValidationError, *, skip: tuple[str, ...] = ("payload",)) -> list[str]:
    """One sentence per problem a schema found ("Field 'NgayHenTra' is required."), with the field's
    path without the ``skip`` parts (the envelope's ``payload``)."""
    sentences = []
    unknown: dict[str, list[str]] = {}  # where -> the fields the schema does not have, in one sentence each
    for error in exc.errors():
        path = [str(p) for p in error.get("loc", ()) if p not in skip]
        if error.get("type") == "extra_forbidden" and path:
            unknown.setdefault(".".join(path[:-1]), []).append(path[-1])
            continue
        loc = ".".join(path)
        message = str(error.get("msg", "is not valid")).removeprefix("Value error, ")
        if error.get("type") == "missing":
            message = "is required"
        sentences.append(f"Field '{loc}' {message}." if loc else f"{message[:1].upper()}{message[1:]}.")
    for where, names in unknown.items():
        shown = ", ".join(f"'{name[:60]}'" for name in names[:_UNKNOWN_NAMED])
        more = f" and {len(names) - _UNKNOWN_NAMED} more" if len(names) > _UNKNOWN_NAMED else ""
        place = f" in '{where}'" if where else ""
        sentences.append(
            f"The schema has no field{'s' if len(names) > 1 else ''} {shown}{more}{place}; remove "
            f"{'them' if len(names) > 1 else 'it'} (the hub neither stores nor sends on fields it does not know)."
        )
    if len(sentences) > _PROBLEMS_NAMED:
        sentences[_PROBLEMS_NAMED:] = [f"{len(sentences) - _PROBLEMS_NAMED} more problems are not listed."]
    return sentences


def _parse(raw: bytes) -> tuple[str, dict[str, Any], bool]:
    """The posted body's type and payload (text NFC-normalised), and whether it held \\u escapes."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RefusalError(
            400, f"The body is not UTF-8 text (bad byte at position {exc.start}); send UTF-8 JSON."
        ) from exc
    escaped = "\\u" in text
    try:
        body = orjson.loads(text if escaped else nfc_json_text(text))
    except orjson.JSONDecodeError as exc:
        raise RefusalError(400, f"The body is not valid JSON ({exc}); send a JSON object.") from exc
    if not isinstance(body, dict) or not isinstance(body.get("type"), str) or not isinstance(body.get("payload"), dict):
        raise RefusalError(422, 'The body must be a JSON object {"type": "<message type>", "payload": {...}}.')
    # A control character in JSON text is an escape (\u0000) or, for DEL and C1, itself.
    if (escaped or _RAW_CONTROL.search(text)) and (control := control_characters(body)):
        raise RefusalError(422, "The message holds control characters; remove them and send it again.", control)
    return body["type"], body["payload"], escaped


def _routes_for(hub: Hub, system: SystemSpec, message_type: str) -> list[Route]:
    """The deliver routes that take ``message_type`` from ``system``; RefusalError (403/422) otherwise."""
    if not hub.routes.routes_for(message_type):
        known = ", ".join(sorted(hub.routes.message_types()))
        raise RefusalError(422, f"Message type '{message_type}' is not known to the hub; known types: {known}.")
    if message_type not in system.allowed_types:
        raise RefusalError(
            403, f"System '{system.id}' may not send '{message_type}'; ask the hub's operators to allow it."
        )
    routes = hub.routes.routes_for(message_type, system.id)
    if not routes:
        raise RefusalError(403, f"No route takes '{message_type}' from system '{system.id}'.")
    if routes[0].mode != "deliver":
        raise RefusalError(
            422,
            f"Type '{message_type}' is answered directly ({routes[0].mode}); "
            f"POST it to /v1/requests/{message_type} instead.",
        )
    return routes


def _validated(hub: Hub, message_type: str, route: Route, payload: dict[str, Any]) -> dict[str, Any]:
    """The payload as its route's schema makes it (canonical JSON); RefusalError (422) with a sentence per problem."""
    try:
        validated = hub.schemas[route.schema_name].model_validate(payload)
    except ValidationError as exc:
        errors = schema_problems(exc)
        raise RefusalError(
            422,
            f"Message of type '{message_type}' does not match schema '{route.schema_name}' "
            f"({len(errors)} problem{'s' if len(errors) > 1 else ''}); fix and send it again.",
            errors,
        ) from exc
    return validated.model_dump(mode="json", exclude_none=True)


async def accept(
    hub: Hub, publisher: Publisher, system: SystemSpec, idempotency_key: str | None, raw: bytes
) -> Accepted:
    """Accept one message posted by ``system``: parse, check the route, validate, store, publish with
    confirms. Raises :class:`RefusalError` with the status and sentence the sender gets."""
    message_type, payload, escaped = _parse(raw)
    routes = _routes_for(hub, system, message_type)
    if idempotency_key is not None and not 0 < len(idempotency_key) <= IDEMPOTENCY_KEY_MAX:
        raise RefusalError(422, f"The Idempotency-Key header must be 1 to {IDEMPOTENCY_KEY_MAX} characters long.")
    canonical = _validated(hub, message_type, routes[0], normalize_text(payload) if escaped else payload)
    try:
        view, created = await submit(
            hub,
            publisher,
            message_type=message_type,
            source=system.id,
            payload=canonical,
            routes=routes,
            idempotency_key=idempotency_key,
            if_unconfirmed="refuse",
            wait_for_record=False,
        )
    except StoreUnavailableError as exc:
        log.exception("ingress_store_unavailable", error=str(exc))
        raise RefusalError(
            503,
            f"The hub cannot store messages right now ({exc}) Nothing was accepted; "
            "send it again later with the same Idempotency-Key.",
        ) from exc
    log.info("accepted", type=message_type, source=system.id, duplicate=not created)
    return Accepted(view.envelope.id, view.targets(), not created)


# --------------------------------------------------------------------------- messages the hub produces
#
# A verified payment result becomes ``payment.completed``; a parcel's new tracking status becomes
# ``postal.status_changed`` (plugins call these through hub.plugin's HubContext). They take the same path
# as a message a system posts: checked against the route's schema, stored with one delivery per target,
# published. Each carries an idempotency key derived from what caused it (a MaGiaoDich, an ItemCode and
# status), so a cause handled twice stores one message. A publish that fails leaves the message pending;
# the ingress's outbox relay publishes it later.

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
    publisher: Publisher | None = None,
) -> OriginatedMessage | None:
    """Accept ``payload`` as a message of ``message_type`` from ``source``; None when no route carries it.

    Raises :class:`StoreUnavailableError` when the store is down (nothing was stored; call again) and
    :class:`OriginationError` when the payload does not match the route's schema.
    """
    routes = [r for r in hub.routes.routes_for(message_type) if r.mode == "deliver"]
    if not routes:
        log.info("originated_without_route", type=message_type, source=source)
        return None
    model = hub.schemas[routes[0].schema_name]
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
        publisher or Publisher(hub),
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
