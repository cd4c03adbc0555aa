"""Faults 5 and 6: the national portal down for a while, and the national portal slow."""

from __future__ import annotations

import threading
import time
import uuid

import httpx
import pytest

from tests.reliability.conftest import HubFactory, Scale, ScratchDatabase
from tests.reliability.faults import queue_depth, rss_bytes
from tests.reliability.reconciliation import Figures, reconcile
from tests.reliability.traffic import TrafficStream, plan_messages
from tests.support.harness import RABBITMQ_URL
from tests.support.processes import HubProcess
from tests.support.proxy import SwitchableProxy

pytestmark = [pytest.mark.reliability, pytest.mark.e2e]

MIB = 1024 * 1024


def test_target_down_then_back_loses_and_duplicates_nothing(
    make_hub: HubFactory,
    portal: httpx.Client,
    portal_url: str,
    database: ScratchDatabase,
    scale: Scale,
    record_figures: list[Figures],
) -> None:
    """The portal answers 503 for half the outage, then refuses connections for the other half.

    The ingress keeps accepting; workers retry with backoff (tiers 1 s, 5 s, 15 s; 10 attempts: longer
    than the outage, as the production routes are) and everything is delivered once it is back.
    """
    outage = scale.target_outage_seconds
    with SwitchableProxy(int(portal_url.rsplit(":", 1)[1])) as proxy:
        hub = make_hub(portal_url=proxy.url, backoff=["1s", "5s", "15s"], attempts=10)
        hub.start_ingress()
        hub.start_worker()
        stream = TrafficStream(hub.url, plan_messages(scale.messages, uuid.uuid4().hex[:6])).start()
        stream.wait_accepted(len(stream) // 4)
        accepted_before = stream.accepted
        portal.post("/_mock/faults", json={"outage_seconds": outage / 2, "status": 503})
        time.sleep(outage / 2)
        proxy.refuse()
        time.sleep(outage / 2)
        accepted_during = stream.accepted - accepted_before
        proxy.accept()
        stream.join()
        figures = reconcile(
            f"5 target down {outage:g} s (503, then refused)",
            stream.messages,
            database_url=database.url,
            portal_url=portal_url,
            settle_timeout=scale.settle_timeout,
        )
    calls = portal.get("/_mock/stats").json()["calls_by_outcome"]
    figures.notes.update(outage_seconds=outage, accepted_during_outage=accepted_during, portal_calls=calls)
    record_figures.append(figures)
    assert accepted_during > 0, "the ingress should keep accepting while the target is down"
    assert calls.get("http_error", 0) > 0, "the workers should have met the 503s"
    figures.assert_accounted(hub=hub)


class _MemoryWatch:
    """Samples the resident memory of hub processes and the depth of the target queue."""

    def __init__(self, processes: dict[str, HubProcess], queue: str) -> None:
        self.processes = processes
        self.queue = queue
        self.peak_rss = dict.fromkeys(processes, 0)
        self.start_rss = {name: rss_bytes(self._pid(p)) for name, p in processes.items()}
        self.max_depth = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memory-watch", daemon=True)

    @staticmethod
    def _pid(process: HubProcess) -> int:
        return process.process.pid if process.process is not None else 0

    def __enter__(self) -> _MemoryWatch:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            for name, process in self.processes.items():
                self.peak_rss[name] = max(self.peak_rss[name], rss_bytes(self._pid(process)))
            try:
                self.max_depth = max(self.max_depth, queue_depth(RABBITMQ_URL, self.queue))
            except Exception:  # noqa: S112 - the next sample will do
                continue

    def growth_mib(self, name: str) -> float:
        return round((self.peak_rss[name] - self.start_rss[name]) / MIB, 1)


def _calls_done(portal: httpx.Client) -> int:
    outcomes = portal.get("/_mock/stats").json()["calls_by_outcome"]
    return sum(count for outcome, count in outcomes.items() if outcome != "pending")


def test_slow_target_with_full_prefetch_keeps_ingress_accepting_with_bounded_memory(
    make_hub: HubFactory,
    portal: httpx.Client,
    portal_url: str,
    database: ScratchDatabase,
    scale: Scale,
    record_figures: list[Figures],
) -> None:
    """2 s per portal call: the worker's prefetch fills, the backlog waits in RabbitMQ (the queue grows),
    the ingress keeps answering 202 and neither process's memory grows with the backlog."""
    prefetch = 32
    hub = make_hub(prefetch=prefetch)
    ingress = hub.start_ingress()
    worker = hub.start_worker()
    portal.post("/_mock/faults", json={"latency_ms": 2000})
    stream = TrafficStream(hub.url, plan_messages(scale.messages, uuid.uuid4().hex[:6]))
    with _MemoryWatch({"ingress": ingress, "worker": worker}, hub.target_queue) as watch:
        stream.start()
        stream.join()
        # Stay slow until the worker has finished a prefetch's worth of calls at 2 s each.
        deadline = time.monotonic() + 120
        while (done := _calls_done(portal)) < prefetch and time.monotonic() < deadline:
            time.sleep(0.5)
    portal.post("/_mock/faults", json={"latency_ms": 0})
    figures = reconcile(
        "6 target slow (2 s per call), prefetch full",
        stream.messages,
        database_url=database.url,
        portal_url=portal_url,
        settle_timeout=scale.settle_timeout,
    )
    figures.notes.update(
        max_queue_depth=watch.max_depth,
        portal_calls_done_while_slow=done,
        rss_start_mib={k: round(v / MIB, 1) for k, v in watch.start_rss.items()},
        rss_growth_mib={name: watch.growth_mib(name) for name in watch.peak_rss},
    )
    record_figures.append(figures)
    assert all(m.statuses == [202] for m in stream.messages), "the ingress should accept every message at once"
    assert watch.max_depth > 2 * prefetch, f"the backlog should wait in RabbitMQ: depth {watch.max_depth}"
    assert watch.growth_mib("worker") < 64, figures.notes
    assert watch.growth_mib("ingress") < 64, figures.notes
    figures.assert_accounted(hub=hub)
