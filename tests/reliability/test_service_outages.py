"""Faults 3 and 4: RabbitMQ stopped and started again, PostgreSQL connections cut, while traffic flows."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from tests.conftest import PG_ADMIN_DSN
from tests.reliability.conftest import HubFactory, Scale, ScratchDatabase, unavailable
from tests.reliability.faults import broker_stopped, rabbitmqctl_available, terminate_backends
from tests.reliability.reconciliation import Figures, reconcile
from tests.reliability.traffic import TrafficStream, plan_messages
from tests.support.logs import count_events

pytestmark = [pytest.mark.reliability, pytest.mark.e2e]


def test_broker_stopped_and_started_mid_stream_loses_and_duplicates_nothing(
    make_hub: HubFactory,
    portal: httpx.Client,
    portal_url: str,
    database: ScratchDatabase,
    scale: Scale,
    record_figures: list[Figures],
) -> None:
    """``rabbitmqctl stop_app`` mid-stream, ``start_app`` after a while: the ingress answers 503 meanwhile,
    clients retry, the hub reconnects by itself and every accepted message is delivered once. Workers
    publish retries while it is down (their portal calls fail then): that must not stop their consumers."""
    if not rabbitmqctl_available():
        unavailable("rabbitmqctl", "it must control the local RabbitMQ: run the suite as root or the rabbitmq user")
    hub = make_hub()
    hub.start_ingress()
    hub.start_worker()
    run = uuid.uuid4().hex[:6]
    stream = TrafficStream(hub.url, plan_messages(scale.messages * 2 // 3, run)).start()
    stream.wait_accepted(len(stream) // 2)
    outage = 15.0 if scale.full else 5.0
    # Portal calls in flight when RabbitMQ stops fail, so workers must publish retries while it is down.
    portal.post("/_mock/faults", json={"latency_ms": 300, "fail_next": 10_000, "status": 503})
    with broker_stopped():
        # The last third is posted only once RabbitMQ is down: stop_app can take seconds, and the first
        # stream may have finished by then (a CI run saw no request at all during the outage).
        late = TrafficStream(hub.url, plan_messages(scale.messages // 3, run)).start()
        accepted_before = stream.accepted + late.accepted
        open_when_stopped = len(stream) - stream.answered
        time.sleep(outage)
        accepted_during = stream.accepted + late.accepted - accepted_before
    portal.delete("/_mock/faults")
    stream.join()
    late.join()
    messages = stream.messages + late.messages
    figures = reconcile(
        "3 RabbitMQ stop_app/start_app",
        messages,
        database_url=database.url,
        portal_url=portal_url,
        settle_timeout=scale.settle_timeout,
    )
    figures.notes.update(
        broker_down_seconds=outage,
        answered_503=sum(m.statuses.count(503) for m in messages),
        retry_publishes_refused=count_events(hub.logs(tail=10**9), "broker_publish_failed_message_kept"),
        accepted_while_down=accepted_during,
        posts_without_answer=sum(m.no_answer for m in messages),
        first_stream_open_when_stopped=open_when_stopped,
    )
    record_figures.append(figures)
    assert figures.notes["answered_503"] > 0, (
        "the ingress should have refused messages while RabbitMQ was down; "
        f"{figures.notes['posts_without_answer']} posts got no answer (timeouts mean the ingress hung)"
    )
    assert figures.notes["retry_publishes_refused"] > 0, "the worker should have tried to publish retries meanwhile"
    figures.assert_accounted(hub=hub)


def test_database_connections_cut_mid_stream_lose_and_duplicate_nothing(
    make_hub: HubFactory,
    portal_url: str,
    database: ScratchDatabase,
    scale: Scale,
    record_figures: list[Figures],
) -> None:
    """``pg_terminate_backend`` on every connection of the hub's database, three times mid-stream."""
    hub = make_hub()
    hub.start_ingress()
    hub.start_worker()
    stream = TrafficStream(hub.url, plan_messages(scale.messages, uuid.uuid4().hex[:6])).start()
    terminated = 0
    for share in (0.25, 0.5, 0.75):
        stream.wait_accepted(int(len(stream) * share))
        for _ in range(3):  # a few cuts in a row, so connections checked out meanwhile die too
            terminated += terminate_backends(PG_ADMIN_DSN, database.name)
            time.sleep(0.3)
    stream.join()
    figures = reconcile(
        "4 PostgreSQL backends terminated x3",
        stream.messages,
        database_url=database.url,
        portal_url=portal_url,
        settle_timeout=scale.settle_timeout,
    )
    figures.notes["connections_terminated"] = terminated
    record_figures.append(figures)
    assert terminated > 0
    figures.assert_accounted(hub=hub)
