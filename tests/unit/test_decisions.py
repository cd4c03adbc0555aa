"""The worker's decision after a failed attempt (hub.decisions): pure, so tested without RabbitMQ."""

from __future__ import annotations

import pytest

from hub.decisions import Attempt, DeadLetter, Retry, after_failure, in_doubt, in_doubt_after
from hub.errors import PermanentDeliveryError, TransientDeliveryError
from hub.routing import RetryPolicy

POLICY = RetryPolicy(attempts=3, backoff=(1.0, 10.0))


def _attempt(number: int = 1, *, doubt: bool = False) -> Attempt:
    return Attempt("m-1", "national-portal", "national_portal", number, doubt, 30.0)


def test_a_transient_error_is_retried_on_the_policy_s_tiers_then_dead_lettered() -> None:
    error = TransientDeliveryError("The portal answered HTTP 503.", status_code=503)
    assert after_failure(_attempt(1), POLICY, error) == Retry(1.0, "The portal answered HTTP 503.", False, "503")
    assert after_failure(_attempt(2), POLICY, error) == Retry(10.0, "The portal answered HTTP 503.", False, "503")
    last = after_failure(_attempt(3), POLICY, error)
    assert isinstance(last, DeadLetter)
    assert last.kind == "exhausted"
    assert last.reason == (
        "Message m-1 to national-portal failed 3 times and was dead-lettered; last error: The portal answered "
        "HTTP 503. When the target works again, replay it with `hub replay m-1`."
    )


def test_retry_after_from_the_target_moves_the_retry_to_a_long_enough_tier() -> None:
    error = TransientDeliveryError("Too many requests.", status_code=429, retry_after=5.0)
    decision = after_failure(_attempt(1), POLICY, error)
    assert isinstance(decision, Retry)
    assert decision.delay == 10.0  # the 1 s tier is shorter than asked; retries go through declared queues only
    assert decision.label == "429"


def test_a_timeout_is_a_retry_in_doubt_labelled_no_answer() -> None:
    decision = after_failure(_attempt(1), POLICY, TimeoutError())
    assert decision == Retry(1.0, "Target 'national-portal' did not answer within 30 s.", True, "no_answer")


def test_a_permanent_error_is_dead_lettered_at_once_and_says_replay_once() -> None:
    decision = after_failure(_attempt(1), POLICY, PermanentDeliveryError("The portal rejected it. Fix the dossier."))
    assert isinstance(decision, DeadLetter)
    assert decision.kind == "rejected"
    assert decision.reason.count("replay it") == 1
    assert decision.reason.endswith("Fix the dossier. Once that is fixed, replay it with `hub replay m-1`.")


def test_an_unexpected_exception_is_an_adapter_error() -> None:
    decision = after_failure(_attempt(2, doubt=True), POLICY, KeyError("DanhSachHoSo"))
    assert isinstance(decision, DeadLetter)
    assert decision.kind == "adapter_error"
    assert "national_portal adapter fail unexpectedly (KeyError: 'DanhSachHoSo')" in decision.reason


@pytest.mark.parametrize(
    ("before", "error", "after"),
    [
        (False, TransientDeliveryError("503", status_code=503), False),  # a clear answer: not there
        (False, TransientDeliveryError("timed out"), True),  # no answer: it may have landed
        (False, TransientDeliveryError("refused", unsent=True), False),  # never sent
        (True, TransientDeliveryError("503", status_code=503), True),  # once in doubt, stays so
    ],
)
def test_doubt_after_an_attempt(before: bool, error: TransientDeliveryError, after: bool) -> None:
    assert in_doubt_after(before, error) is after
    decision = after_failure(_attempt(1, doubt=before), POLICY, error)
    assert isinstance(decision, Retry)
    assert decision.in_doubt is after


def test_doubt_before_an_attempt() -> None:
    assert not in_doubt(stored=False, redelivered=False, header=False)
    assert in_doubt(stored=True, redelivered=False, header=False)
    assert in_doubt(stored=False, redelivered=True, header=False)
    assert in_doubt(stored=False, redelivered=False, header=True)
