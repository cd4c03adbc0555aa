"""``/v1/messages`` and ``/v1/dossiers/{code}/messages``: systems send messages; they and ops read
where each one stands. The answer schemas are the contract in the OpenAPI document."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from hub.api.deps import Caller, Sender, State
from hub.contract import SYSTEM_KEY, problem_responses
from hub.edge import read_body
from hub.errors import StoreUnavailableError
from hub.services import RefusalError
from hub.services.messages import IDEMPOTENCY_KEY_MAX
from hub.store import MessageView

__all__ = ["AcceptedMessage", "DossierMessages", "MessageRecord", "message_json", "router"]

router = APIRouter(tags=["messages"])


def message_json(view: MessageView) -> dict[str, Any]:
    envelope = view.envelope
    return {
        "id": envelope.id,
        "seq": envelope.seq,
        "type": envelope.type,
        "source": envelope.source,
        "dossier_code": envelope.dossier_code,
        "accepted_at": envelope.accepted_at.isoformat(),
        "idempotency_key": view.idempotency_key,
        "payload": envelope.payload,
        "deliveries": [
            {
                "target": d.target,
                "route": d.route,
                "state": d.state,
                "attempts": d.attempts,
                "in_doubt": d.in_doubt,
                "next_attempt_at": d.next_attempt_at.isoformat() if d.next_attempt_at else None,
                "last_error": d.last_error,
                "delivered_at": d.delivered_at.isoformat() if d.delivered_at else None,
                "updated_at": d.updated_at.isoformat(),
            }
            for d in view.deliveries
        ],
        "events": [
            {
                "target": e.target,
                "kind": e.kind,
                "attempt": e.attempt,
                "detail": e.detail,
                "actor": e.actor,
                "at": e.at.isoformat(),
            }
            for e in view.events
        ],
    }


class AcceptedMessage(BaseModel):
    id: str
    targets: list[str]
    duplicate: bool = False


#: Times are written as ISO 8601 with their offset (``2026-12-04T08:15:02.123456+00:00``).
_Timestamp = Annotated[str, Field(json_schema_extra={"format": "date-time"})]


class DeliveryRecord(BaseModel):
    """Where one message stands with one target."""

    target: str = Field(description="The target system's name in the routing table (a queue of its own).")
    route: str = Field(description="The route that sent the message to this target.")
    state: str = Field(
        description="pending (stored, not yet confirmed by RabbitMQ), accepted (queued for the target), "
        "retrying, delivered, dead_lettered, replayed, superseded (an older state of the dossier, not "
        "sent because a newer one was delivered) or discarded."
    )
    attempts: int = Field(description="Attempts made so far.")
    in_doubt: bool = Field(
        description="An attempt may have reached the target without the hub learning the answer (a "
        "timeout, a dropped connection): before sending again, the hub asks the target whether it "
        "has the message, so it is not recorded twice. Once set, it stays set."
    )
    next_attempt_at: _Timestamp | None = Field(description="When the next attempt is due, while retrying.")
    last_error: str | None = Field(description="Why the last attempt failed, in a sentence.")
    delivered_at: _Timestamp | None
    updated_at: _Timestamp


class DeliveryEventRecord(BaseModel):
    """One step of a message's timeline."""

    target: str | None
    kind: str = Field(description="accepted, attempt_failed, delivered, dead_lettered, replayed, discarded, …")
    attempt: int | None
    detail: str | None
    actor: str | None = Field(description="Who did it, for an operator's action (replay, discard).")
    at: _Timestamp


class MessageRecord(BaseModel):
    """A message as the hub keeps it: its envelope, where it stands with each target, and its timeline."""

    id: str
    seq: int = Field(description="The hub's own order of acceptance.")
    type: str
    source: str
    dossier_code: str | None
    accepted_at: _Timestamp
    idempotency_key: str | None
    payload: dict[str, Any]
    deliveries: list[DeliveryRecord]
    events: list[DeliveryEventRecord]


class DossierMessages(BaseModel):
    dossier_code: str
    messages: list[MessageRecord] = Field(description="The dossier's messages in the order they were accepted.")


def _readable(system: Any, view: MessageView | None, what: str) -> MessageView:
    """A system reads its own messages; the admin key (None) reads all."""
    if view is None or (system is not None and view.envelope.source != system.id):
        raise RefusalError(404, f"There is no {what} you may read.")
    return view


@router.post(
    "/v1/messages",
    status_code=202,
    response_model=AcceptedMessage,
    responses=problem_responses(400, 401, 403, 413, 422, 503),
    openapi_extra={  # the body's schema comes from the route files: hub.contract.complete_document
        **SYSTEM_KEY,
        "parameters": [
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": "The sender's own id of the message: the same key is accepted once.",
                "schema": {"type": "string", "minLength": 1, "maxLength": IDEMPOTENCY_KEY_MAX},
            }
        ],
    },
)
async def post_message(request: Request, state: State, system: Sender) -> Response:
    """Send a message: 202 once it is stored and RabbitMQ has confirmed it.

    (:class:`hub.ingress.IngressApp` answers this path itself, through the same ``accept``; this route is
    its contract in the OpenAPI document and answers when the shortcut is off.)"""
    raw = await read_body(request, state.hub.settings.max_body_bytes)
    answer = await state.accept(system, request.headers.get("idempotency-key"), raw)
    return Response(answer, status_code=202, media_type="application/json")


@router.get(
    "/v1/messages/{message_id}",
    response_model=MessageRecord,
    responses=problem_responses(400, 401, 404, 422, 503),
    openapi_extra=SYSTEM_KEY,
)
async def get_message(message_id: str, state: State, system: Caller) -> dict[str, Any]:
    try:
        view = await state.hub.store.message(message_id)
    except StoreUnavailableError as exc:
        raise RefusalError(503, str(exc)) from exc
    return message_json(_readable(system, view, f"message {message_id}"))


@router.get(
    "/v1/dossiers/{dossier_code}/messages",
    response_model=DossierMessages,
    responses=problem_responses(400, 401, 422, 503),
    openapi_extra=SYSTEM_KEY,
)
async def get_dossier_messages(dossier_code: str, state: State, system: Caller) -> dict[str, Any]:
    try:
        views = await state.hub.store.dossier_messages(dossier_code)
    except StoreUnavailableError as exc:
        raise RefusalError(503, str(exc)) from exc
    if system is not None:
        views = [v for v in views if v.envelope.source == system.id]
    return {"dossier_code": dossier_code, "messages": [message_json(v) for v in views]}
