"""RabbitMQ: topology, publishing with confirms, and the connection that reconnects.

Topology (``ns`` is ``HUB_BROKER_NAMESPACE``, default ``hub``), all durable:

* ``ns.deliver``              direct exchange; routing key = target id.
* ``ns.target.<T>``           quorum queue per target, bound to ``ns.deliver`` with key ``T``.
* ``ns.retry.<T>.<ms>``       one quorum queue per backoff tier: ``x-message-ttl`` = tier,
                              dead-lettered (at-least-once) back to ``ns.deliver`` with key ``T``.
                              The broker has no delayed-message plugin; TTL tiers do the waiting.
* ``ns.dlq.<T>``              the target's dead-letter queue; the reason is in the headers.
* ``ns.request.<T>``          classic queue of request-reply calls to ``T`` (see docs/request-reply.md);
                              each request expires with its caller's timeout, answers go to the
                              caller's exclusive reply queue.

The hub declares all of it at start. Publishes wait for the broker's confirm.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aio_pika
import aiormq
import structlog
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractRobustConnection, DeliveryMode
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    stop_never,
    wait_exponential,
)

from hub.envelope import Envelope
from hub.errors import BrokerUnavailableError

__all__ = ["Broker", "Topology"]

log = structlog.get_logger(__name__)

ATTEMPT_HEADER = "x-hub-attempt"
REASON_HEADER = "x-hub-reason"
TYPE_HEADER = "x-hub-type"
DOSSIER_HEADER = "x-hub-dossier"


def delivery_headers(envelope: Envelope, *, attempt: int) -> dict[str, Any]:
    """The headers every copy of a message to a target carries: its attempt number, type and dossier."""
    return {ATTEMPT_HEADER: attempt, TYPE_HEADER: envelope.type, DOSSIER_HEADER: envelope.dossier_code or ""}


@dataclass(frozen=True, slots=True)
class Topology:
    """Names of the exchanges and queues for one namespace."""

    namespace: str
    queue_type: str = "quorum"

    @property
    def deliver_exchange(self) -> str:
        return f"{self.namespace}.deliver"

    def target_queue(self, target: str) -> str:
        return f"{self.namespace}.target.{target}"

    def retry_queue(self, target: str, delay_seconds: float) -> str:
        return f"{self.namespace}.retry.{target}.{round(delay_seconds * 1000)}ms"

    def dlq(self, target: str) -> str:
        return f"{self.namespace}.dlq.{target}"

    def request_queue(self, target: str) -> str:
        """Requests of request-reply routes to ``target`` (classic queue; answers go to the caller's reply queue)."""
        return f"{self.namespace}.request.{target}"

    def queue_arguments(self) -> dict[str, Any]:
        return {"x-queue-type": self.queue_type}

    def retry_arguments(self, target: str, delay_seconds: float) -> dict[str, Any]:
        arguments = {
            **self.queue_arguments(),
            "x-message-ttl": round(delay_seconds * 1000),
            "x-dead-letter-exchange": self.deliver_exchange,
            "x-dead-letter-routing-key": target,
        }
        if self.queue_type == "quorum":
            # At-least-once dead-lettering: a message never disappears between the retry tier
            # and the target queue, even if a node fails while moving it.
            arguments["x-dead-letter-strategy"] = "at-least-once"
            arguments["x-overflow"] = "reject-publish"
        return arguments


_PERSISTENT = int(DeliveryMode.PERSISTENT)

_BROKER_ERRORS = (
    aiormq.exceptions.AMQPError,
    aio_pika.exceptions.AMQPException,
    ConnectionError,
    OSError,
    asyncio.TimeoutError,
    RuntimeError,
)


class Broker:
    """One robust connection to RabbitMQ, reconnecting by itself, with a confirming publish channel."""

    def __init__(self, url: str, topology: Topology, *, publish_timeout: float = 10.0) -> None:
        self.url = url
        self.topology = topology
        self.publish_timeout = publish_timeout
        self._connection: AbstractRobustConnection | None = None
        self._publish_channel: AbstractChannel | None = None
        self._deliver_exchange: AbstractExchange | None = None
        self._connect_lock = asyncio.Lock()

    @property
    def connected(self) -> bool:
        return (
            self._connection is not None
            and not self._connection.is_closed
            and self._publish_channel is not None
            and not self._publish_channel.is_closed
        )

    def _connection_ready(self) -> bool:
        """The connection is up (aio-pika's ``connected`` event is set): getting the channel will not wait."""
        return self._connection is not None and self._connection.connected.is_set()

    async def connect(self) -> None:
        """Connect (once); raise BrokerUnavailableError when RabbitMQ cannot be reached."""
        async with self._connect_lock:
            if self.connected:
                return
            connection = self._connection
            fresh = connection is None or connection.is_closed
            try:
                if connection is None or connection.is_closed:
                    connection = await aio_pika.connect_robust(
                        self.url, timeout=10, client_properties={"connection_name": "lgsp-hub"}
                    )
                    self._connection = connection
                channel = await connection.channel(publisher_confirms=True)
                exchange = await channel.declare_exchange(
                    self.topology.deliver_exchange, aio_pika.ExchangeType.DIRECT, durable=True
                )
                self._publish_channel, self._deliver_exchange = channel, exchange
            except _BROKER_ERRORS as exc:
                # Only a connection opened by this call is closed. An established robust connection is
                # reconnecting by itself and restores the workers' consumers with it; closing it here
                # (a worker publishing a retry while RabbitMQ restarts) would stop them for good.
                if fresh and self._connection is not None:
                    await _close_quietly(self._connection)
                    self._connection = None
                    self._publish_channel = None
                raise BrokerUnavailableError(
                    f"RabbitMQ cannot be reached at {_redact(self.url)} ({type(exc).__name__}); "
                    "check that it is running and HUB_BROKER_URL is right."
                ) from exc

    async def connect_with_backoff(self, *, max_delay: float = 30.0, attempts: int | None = None) -> None:
        """Connect, waiting 0.5 s, 1 s, 2 s … (at most ``max_delay``) between tries while RabbitMQ cannot be
        reached; after ``attempts`` tries (None: no limit) the last BrokerUnavailableError is raised.
        Cancelling the call (a stop during start-up) ends the wait at once."""
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(BrokerUnavailableError),
            wait=wait_exponential(multiplier=0.5, max=max_delay),
            stop=stop_never if attempts is None else stop_after_attempt(attempts),
            before_sleep=_log_broker_unavailable,
            reraise=True,
        ):
            with attempt:
                await self.connect()

    def _ready(self) -> tuple[AbstractRobustConnection, AbstractChannel, AbstractExchange]:
        if self._connection is None or self._publish_channel is None or self._deliver_exchange is None:
            raise BrokerUnavailableError("The hub is not connected to RabbitMQ; it is reconnecting.")
        return self._connection, self._publish_channel, self._deliver_exchange

    async def channel(self, prefetch: int) -> AbstractChannel:
        await self.connect()
        connection, _, _ = self._ready()
        channel = await connection.channel(publisher_confirms=True)
        await channel.set_qos(prefetch_count=prefetch)
        return channel

    async def declare_target(self, target: str, retry_delays: set[float]) -> None:
        """Declare the target's queue, its retry tiers and its dead-letter queue (idempotent)."""
        await self.connect()
        _, channel, deliver_exchange = self._ready()
        topo = self.topology
        try:
            queue = await channel.declare_queue(
                topo.target_queue(target), durable=True, arguments=topo.queue_arguments()
            )
            await queue.bind(deliver_exchange, routing_key=target)
            for delay in sorted(retry_delays):
                await channel.declare_queue(
                    topo.retry_queue(target, delay),
                    durable=True,
                    arguments=topo.retry_arguments(target, delay),
                )
            await channel.declare_queue(topo.dlq(target), durable=True, arguments=topo.queue_arguments())
        except _BROKER_ERRORS as exc:
            raise BrokerUnavailableError(
                f"Could not declare the queues of target '{target}' ({type(exc).__name__}: {exc}). "
                "If a queue exists with other arguments (for example as a classic queue), delete it or "
                "use another HUB_BROKER_NAMESPACE."
            ) from exc

    async def declare_request_queue(self, target: str) -> None:
        """Declare the request queue of a request-reply target (idempotent).

        A classic queue: a request lives only as long as its caller waits (per-message TTL),
        so it is neither replicated nor kept across a broker restart.
        """
        await self.connect()
        _, channel, _ = self._ready()
        try:
            await channel.declare_queue(
                self.topology.request_queue(target), durable=True, arguments={"x-queue-type": "classic"}
            )
        except _BROKER_ERRORS as exc:
            raise BrokerUnavailableError(
                f"Could not declare the request queue of target '{target}' ({type(exc).__name__}: {exc}). "
                "If it exists with other arguments, delete it or use another HUB_BROKER_NAMESPACE."
            ) from exc

    async def publish(
        self,
        body: bytes,
        *,
        routing_key: str,
        message_id: str,
        headers: Mapping[str, Any] | None = None,
        to_default_exchange: bool = False,
    ) -> None:
        """Publish a persistent message and wait for the broker's confirm.

        ``routing_key`` is a target id (through ``ns.deliver``) or, with
        ``to_default_exchange``, a queue name. Raises BrokerUnavailableError when the broker
        is down, refuses (nack) or cannot route the message.
        """
        if not self.connected:
            await self.connect()
        _, channel, deliver_exchange = self._ready()
        # aiormq's publish with the properties built here: aio-pika's Message and Exchange.publish
        # add nothing the hub uses, only CPU on every message.
        properties = aiormq.spec.Basic.Properties(
            delivery_mode=_PERSISTENT,
            content_type="application/json",
            message_id=message_id,
            headers=dict(headers or {}),
        )
        try:
            if channel.is_closed:  # a robust channel being restored: answer now, do not wait for it
                raise aiormq.exceptions.ChannelInvalidStateError(f"{channel!r} closed")
            if self._connection_ready():  # nothing to wait for: no timer to set up
                underlay = await channel.get_underlay_channel()
            else:
                async with asyncio.timeout(self.publish_timeout):
                    underlay = await channel.get_underlay_channel()
            confirmation = await underlay.basic_publish(
                body,
                exchange="" if to_default_exchange else deliver_exchange.name,
                routing_key=routing_key,
                properties=properties,
                mandatory=True,
                timeout=self.publish_timeout,
            )
        except aiormq.exceptions.PublishError as exc:  # returned, on a channel that raises for returns
            raise _unroutable(message_id, routing_key) from exc
        except aiormq.exceptions.DeliveryError as exc:  # nack or reject
            raise _refused(message_id, type(exc.frame).__name__) from exc
        except _BROKER_ERRORS as exc:
            raise BrokerUnavailableError(
                f"RabbitMQ did not confirm message {message_id} ({type(exc).__name__}); the broker may be down."
            ) from exc
        if isinstance(confirmation, aiormq.abc.DeliveredMessage):  # returned: aio-pika's channels do not raise
            raise _unroutable(message_id, routing_key)
        if not isinstance(confirmation, aiormq.spec.Basic.Ack):
            raise _refused(message_id, type(confirmation).__name__)

    async def queue_depth(self, queue_name: str) -> int | None:
        """Messages ready in a queue, or None when it cannot be read."""
        if not self.connected or self._connection is None:
            return None
        try:
            channel = await self._connection.channel()
            try:
                queue = await channel.declare_queue(queue_name, passive=True)
                return int(queue.declaration_result.message_count or 0)
            finally:
                await _close_quietly(channel)
        except _BROKER_ERRORS:
            return None

    async def check(self) -> None:
        """Raise BrokerUnavailableError unless the connection is up (for /readyz)."""
        if not self.connected:
            await self.connect()

    async def aclose(self) -> None:
        if self._connection is not None:
            await _close_quietly(self._connection)
        self._connection = None
        self._publish_channel = None


def _log_broker_unavailable(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome is not None else None
    log.warning("broker_unavailable", error=str(error), retry_in=state.upcoming_sleep)


async def _close_quietly(closable: Any) -> None:
    try:
        await closable.close()
    except Exception:
        log.debug("close_failed", exc_info=True)


def _redact(url: str) -> str:
    """Hide the password of an AMQP URL."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"


def _refused(message_id: str, answer: str) -> BrokerUnavailableError:
    return BrokerUnavailableError(
        f"RabbitMQ refused message {message_id} ({answer}); a queue may be full or the broker short of memory or disk."
    )


def _unroutable(message_id: str, routing_key: str) -> BrokerUnavailableError:
    return BrokerUnavailableError(
        f"RabbitMQ could not route message {message_id} to '{routing_key}'; its queue is missing or unbound. "
        "Start a worker for that target or run `hub run` once to declare it."
    )
