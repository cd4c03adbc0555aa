"""Group commit: concurrent writes of one kind share a transaction.

Under load many requests (or deliveries) each want the same small write at about the same
time: "the broker confirmed message X", "target T took message Y". Each caller still waits
until *its* write is committed, as with a transaction of its own; the writes that arrive while one commit is
running are simply committed together in the next one. A lone caller is written at once, so
nothing waits for a batch to fill.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from hub.errors import StoreUnavailableError

__all__ = ["GroupCommit"]

T = TypeVar("T")
R = TypeVar("R")


class GroupCommit(Generic[T, R]):
    """Writes items with ``write(batch)``; ``submit(item)`` returns once the item's batch is committed.

    ``write`` returns one result per item, in the batch's order (the row's generated key, say);
    ``submit`` returns its item's.

    When a batch fails for another reason than an unreachable store (one item violates a
    constraint, say), its items are written one by one, so only the failing item's caller sees
    the error, as if there were no batching.
    """

    def __init__(
        self,
        write: Callable[[Sequence[T]], Awaitable[Sequence[R]]],
        *,
        max_batch: int = 200,
        linger: float = 0.0,
        linger_under_load_only: bool = False,
    ) -> None:
        self._write = write
        self._max_batch = max_batch
        #: Seconds a flush waits for more items before its first batch: worth it where nobody waits
        #: for the write (see :meth:`submit_later`), as each transaction has a fixed cost.
        self._linger = linger
        #: Linger only when the last batch held more than one item: a lone caller (light load) is
        #: written at once, and under load the wait lets the batch fill when the write itself takes
        #: too little time for others to join it meanwhile (a write in the event loop's thread).
        self._linger_under_load_only = linger_under_load_only
        self._last_batch_size = 0
        self._queue: list[tuple[T, asyncio.Future[R]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        return await self.submit_later(item)

    def submit_later(self, item: T) -> asyncio.Future[R]:
        """Queue ``item`` and return at once; the future settles when its batch is committed."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return future

    async def drain(self) -> None:
        """Wait until everything queued so far is written (or has failed)."""
        while self._flusher is not None and not self._flusher.done():
            await asyncio.wait([self._flusher])

    async def _flush(self) -> None:
        try:
            if self._linger and (not self._linger_under_load_only or self._last_batch_size > 1):
                await asyncio.sleep(self._linger)
            while self._queue:
                batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch :]
                await self._commit(batch)
        except BaseException as exc:  # a bug or a cancelled task: never leave a caller waiting
            for _, future in self._queue:
                _settle(future, exc)
            self._queue = []
            raise

    async def _commit(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        self._last_batch_size = len(batch)
        try:
            results = await self._write([item for item, _ in batch])
        except StoreUnavailableError as exc:
            for _, future in batch:
                _settle(future, exc)
            return
        except Exception as exc:  # noqa: BLE001 - find the item that failed, below
            if len(batch) == 1:
                _settle(batch[0][1], exc)
                return
            for item, future in batch:
                try:
                    (result,) = await self._write([item])
                except Exception as single:  # noqa: BLE001 - handed to the caller of this item
                    _settle(future, single)
                else:
                    _resolve(future, result)
            return
        except BaseException as exc:
            for _, future in batch:
                _settle(future, exc)
            raise
        for (_, future), result in zip(batch, results, strict=True):
            _resolve(future, result)


def _resolve(future: asyncio.Future[R], result: R) -> None:
    if not future.done():  # the caller was cancelled; its write went ahead anyway
        future.set_result(result)


def _settle(future: asyncio.Future[R], error: BaseException) -> None:
    if future.done():  # the caller was cancelled; its write went ahead anyway
        return
    if isinstance(error, asyncio.CancelledError):
        future.cancel()
    else:
        future.set_exception(error)
