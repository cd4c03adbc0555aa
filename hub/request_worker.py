"""The request worker of one target: answer request-reply calls through the target's adapter.

A request arrives on ``ns.request.<T>`` with a ``reply_to`` queue, a correlation id (the
request's id) and a deadline. The worker calls ``adapter.request()``; a transient failure is
retried with the route's backoff while the deadline leaves room for another attempt; then
one :class:`RequestReply` goes back to the caller and the request is acknowledged.

Delivery is at-least-once: if a worker dies while answering, RabbitMQ gives the request to
another worker (unless it expired), which calls the target again with the same envelope id.
Adapters whose calls are not naturally idempotent (payments) pass ``envelope.id`` to the
target as the request's reference.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any, Literal

import aio_pika
import orjson
import structlog
from aio_pika.abc import AbstractIncomingMessage, DeliveryMode
from pydantic import BaseModel

from hub.adapter import RequestAdapter, RequestContext
from hub.broker import Broker
from hub.consumer import QueueConsumer
from hub.envelope import Envelope, decode_envelope
from hub.errors import PermanentDeliveryError, TransientDeliveryError, UnusableReplyError
from hub.routing import Route, RouteTable

__all__ = ["DEADLINE_HEADER", "ROUTE_HEADER", "RequestReply", "RequestWorker"]

log = structlog.get_logger(__name__)

#: Unix time in milliseconds after which the caller no longer waits. An integer: AMQP header
#: tables carry floats as 32-bit, far too coarse for a timestamp.
DEADLINE_HEADER = "x-hub-deadline-ms"
ROUTE_HEADER = "x-hub-route"
#: Do not start an attempt with less time than this left before the deadline.
_MIN_ATTEMPT_SECONDS = 0.05


class RequestReply(BaseModel):
    """The answer a request worker sends back to the ingress that waits for it."""

    status: Literal["ok", "rejected", "failed", "timeout"]
    result: dict[str, Any] | None = None
    detail: str | None = None
    attempts: int = 0
    retry_after: float | None = None

    def encode(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))

    @classmethod
    def decode(cls, body: bytes) -> RequestReply:
        return cls.model_validate(orjson.loads(body))


class RequestWorker:
    """Consumes ``ns.request.<T>`` and answers each request through target ``T``'s adapter."""

    def __init__(
        self,
        *,
        target: str,
        adapter: RequestAdapter,
        routes: RouteTable,
        broker: Broker,
        prefetch: int,
        shutdown_grace: float = 10.0,
    ) -> None:
        self.target = target
        self.adapter = adapter
        self.routes = routes
        self.broker = broker
        self.prefetch = prefetch
        self.shutdown_grace = shutdown_grace
        self._consumer = QueueConsumer(
            broker, broker.topology.request_queue(target), arguments={"x-queue-type": "classic"},
            prefetch=prefetch, handle=self._handle, on_error=self._on_error,
        )  # fmt: skip

    async def start(self) -> None:
        await self.broker.declare_request_queue(self.target)
        await self._consumer.start()
        log.info("request_worker_started", target=self.target, prefetch=self.prefetch)

    async def stop(self) -> None:
        """Stop consuming; let running requests answer within ``shutdown_grace`` seconds, then cancel those
        left: they are not acknowledged, so RabbitMQ gives them to another worker while their caller still
        waits (as when a worker dies). Close the channel. Takes at most the grace (1 s at least) + 2 s."""
        started = time.monotonic()
        await self._consumer.stop_consuming()
        cancelled = await self._consumer.finish(max(self.shutdown_grace - (time.monotonic() - started), 0.0))
        if cancelled:
            log.warning(
                "request_worker_stop_cancelled_requests", target=self.target, cancelled=cancelled,
                detail=f"{cancelled} request(s) to {self.target} did not finish within the {self.shutdown_grace:g} s "
                "of HUB_SHUTDOWN_GRACE_SECONDS; they go back to RabbitMQ for another worker while their callers wait.",
            )  # fmt: skip
        log.info("request_worker_stopped", target=self.target)

    async def _on_error(self, message: AbstractIncomingMessage) -> None:
        """Nothing may take the worker down; the caller gets its 504, the request is dropped."""
        log.exception("request_worker_unexpected_error")
        with contextlib.suppress(Exception):
            await message.ack()

    async def _handle(self, message: AbstractIncomingMessage) -> None:
        headers = message.headers or {}
        deadline_ms = _float_header(headers.get(DEADLINE_HEADER))
        deadline = deadline_ms / 1000 if deadline_ms is not None else None
        try:
            envelope = decode_envelope(message.body)
        except ValueError as exc:
            log.warning("request_undecodable", error=str(exc))
            await self._reply(message, RequestReply(status="failed", detail=f"The request could not be read: {exc}"))
            await message.ack()
            return
        route = self._route(envelope, str(headers.get(ROUTE_HEADER) or ""))
        structlog.contextvars.bind_contextvars(
            request_id=envelope.id, route=route.name if route else None, target=self.target, source=envelope.source
        )
        if deadline is None or time.time() >= deadline:
            log.warning("request_expired", redelivered=message.redelivered)
            await message.ack()
            return
        if route is None:
            reply = RequestReply(
                status="failed",
                detail=f"Request {envelope.id} of type '{envelope.type}' reached target '{self.target}', but no "
                "request-reply route carries that type to it; check the route files of every hub process.",
            )
        else:
            reply = await self._answer(envelope, route, deadline)
        await self._reply(message, reply)
        await message.ack()

    def _route(self, envelope: Envelope, name: str) -> Route | None:
        for route in self.routes.routes:
            carries = route.mode == "request-reply" and route.type == envelope.type and self.target in route.targets
            if carries and (not name or route.name == name):
                return route
        return None

    async def _answer(self, envelope: Envelope, route: Route, deadline: float) -> RequestReply:
        attempt = 0
        while True:
            attempt += 1
            remaining = deadline - time.time()
            context = RequestContext(self.target, route.name, envelope.source, attempt, deadline)
            started = time.perf_counter()
            try:
                result = await asyncio.wait_for(self.adapter.request(envelope, context), max(remaining, 0.001))
            except TimeoutError:
                log.warning("request_timed_out", attempt=attempt)
                return RequestReply(
                    status="timeout",
                    attempts=attempt,
                    detail=f"Target '{self.target}' did not answer within the {route.reply_timeout:g} s the route "
                    "allows.",
                )
            except TransientDeliveryError as exc:
                delay = route.retry.delay_after(attempt, exc.retry_after)
                log.warning("request_attempt_failed", attempt=attempt, reason=exc.reason, retry_in=delay)
                if delay is None:
                    return RequestReply(
                        status="failed", attempts=attempt, retry_after=exc.retry_after,
                        detail=f"Target '{self.target}' failed {attempt} time(s); last error: {exc.reason}",
                    )  # fmt: skip
                if time.time() + delay + _MIN_ATTEMPT_SECONDS >= deadline:
                    return RequestReply(
                        status="timeout", attempts=attempt, retry_after=exc.retry_after,
                        detail=f"Target '{self.target}' failed {attempt} time(s) and the {route.reply_timeout:g} s "
                        f"the route allows leave no time for another attempt; last error: {exc.reason}",
                    )  # fmt: skip
                await asyncio.sleep(delay)
                continue
            except UnusableReplyError as exc:
                log.warning("request_unusable_reply", attempt=attempt, reason=exc.reason)
                return RequestReply(status="failed", attempts=attempt, detail=exc.reason)
            except PermanentDeliveryError as exc:
                log.warning("request_rejected", attempt=attempt, reason=exc.reason)
                return RequestReply(status="rejected", attempts=attempt, detail=exc.reason)
            except Exception as exc:
                log.exception("request_adapter_raised", attempt=attempt, error_type=type(exc).__name__)
                return RequestReply(
                    status="failed",
                    attempts=attempt,
                    detail=f"The {self.adapter.name} adapter failed unexpectedly ({type(exc).__name__}). This is a "
                    "bug or an unexpected reply from the target; report it with the request id.",
                )
            log.info("request_answered", attempt=attempt, seconds=round(time.perf_counter() - started, 3))
            return RequestReply(status="ok", result=result, attempts=attempt)

    async def _reply(self, message: AbstractIncomingMessage, reply: RequestReply) -> None:
        channel = self._consumer.channel
        if not message.reply_to or channel is None:
            log.warning("request_without_reply_to")
            return
        try:
            await channel.default_exchange.publish(
                aio_pika.Message(
                    reply.encode(),
                    content_type="application/json",
                    correlation_id=message.correlation_id,
                    delivery_mode=DeliveryMode.NOT_PERSISTENT,
                ),
                routing_key=message.reply_to,
                timeout=self.broker.publish_timeout,
            )
        except Exception:
            log.exception("request_reply_failed")


def _float_header(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
