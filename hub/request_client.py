"""The ingress's side of request-reply: publish a request to the target's request queue with a deadline,
a correlation id and this process's reply queue, and wait for the one answer (see :mod:`hub.api.requests`)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, DeliveryMode
from pydantic import ValidationError

from hub.broker import Broker
from hub.envelope import Envelope, encode_envelope
from hub.errors import BrokerUnavailableError
from hub.request_worker import DEADLINE_HEADER, ROUTE_HEADER, RequestReply
from hub.routing import Route

__all__ = ["RequestClient", "RequestTimeoutError"]


class RequestTimeoutError(Exception):
    """No answer came back before the deadline."""


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
