"""Faults 1 and 2: a hub process killed with SIGKILL while traffic flows, then started again."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from tests.reliability.conftest import HubFactory, Scale, ScratchDatabase
from tests.reliability.reconciliation import Figures, reconcile
from tests.reliability.traffic import TrafficStream, plan_messages
from tests.support.logs import count_events
from tests.support.processes import HubProcess

pytestmark = [pytest.mark.reliability, pytest.mark.e2e]

KILL_AT = (0.25, 0.5, 0.75)


def _wait_deliveries(worker: HubProcess, count: int, timeout: float = 60.0) -> None:
    """Wait until ``worker`` logged ``count`` deliveries: it is then busy, with a full prefetch in hand."""
    deadline = time.monotonic() + timeout
    while count_events(worker.output(), "delivered") < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"{worker.name} delivered fewer than {count} messages:\n{worker.output()[-2000:]}")
        time.sleep(0.1)


def test_worker_killed_mid_batch_loses_and_duplicates_nothing(
    make_hub: HubFactory,
    portal: httpx.Client,
    portal_url: str,
    database: ScratchDatabase,
    scale: Scale,
    record_figures: list[Figures],
) -> None:
    """SIGKILL the worker while it holds a full prefetch and calls are in flight; start it again.

    Dossier states in doubt are looked up on the portal (TraCuuHoSo) and not sent twice; a progress
    step whose call was in flight is sent again (the portal cannot list steps): at most a prefetch
    of them per kill.
    """
    prefetch = 32
    hub = make_hub(prefetch=prefetch)
    hub.start_ingress()
    worker = hub.start_worker()
    portal.post("/_mock/faults", json={"latency_ms": 40})  # calls take a while: each kill finds some in flight
    stream = TrafficStream(hub.url, plan_messages(scale.messages, uuid.uuid4().hex[:6])).start()
    for share in KILL_AT:
        stream.wait_accepted(int(len(stream) * share))
        _wait_deliveries(worker, 20)
        worker.kill()
        time.sleep(0.5)
        worker = hub.start_worker()
    stream.join()
    portal.post("/_mock/faults", json={"latency_ms": 0})
    figures = reconcile(
        "1 worker SIGKILL x3",
        stream.messages,
        database_url=database.url,
        portal_url=portal_url,
        settle_timeout=scale.settle_timeout,
    )
    figures.notes["confirmed_by_target"] = count_events(hub.logs(tail=10**9), "confirmed_by_target")
    record_figures.append(figures)
    figures.assert_accounted(max_repeated_steps=len(KILL_AT) * prefetch, hub=hub)


def test_ingress_killed_while_clients_post_loses_and_duplicates_nothing(
    make_hub: HubFactory,
    portal_url: str,
    database: ScratchDatabase,
    scale: Scale,
    record_figures: list[Figures],
) -> None:
    """SIGKILL the ingress while clients post; they retry what got no answer with the same Idempotency-Key.

    Every 202 must be accounted for, and a retried message must be stored and delivered once.
    """
    hub = make_hub()
    ingress = hub.start_ingress()
    hub.start_worker()
    stream = TrafficStream(hub.url, plan_messages(scale.messages, uuid.uuid4().hex[:6])).start()
    for share in KILL_AT:
        stream.wait_accepted(int(len(stream) * share))
        ingress.kill()
        time.sleep(0.5)
        ingress = hub.start_ingress()
    stream.join()
    figures = reconcile(
        "2 ingress SIGKILL x3",
        stream.messages,
        database_url=database.url,
        portal_url=portal_url,
        settle_timeout=scale.settle_timeout,
    )
    figures.notes["requests_without_answer"] = sum(m.no_answer for m in stream.messages)
    record_figures.append(figures)
    assert figures.notes["requests_without_answer"] > 0, "the kills should have left some requests unanswered"
    figures.assert_accounted(hub=hub)
