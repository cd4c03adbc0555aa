"""One queue consumed by a worker (delivery or request-reply), and the work under way when it stops: a
grace period to finish, then cancellation.

A delivery or request cancelled here has not been acknowledged to RabbitMQ, so its message goes back to
the queue when the worker's channel closes and is given out again (marked redelivered). See
docs/reliability.md, "Stopping".
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from hub.broker import Broker

__all__ = ["RECORD_SECONDS", "SETTLE_SECONDS", "QueueConsumer", "finish_or_cancel"]

log = structlog.get_logger(__name__)

#: After the cancel, how long the cancelled tasks may take to record it (a delivery cut off mid-call
#: writes its doubt to the store) before the channel is closed anyway.
SETTLE_SECONDS = 1.0
#: The store write of that record gives up sooner, so it ends within SETTLE_SECONDS.
RECORD_SECONDS = 0.8


async def finish_or_cancel(in_flight: set[asyncio.Task[Any]], *, grace: float) -> int:
    """Wait up to ``grace`` seconds for the tasks of ``in_flight`` (the set may change meanwhile) to finish,
    then cancel those left and wait up to :data:`SETTLE_SECONDS` for them. Returns how many were cancelled."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    while in_flight and (remaining := deadline - loop.time()) > 0:
        await asyncio.wait(set(in_flight), timeout=remaining)
    left = {task for task in in_flight if not task.done()}
    for task in left:
        task.cancel()
    if left:
        await asyncio.wait(left, timeout=SETTLE_SECONDS)
    return len(left)


class QueueConsumer:
    """Consumes one queue on a channel of its own with manual acks and a bounded prefetch.

    Each message is handled in its own task (aio-pika's), tracked so that :meth:`stop` can let it finish
    within the grace and cancel it after; ``handle`` must not raise, ``on_error`` is called when it does
    (the worker decides whether the message goes back to the queue). A message that arrives while the
    consumer stops is left unacknowledged: RabbitMQ gives it out again once the channel closes.
    """

    def __init__(
        self,
        broker: Broker,
        queue: str,
        *,
        arguments: dict[str, Any],
        prefetch: int,
        handle: Callable[[AbstractIncomingMessage], Awaitable[None]],
        on_error: Callable[[AbstractIncomingMessage], Awaitable[None]],
    ) -> None:
        self.broker = broker
        self.queue = queue
        self.arguments = arguments
        self.prefetch = prefetch
        self._handle = handle
        self._on_error = on_error
        self.stopping = False
        self.in_flight: set[asyncio.Task[Any]] = set()
        self.channel: AbstractChannel | None = None
        self._consumer_tag: str | None = None

    async def start(self) -> None:
        self.channel = await self.broker.channel(self.prefetch)
        queue = await self.channel.declare_queue(self.queue, durable=True, arguments=self.arguments)
        self._consumer_tag = await queue.consume(self._on_message)

    def track(self, task: asyncio.Task[Any] | None) -> None:
        """Count ``task`` as work under way until it ends (a stop waits for it, then cancels it)."""
        if task is not None:
            self.in_flight.add(task)
            task.add_done_callback(self.in_flight.discard)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        if self.stopping:  # not acknowledged: RabbitMQ gives it out again once the channel closes
            return
        self.track(asyncio.current_task())
        structlog.contextvars.clear_contextvars()
        try:
            await self._handle(message)
        except Exception:  # noqa: BLE001 - nothing may take the worker down; on_error logs it with its trace
            await self._on_error(message)

    async def stop_consuming(self) -> None:
        """Take no new messages (a broker that is away does not hold this up for more than a second)."""
        self.stopping = True
        if self.channel is not None and self._consumer_tag is not None and not self.channel.is_closed:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    queue = await self.channel.get_queue(self.queue)
                    await queue.cancel(self._consumer_tag)

    async def finish(self, grace: float) -> int:
        """Let the work under way finish within ``grace`` seconds, cancel what is left, close the channel.
        Returns how many were cancelled."""
        cancelled = await finish_or_cancel(self.in_flight, grace=grace)
        if self.channel is not None and not self.channel.is_closed:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await self.channel.close()
        return cancelled
