"""What a worker does after a failed delivery attempt, decided without RabbitMQ or the store.

:func:`after_failure` takes what the worker knows (the message, the attempt, whether an earlier attempt
may have reached the target, the route's retry policy) and the error, and says: retry after a delay, or
dead-letter with a reason an operator can act on. :func:`in_doubt` and :func:`in_doubt_after` say when
the target may have the message already, so the worker asks it before sending again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hub.errors import PermanentDeliveryError, TransientDeliveryError
from hub.routing import RetryPolicy

__all__ = ["Attempt", "DeadLetter", "Retry", "after_failure", "in_doubt", "in_doubt_after"]


@dataclass(frozen=True, slots=True)
class Attempt:
    """One failed attempt: which message, to which target through which adapter, the how-manieth, and
    whether the message was already in doubt before it (:func:`in_doubt`)."""

    message_id: str
    target: str
    adapter: str
    number: int
    in_doubt: bool
    timeout: float


@dataclass(frozen=True, slots=True)
class Retry:
    delay: float
    reason: str
    in_doubt: bool
    #: For the retried-by-reason metric: the HTTP status, or "no_answer".
    label: str


@dataclass(frozen=True, slots=True)
class DeadLetter:
    kind: Literal["exhausted", "rejected", "adapter_error"]
    reason: str
    in_doubt: bool


def in_doubt(*, stored: bool, redelivered: bool, header: bool) -> bool:
    """An earlier attempt may have reached the target without the hub knowing: the store says so (an
    earlier attempt got no answer), RabbitMQ delivers the message again (a worker died holding it), or
    the retry copy's header says so (a store that could not be written then). A clear answer such as a
    503 leaves no doubt."""
    return stored or redelivered or header


def in_doubt_after(before: bool, error: TransientDeliveryError) -> bool:
    """After a failed attempt: in doubt before it, or it got no answer (a timeout, a dropped connection),
    so the target may have taken it. A connection that was never made (refused, no route, no free
    connection in the pool) sent nothing: no doubt."""
    return before or (error.status_code is None and not error.unsent)


def after_failure(attempt: Attempt, policy: RetryPolicy, error: BaseException) -> Retry | DeadLetter:
    """Retry what can succeed later while the policy has attempts left; dead-letter the rest."""
    replay = f"`hub replay {attempt.message_id}`"
    if isinstance(error, TimeoutError):
        error = TransientDeliveryError(f"Target '{attempt.target}' did not answer within {attempt.timeout:g} s.")
    if isinstance(error, TransientDeliveryError):
        doubt = in_doubt_after(attempt.in_doubt, error)
        delay = policy.delay_after(attempt.number, error.retry_after)
        if delay is not None:
            label = str(error.status_code) if error.status_code else "no_answer"
            return Retry(delay, error.reason, doubt, label)
        return DeadLetter(
            "exhausted",
            f"Message {attempt.message_id} to {attempt.target} failed {attempt.number} times and was "
            f"dead-lettered; last error: {error.reason} When the target works again, replay it with {replay}.",
            doubt,
        )
    if isinstance(error, PermanentDeliveryError):
        return DeadLetter(
            "rejected",
            f"Message {attempt.message_id} to {attempt.target} was rejected: {error.reason} "
            f"Once that is fixed, replay it with {replay}.",
            False,
        )
    return DeadLetter(
        "adapter_error",
        f"Message {attempt.message_id} to {attempt.target} made the {attempt.adapter} adapter fail unexpectedly "
        f"({type(error).__name__}: {error}). This is a bug or an unexpected reply; report it, then replay "
        f"with {replay}.",
        False,
    )
