"""Request-reply routes over HTTP: ``POST /v1/requests/{type}`` waits for the target's answer.

The ingress validates the request (schema, NFC), takes a token from the route's rate limit,
publishes it to ``ns.request.<target>`` with a deadline, a correlation id and its own reply
queue, and waits (:mod:`hub.request_client`). The request worker (:mod:`hub.request_worker`) calls the adapter and sends
back one answer. HTTP contract (see docs/request-reply.md):

=====  ==========================================================================
200    ``{"id", "type", "result": {...}}`` the target's answer
401    no or wrong system key; 403 the system may not send this type
404    no request-reply route carries this type
413 / 400 / 422  body too large / not JSON / does not match the schema (``errors``)
422    ``error: rejected`` the target refused the request as sent (permanent)
429    ``error: throttled`` the route's rate limit; ``Retry-After`` says when to try again
502    ``error: failed`` the target kept failing, or answered something the adapter cannot read
503    ``error: unavailable`` the hub cannot reach RabbitMQ; ``Retry-After``
504    ``error: timeout`` no answer within the route's ``timeout``
=====  ==========================================================================

Requests are not stored in the message store (they may carry personal data and are worth
nothing once answered); requests whose schema is :class:`hub.audit.Audited` leave an audit record.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Annotated, Any

import orjson
import structlog
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError

from hub.audit import Audited, AuditFacts, AuditLog
from hub.auth import AuthenticationError, SystemKeys
from hub.bootstrap import Hub
from hub.contract import SYSTEM_KEY, Problem, problem_responses
from hub.edge import BodyTooLargeError, control_characters, read_body
from hub.envelope import Envelope, new_message_id, normalize_text
from hub.errors import BrokerUnavailableError, StoreUnavailableError
from hub.ratelimit import RateLimiter
from hub.request_client import RequestClient, RequestTimeoutError
from hub.request_worker import RequestReply
from hub.routing import Route, SystemSpec
from hub.services import schema_problems

__all__ = ["RequestState", "router"]

log = structlog.get_logger(__name__)


def identify_system(keys: SystemKeys, request: Request) -> tuple[SystemSpec | None, JSONResponse | None]:
    """``(system, None)`` for a system key, ``(None, response)`` with a 401/403 otherwise."""
    try:
        system = keys.identify(request.headers.get("authorization"))
    except AuthenticationError as exc:
        return None, problem(401, str(exc))
    if system is None:
        return None, problem(403, "The admin key cannot send requests; use the calling system's key.")
    return system, None


def problem(status: int, detail: str, **extra: Any) -> JSONResponse:
    headers = {}
    retry_after = extra.pop("retry_after", None)
    if retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    return JSONResponse({"detail": detail, **extra}, status_code=status, headers=headers or None)


class RequestAnswer(BaseModel):
    id: str
    type: str
    result: dict[str, Any]


class RequestProblem(Problem):
    """A request-reply refusal or failure (the table of this module's docstring)."""

    error: str | None = Field(
        default=None,
        description="unknown, invalid, throttled, unavailable, timeout, rejected or failed (absent for 401/403/413).",
    )
    id: str | None = Field(default=None, description="The request's id, once it was sent on to the target.")


def _outcome_of(reply: RequestReply) -> str:
    """The audit outcome of an answer: ``found``/``not_found`` when the result says so."""
    if reply.status == "ok" and reply.result is not None and isinstance(reply.result.get("found"), bool):
        return "found" if reply.result["found"] else "not_found"
    return reply.status


@dataclass
class RequestState:
    """What the request-reply endpoint keeps per ingress application: the request client (its reply queue),
    the routes' rate limits and the audit trail."""

    hub: Hub
    keys: SystemKeys
    client: RequestClient
    limiter: RateLimiter = field(default_factory=RateLimiter)
    routes: dict[str, Route] = field(init=False)
    audit: AuditLog = field(init=False)

    def __post_init__(self) -> None:
        self.routes = {r.type: r for r in self.hub.routes.routes if r.mode == "request-reply"}
        self.audit = AuditLog(self.hub.store.engine)

    @classmethod
    def for_hub(cls, hub: Hub, keys: SystemKeys) -> RequestState:
        return cls(hub, keys, RequestClient(hub.broker))

    async def write_audit(
        self, envelope: Envelope, route: Route, facts: AuditFacts, outcome: str, detail: str | None
    ) -> None:
        try:
            await self.audit.record(
                request_id=envelope.id, kind=envelope.type, route=route.name, system=envelope.source,
                facts=facts, outcome=outcome, detail=detail,
            )  # fmt: skip
        except StoreUnavailableError:
            # The lookup happened; losing its audit record must be loud.
            log.exception("audit_write_failed", request_id=envelope.id, outcome=outcome)


def _request_state(request: Request) -> RequestState:
    state: RequestState = request.app.state.requests
    return state


router = APIRouter(tags=["request-reply"])


@router.post(
    "/v1/requests/{message_type}",
    response_model=RequestAnswer,
    responses=problem_responses(400, 401, 403, 404, 413, 422, 429, 502, 503, 504, model=RequestProblem),
    openapi_extra=SYSTEM_KEY,  # one path per request-reply route, with its body: hub.contract.complete_document
)
async def post_request(
    message_type: str, request: Request, state: Annotated[RequestState, Depends(_request_state)]
) -> JSONResponse:
    hub, keys, client, limiter, request_routes = state.hub, state.keys, state.client, state.limiter, state.routes
    settings = hub.settings
    started = time.perf_counter()
    system, refused = identify_system(keys, request)
    if system is None:
        return refused or problem(401, "Unauthorized.")
    route = request_routes.get(message_type)
    if route is None:
        known = ", ".join(sorted(request_routes)) or "(none)"
        return problem(
            404, f"No request-reply route carries '{message_type}'; request-reply types: {known}.", error="unknown"
        )
    if message_type not in system.allowed_types or (route.sources is not None and system.id not in route.sources):
        return problem(403, f"System '{system.id}' may not send '{message_type}'; ask the hub's operators to allow it.")
    try:
        raw = await read_body(request, settings.max_body_bytes)
    except BodyTooLargeError as exc:
        return problem(413, str(exc))
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return problem(400, f"The body is not valid UTF-8 JSON ({exc}); send a JSON object.")
    if not isinstance(body, dict):
        return problem(422, "The body must be a JSON object with the request's fields.")
    if control := control_characters(body):
        detail = f"Request of type '{message_type}' holds control characters; remove them and send it again."
        return problem(422, detail, errors=control, error="invalid")
    model = hub.schemas[route.schema_name]
    try:
        validated = model.model_validate(normalize_text(body))
    except ValidationError as exc:
        errors = schema_problems(exc, skip=())
        hub.metrics.requests.labels(route.name, system.id, "invalid").inc()
        return problem(
            422,
            f"Request of type '{message_type}' does not match schema '{route.schema_name}' "
            f"({len(errors)} problem{'s' if len(errors) > 1 else ''}); fix it and send it again.",
            errors=errors,
            error="invalid",
        )
    envelope = Envelope(
        id=new_message_id(),
        type=message_type,
        source=system.id,
        payload=validated.model_dump(mode="json", exclude_none=True),
    )
    structlog.contextvars.bind_contextvars(request_id=envelope.id, route=route.name, source=system.id)
    facts = validated.audit_facts() if isinstance(validated, Audited) else None
    target = route.targets[0]

    async def finish(outcome: str, response: JSONResponse, detail: str | None = None) -> JSONResponse:
        hub.metrics.requests.labels(route.name, system.id, outcome).inc()
        hub.metrics.request_duration.labels(route.name, outcome).observe(time.perf_counter() - started)
        if facts is not None:
            await state.write_audit(envelope, route, facts, outcome, detail)
        log.info("request_finished", outcome=outcome, status=response.status_code)
        return response

    limit = route.rate_limit
    wait = limiter.try_acquire(route, system.id)
    if wait is not None and limit is not None:
        scope = f"system '{system.id}'" if limit.per == "source" else "all systems together"
        detail = (
            f"Too many '{message_type}' requests: {scope} may send {limit.rate:g} per second "
            f"(bursts of {limit.burst}) because '{target}' throttles the province. "
            f"Wait {max(1, math.ceil(wait))} s (Retry-After) and send it again."
        )
        return await finish("throttled", problem(429, detail, error="throttled", retry_after=wait), detail)
    try:
        reply = await client.call(envelope, route=route, target=target)
    except BrokerUnavailableError as exc:
        detail = f"The hub cannot pass request {envelope.id} on right now ({exc}) Send it again in a moment."
        return await finish(
            "unavailable", problem(503, detail, id=envelope.id, error="unavailable", retry_after=5), detail
        )
    except RequestTimeoutError:
        consumers = await client.consumers(target)
        hint = (
            f" No request worker for '{target}' is running: start one with `hub worker --target {target}`."
            if consumers == 0
            else f" If it keeps happening, check '{target}' or raise the route's timeout."
        )
        detail = (
            f"Request {envelope.id} ({message_type}) got no answer from '{target}' within "
            f"{route.reply_timeout:g} s.{hint} It is safe to send the request again."
        )
        return await finish("timeout", problem(504, detail, id=envelope.id, error="timeout"), detail)
    if reply.status == "ok":
        answer = RequestAnswer(id=envelope.id, type=message_type, result=reply.result or {})
        return await finish(_outcome_of(reply), JSONResponse(answer.model_dump(mode="json")))
    detail = f"Request {envelope.id} ({message_type}) to '{target}': {reply.detail}"
    if reply.status == "rejected":
        return await finish("rejected", problem(422, detail, id=envelope.id, error="rejected"), detail)
    if reply.status == "timeout":
        response = problem(504, detail, id=envelope.id, error="timeout", retry_after=reply.retry_after)
        return await finish("timeout", response, detail)
    response = problem(502, detail, id=envelope.id, error="failed", retry_after=reply.retry_after)
    return await finish("failed", response, detail)
