"""Request-reply routes over HTTP: ``POST /v1/requests/{type}`` waits for the target's answer.

The ingress validates the request (schema, NFC), takes a token from the route's rate limit,
publishes it to ``ns.request.<target>`` with a deadline, a correlation id and its own reply
queue, and waits. The request worker (:mod:`hub.request_worker`) calls the adapter and sends
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

import asyncio
import contextlib
import math
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aio_pika
import aiormq
import orjson
import structlog
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, DeliveryMode
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

from hub.audit import Audited, AuditFacts, AuditLog
from hub.auth import AuthenticationError, SystemKeys
from hub.bootstrap import Hub
from hub.broker import Broker
from hub.envelope import Envelope, encode_envelope, new_message_id, normalize_text
from hub.errors import BrokerUnavailableError, StoreUnavailableError
from hub.ratelimit import RateLimiter
from hub.request_worker import DEADLINE_HEADER, ROUTE_HEADER, RequestReply
from hub.routing import Route, SystemSpec

__all__ = ["RequestClient", "RequestTimeoutError", "create_request_router", "identify_system"]

log = structlog.get_logger(__name__)


class RequestTimeoutError(Exception):
    """No answer came back before the deadline."""


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


class RequestClient:
    """Ingress side of request-reply: publish a request, wait for the answer with its correlation id.

    One exclusive reply queue per process (``ns.reply.<random>``), consumed without acks.
    """

    def __init__(self, broker: Broker) -> None:
        self._broker = broker
        self._reply_queue = f"{broker.topology.namespace}.reply.{uuid.uuid4().hex}"
        self._channel: AbstractChannel | None = None
        self._pending: dict[str, asyncio.Future[RequestReply]] = {}
        self._declared: set[str] = set()
        self._lock = asyncio.Lock()

    async def _ready(self) -> AbstractChannel:
        async with self._lock:
            if self._channel is None or self._channel.is_closed:
                try:
                    channel = await self._broker.channel(prefetch=0)
                    queue = await channel.declare_queue(
                        self._reply_queue, exclusive=True, auto_delete=True, arguments={"x-queue-type": "classic"}
                    )
                    await queue.consume(self._on_reply, no_ack=True)
                except (aiormq.exceptions.AMQPError, aio_pika.exceptions.AMQPException, OSError) as exc:
                    raise BrokerUnavailableError(
                        f"The hub could not open its reply queue on RabbitMQ ({type(exc).__name__})."
                    ) from exc
                self._channel = channel
            return self._channel

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        future = self._pending.get(message.correlation_id or "")
        if future is None or future.done():
            return  # the caller gave up (504) before the answer came
        try:
            future.set_result(RequestReply.decode(message.body))
        except (ValueError, ValidationError) as exc:
            future.set_exception(exc)

    async def call(self, envelope: Envelope, *, route: Route, target: str) -> RequestReply:
        """Publish ``envelope`` to ``target``'s request queue and wait up to the route's timeout."""
        timeout = route.reply_timeout
        deadline = time.time() + timeout
        channel = await self._ready()
        if target not in self._declared:
            await self._broker.declare_request_queue(target)
            self._declared.add(target)
        future: asyncio.Future[RequestReply] = asyncio.get_running_loop().create_future()
        self._pending[envelope.id] = future
        try:
            message = aio_pika.Message(
                encode_envelope(envelope),
                content_type="application/json",
                message_id=envelope.id,
                correlation_id=envelope.id,
                reply_to=self._reply_queue,
                expiration=timeout,
                delivery_mode=DeliveryMode.NOT_PERSISTENT,
                headers={DEADLINE_HEADER: int(deadline * 1000), ROUTE_HEADER: route.name},
            )
            try:
                confirmation = await channel.default_exchange.publish(
                    message,
                    routing_key=self._broker.topology.request_queue(target),
                    mandatory=True,
                    timeout=self._broker.publish_timeout,
                )
            except (aiormq.exceptions.AMQPError, aio_pika.exceptions.AMQPException, OSError, TimeoutError) as exc:
                raise BrokerUnavailableError(
                    f"RabbitMQ did not take request {envelope.id} ({type(exc).__name__})."
                ) from exc
            if not isinstance(confirmation, aiormq.spec.Basic.Ack):
                raise BrokerUnavailableError(f"RabbitMQ refused request {envelope.id}.")
            try:
                return await asyncio.wait_for(future, max(deadline - time.time(), 0.001))
            except TimeoutError as exc:
                raise RequestTimeoutError(envelope.id) from exc
        finally:
            self._pending.pop(envelope.id, None)

    async def consumers(self, target: str) -> int | None:
        """How many request workers consume ``target``'s queue (None when it cannot be read)."""
        try:
            channel = await self._broker.channel(prefetch=0)
        except BrokerUnavailableError:
            return None
        try:
            queue = await channel.declare_queue(self._broker.topology.request_queue(target), passive=True)
            return int(queue.declaration_result.consumer_count or 0)
        except Exception:  # noqa: BLE001 - only used to word an error message
            return None
        finally:
            with contextlib.suppress(Exception):
                await channel.close()

    async def aclose(self) -> None:
        for future in self._pending.values():
            if not future.done():
                future.cancel()
        if self._channel is not None and not self._channel.is_closed:
            with contextlib.suppress(Exception):
                await self._channel.close()
        self._channel = None


