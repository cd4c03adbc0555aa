"""The work a worker has under way when it stops: a grace period to finish, then cancellation.

A delivery or request cancelled here has not been acknowledged to RabbitMQ, so its message goes back to
the queue when the worker's channel closes and is given out again (marked redelivered). See
docs/reliability.md, "Stopping".
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["RECORD_SECONDS", "SETTLE_SECONDS", "finish_or_cancel"]

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
