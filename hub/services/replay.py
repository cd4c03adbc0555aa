"""What operators do to dead letters: replay them, discard them.

Used by the CLI and the console. Every replay and discard is recorded in the message's
timeline with who did it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog
from aio_pika.abc import AbstractIncomingMessage

from hub.envelope import Envelope, encode_envelope
from hub.store import DeliveryState, DeliveryView
from hub.worker import replay_headers

if TYPE_CHECKING:
    from hub.bootstrap import Hub

__all__ = [
    "DeadLetterFilter",
    "ReplayResult",
    "discard",
    "reason_group",
    "reason_key",
    "replay_matching",
    "replay_message",
    "replay_target",
]

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class ReplayResult:
    replayed: list[tuple[str, str]]  # (message id, target)
    skipped: list[str]  # sentences: why a message was not replayed


async def replay_message(hub: Hub, message_id: str, *, target: str | None = None, actor: str) -> ReplayResult:
    """Send a dead-lettered message again to its target(s) (all dead-lettered ones, or ``target``)."""
    view = await hub.store.message(message_id)
    if view is None:
        return ReplayResult([], [f"There is no message {message_id} in the store."])
    replayed: list[tuple[str, str]] = []
    skipped: list[str] = []
    for delivery in view.deliveries:
        if target is not None and delivery.target != target:
            continue
        if delivery.state != DeliveryState.DEAD_LETTERED:
            skipped.append(
                f"Message {message_id} to {delivery.target} is '{delivery.state}', not dead-lettered; "
                "only dead-lettered messages are replayed."
            )
            continue
        if await _republish(hub, view.envelope, delivery.target, actor):
            replayed.append((message_id, delivery.target))
        else:
            skipped.append(
                f"Message {message_id} to {delivery.target} was replayed or discarded by someone else just now."
            )
    if target is not None and not replayed and not skipped:
        skipped.append(f"Message {message_id} has no delivery to target '{target}'.")
    if replayed:
        await _remove_from_dlqs(hub, {(m, t) for m, t in replayed})
    return ReplayResult(replayed, skipped)


async def replay_target(hub: Hub, target: str, *, actor: str, limit: int = 100_000) -> ReplayResult:
    """Replay every dead-lettered message of one target."""
    replayed: list[tuple[str, str]] = []
    for envelope, _delivery in await hub.store.dead_letters(target, limit=limit):
        if await _republish(hub, envelope, target, actor):
            replayed.append((envelope.id, target))
    if replayed:
        await _remove_from_dlqs(hub, set(replayed))
    return ReplayResult(replayed, [])


_MESSAGE_ID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


_DOSSIER_CODE = re.compile(r"(?<![\w.])[A-Z0-9][A-Za-z0-9.]{0,39}-\d{6}-\d{4,6}(?!\d)")


def reason_group(reason: str | None) -> str:
    """The reason of a dead letter without its message id and dossier code, so equal causes group together."""
    text = _MESSAGE_ID.sub("…", reason or "(no reason recorded)")
    return _DOSSIER_CODE.sub("…", text)


def reason_key(reason: str | None) -> str:
    """A short stable name of a reason group (for links: the reason itself may hold personal data)."""
    return hashlib.sha256(reason_group(reason).encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class DeadLetterFilter:
    """Which dead letters of a target an operator means: every given condition must hold."""

    reason_key: str | None = None  # a reason_key() value
    message_type: str | None = None
    dossier_code: str | None = None  # the start of the MaHoSo (agency code, date)

    def matches(self, envelope: Envelope, delivery: DeliveryView) -> bool:
        if self.reason_key is not None and reason_key(delivery.last_error) != self.reason_key:
            return False
        if self.message_type is not None and envelope.type != self.message_type:
            return False
        return self.dossier_code is None or (envelope.dossier_code or "").startswith(self.dossier_code)


async def replay_matching(
    hub: Hub, target: str, selection: DeadLetterFilter, *, actor: str, limit: int = 100_000
) -> ReplayResult:
    """Replay the dead letters of one target that match ``selection``."""
    replayed: list[tuple[str, str]] = []
    for envelope, delivery in await hub.store.dead_letters(target, limit=limit):
        if selection.matches(envelope, delivery) and await _republish(hub, envelope, target, actor):
            replayed.append((envelope.id, target))
    if replayed:
        await _remove_from_dlqs(hub, set(replayed))
    return ReplayResult(replayed, [])


async def discard(hub: Hub, message_id: str, target: str, *, actor: str, reason: str) -> bool:
    """Give up on a dead-lettered message for good, with the reason recorded."""
    done = await hub.store.mark_discarded(message_id, target, actor=actor, reason=reason)
    if done:
        await _remove_from_dlqs(hub, {(message_id, target)})
    return done


async def _republish(hub: Hub, envelope: Envelope, target: str, actor: str) -> bool:
    """Send a dead-lettered message again; False when it is no longer dead-lettered (another
    operator replayed or discarded it meanwhile).

    The store records the replay before the copy is published: the worker may deliver the copy
    within milliseconds, and its "delivered" must come after "replayed" in the timeline. If the
    publish fails, the delivery goes back to dead-lettered, its reason kept, so it can be replayed
    again.
    """
    message_id = envelope.id
    if not await hub.store.mark_replayed(message_id, target, actor=actor):
        return False
    try:
        await hub.broker.publish(
            encode_envelope(envelope),
            routing_key=target,
            message_id=message_id,
            headers=replay_headers(envelope),
        )
    except BaseException as exc:
        await hub.store.undo_replay(
            message_id, target, actor=actor, reason=f"The broker did not take the replayed copy: {exc}"
        )
        raise
    log.info("replayed", message_id=message_id, target=target, actor=actor)
    return True


async def _remove_from_dlqs(hub: Hub, wanted: set[tuple[str, str]], *, scan_limit: int = 200_000) -> int:
    """Take the replayed copies out of the dead-letter queues; the rest go back untouched."""
    removed = 0
    for target in {t for _, t in wanted}:
        ids = {m for m, t in wanted if t == target}
        channel = await hub.broker.channel(prefetch=0)
        try:
            queue = await channel.declare_queue(
                hub.broker.topology.dlq(target),
                durable=True,
                arguments={"x-queue-type": hub.broker.topology.queue_type},
            )
            held: list[AbstractIncomingMessage] = []
            for _ in range(scan_limit):
                message = await queue.get(no_ack=False, fail=False)
                if message is None:
                    break
                if message.message_id in ids:
                    await message.ack()
                    ids.discard(message.message_id)
                    removed += 1
                    if not ids:
                        break
                else:
                    held.append(message)
            for message in held:
                await message.nack(requeue=True)
        finally:
            await channel.close()
    return removed