class RequestAnswer(BaseModel):
    id: str
    type: str
    result: dict[str, Any]


def _sentence_for(error: Any) -> str:
    loc = ".".join(str(p) for p in error.get("loc", ()))
    message = str(error.get("msg", "is not valid")).removeprefix("Value error, ")
    if error.get("type") == "missing":
        message = "is required"
    elif error.get("type") == "extra_forbidden":
        message = "is not a known field"
    return f"Field '{loc}' {message}." if loc else f"{message[:1].upper()}{message[1:]}."


def _outcome_of(reply: RequestReply) -> str:
    """The audit outcome of an answer: ``found``/``not_found`` when the result says so."""
    if reply.status == "ok" and reply.result is not None and isinstance(reply.result.get("found"), bool):
        return "found" if reply.result["found"] else "not_found"
    return reply.status


def create_request_router(hub: Hub) -> APIRouter:
    """The ``/v1/requests`` endpoints of the ingress (included by :func:`hub.ingress.create_ingress_app`)."""
    from schemas import SCHEMAS

    settings = hub.settings
    keys = SystemKeys.for_hub(hub)
    client = RequestClient(hub.broker)
    limiter = RateLimiter()
    audit = AuditLog(hub.store.engine)
    request_routes = {r.type: r for r in hub.routes.routes if r.mode == "request-reply"}

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await client.aclose()

    router = APIRouter(lifespan=lifespan, tags=["request-reply"])

    async def write_audit(
        envelope: Envelope, route: Route, facts: AuditFacts, outcome: str, detail: str | None
    ) -> None:
        try:
            await audit.record(
                request_id=envelope.id, kind=envelope.type, route=route.name, system=envelope.source,
                facts=facts, outcome=outcome, detail=detail,
            )  # fmt: skip
        except StoreUnavailableError:
            # The lookup happened; losing its audit record must be loud.
            log.exception("audit_write_failed", request_id=envelope.id, outcome=outcome)

    @router.post("/v1/requests/{message_type}", response_model=RequestAnswer)
    async def post_request(message_type: str, request: Request) -> JSONResponse:
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
            return problem(
                403, f"System '{system.id}' may not send '{message_type}'; ask the hub's operators to allow it."
            )
        raw = await request.body()
        if len(raw) > settings.max_body_bytes:
            return problem(413, f"The body is {len(raw)} bytes; the hub accepts at most {settings.max_body_bytes}.")
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            return problem(400, f"The body is not valid UTF-8 JSON ({exc}); send a JSON object.")
        if not isinstance(body, dict):
            return problem(422, "The body must be a JSON object with the request's fields.")
        model = SCHEMAS[route.schema_name]
        try:
            validated = model.model_validate(normalize_text(body))
        except ValidationError as exc:
            errors = [_sentence_for(e) for e in exc.errors()]
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
                await write_audit(envelope, route, facts, outcome, detail)
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

    return router
