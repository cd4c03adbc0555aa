"""Deliveries the hub cannot be sure about: copies of one message, an attempt that timed out after
reaching the portal, a progress step that overtook its dossier's creation (found by tests/reliability)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.services import Publisher
from hub.store import DeliveryState
from tests.support.harness import RunningHub, eventually, running_hub, write_routes
from tests.support.payloads import dossier, dossier_code, step
from tests.support.proxy import SwitchableProxy

pytestmark = pytest.mark.integration


async def _state(hub: RunningHub, message_id: str) -> str:
    return await hub.delivery_state(message_id)


async def _delivered(hub: RunningHub, message_id: str, timeout: float = 30) -> None:
    async def done() -> bool:
        return await _state(hub, message_id) == DeliveryState.DELIVERED

    await eventually(done, timeout=timeout)


def _accepted_calls(portal: httpx.Client, service: str) -> list[dict[str, Any]]:
    return [c for c in portal.get("/_mock/calls").json() if c["service"] == service and c["outcome"] == "accepted"]


async def test_two_copies_of_one_message_reach_the_portal_once(hub: RunningHub, portal: httpx.Client) -> None:
    """A message published twice (a client retry or the outbox relay after the ingress died before
    recording the broker's confirm) is delivered once, for latest-state and for batched routes."""
    code = dossier_code()
    publisher = Publisher(hub.hub)
    for message_type, payload, route in (
        ("dossier.upserted", dossier(code), "dossier-sync"),
        ("dossier.progress", step(code, 1), "dossier-progress"),
    ):
        view, _ = await hub.hub.store.accept(
            message_type=message_type,
            source="onestop",
            dossier_code=code,
            payload=payload,
            targets=[("national-portal", route)],
            idempotency_key=None,
            message_id=str(uuid.uuid4()),
        )
        targets = ["national-portal"]
        await asyncio.gather(*(publisher.publish(view.envelope, targets) for _ in range(3)))
        await _delivered(hub, view.envelope.id)
    await asyncio.sleep(0.5)  # let the copies reach the worker
    assert len(_accepted_calls(portal, "DongBoHoSoMC")) == 1
    assert len(_accepted_calls(portal, "CapNhatTienDoHoSoMC")) == 1
    assert portal.get("/_mock/stats").json()["duplicates"] == 0


async def test_a_progress_step_that_overtakes_its_dossier_is_retried_not_dead_lettered(
    hub: RunningHub, portal: httpx.Client
) -> None:
    code = dossier_code()
    portal.post("/_mock/faults", json={"fail_next": 1, "status": 503, "retry_after": 1})
    created = await hub.post("dossier.upserted", dossier(code))
    stepped = await hub.post("dossier.progress", step(code, 1))
    assert created.status_code == stepped.status_code == 202
    await _delivered(hub, created.json()["id"])
    await _delivered(hub, stepped.json()["id"])
    events = (await hub.message(stepped.json()["id"]))["events"]
    failures = [e["detail"] for e in events if e["kind"] == "attempt_failed"]
    assert failures, "the step should have reached the portal before its dossier"
    assert all("still on its way" in detail for detail in failures)
    assert portal.get(f"/_mock/dossiers/{code}").json()["steps"][0]["NoiDungXuLy"] == "Bước xử lý số 1"
    services = [c["service"] for c in portal.get("/_mock/calls").json()]
    assert "TraCuuHoSo" not in services, "a 503 is a clear answer: the retry need not ask the portal first"


async def test_an_attempt_that_timed_out_after_reaching_the_portal_is_confirmed_not_resent(
    database_url: str, tmp_path: Path, portal_url: str, portal: httpx.Client
) -> None:
    """The portal took the dossier after the adapter gave up waiting (3 s); the retry asks the portal
    (TraCuuHoSo) before sending, finds the state there and records it as delivered."""
    routes = write_routes(tmp_path / "routes", portal_url, backoff="[2s]", attempts=3)
    async with running_hub(database_url=database_url, routes_dir=routes, portal_url=portal_url) as hub:
        portal.post("/_mock/faults", json={"latency_ms": 4000})
        code = dossier_code()
        response = await hub.post("dossier.upserted", dossier(code))
        assert response.status_code == 202

        async def call_started() -> bool:
            return any(c["service"] == "DongBoHoSoMC" for c in portal.get("/_mock/calls").json())

        await eventually(call_started, timeout=10)
        portal.post("/_mock/faults", json={"latency_ms": 0})  # the call in flight still takes 4 s
        await _delivered(hub, response.json()["id"], timeout=30)
        message = await hub.message(response.json()["id"])
    assert message["deliveries"][0]["attempts"] == 2
    assert message["deliveries"][0]["in_doubt"] is True  # the API says why the portal was asked first
    services = [c["service"] for c in portal.get("/_mock/calls").json()]
    assert services == ["DongBoHoSoMC", "TraCuuHoSo"]
    assert portal.get(f"/_mock/dossiers/{code}").json()["status_history"] == [1]


async def test_the_doubt_is_kept_in_the_store_so_a_resent_overdue_retry_is_looked_up_too(
    database_url: str, tmp_path: Path, portal_url: str, portal: httpx.Client
) -> None:
    """As above, but the retry copy (which carries the doubt as a header) is lost in its tier, and the
    worker's overdue watch publishes a fresh copy. The doubt is read from the store, so the portal is
    still asked before sending, and the state is not sent twice (found by tests/reliability, fault 5)."""
    routes = write_routes(tmp_path / "routes", portal_url, backoff="[60s]", attempts=3)
    async with running_hub(database_url=database_url, routes_dir=routes, portal_url=portal_url) as hub:
        portal.post("/_mock/faults", json={"latency_ms": 4000})
        code = dossier_code()
        response = await hub.post("dossier.upserted", dossier(code))
        assert response.status_code == 202
        message_id = response.json()["id"]

        async def retrying() -> bool:
            return await _state(hub, message_id) == DeliveryState.RETRYING

        await eventually(retrying, timeout=15)  # the adapter gave up waiting after 3 s
        portal.post("/_mock/faults", json={"latency_ms": 0})
        await eventually(lambda: _portal_has(portal, code), timeout=10)  # ... and the portal took it at 4 s
        retry_queue = hub.hub.broker.topology.retry_queue("national-portal", 60.0)
        await eventually(lambda: _depth(hub, retry_queue, 1), timeout=10)
        channel = await hub.hub.broker.channel(1)
        try:
            await (await channel.get_queue(retry_queue)).purge()  # the retry copy is lost
        finally:
            await channel.close()
        # Due a minute ago: the worker's overdue watch (every 5 s) sends the retry again, as a plain copy.
        await hub.hub.store.mark_retrying(
            message_id, "national-portal", attempt=1, delay_seconds=-60, reason="(test) the copy was lost"
        )
        await _delivered(hub, message_id, timeout=30)
        message = await hub.message(message_id)
    kinds = [e["kind"] for e in message["events"]]
    assert "delivered" in kinds
    services = [c["service"] for c in portal.get("/_mock/calls").json()]
    assert services == ["DongBoHoSoMC", "TraCuuHoSo"], "the resent copy must ask the portal, not send again"
    assert portal.get(f"/_mock/dossiers/{code}").json()["status_history"] == [1]


async def test_a_refused_connection_sent_nothing_so_the_retry_is_not_looked_up(
    database_url: str, tmp_path: Path, portal_url: str, portal: httpx.Client
) -> None:
    """The gateway refuses connections: the call never left the hub, so the retry sends at once,
    without asking the portal first (each lookup is a call the portal's owners count)."""
    with SwitchableProxy(int(portal_url.rsplit(":", 1)[1])) as proxy:
        routes = write_routes(tmp_path / "routes", proxy.url, backoff="[1s]", attempts=10)
        async with running_hub(database_url=database_url, routes_dir=routes, portal_url=portal_url) as hub:
            proxy.refuse()
            code = dossier_code()
            response = await hub.post("dossier.upserted", dossier(code))
            assert response.status_code == 202
            message_id = response.json()["id"]

            async def refused() -> bool:
                return int((await hub.message(message_id))["deliveries"][0]["attempts"]) >= 1

            await eventually(refused, timeout=15)
            delivery = (await hub.message(message_id))["deliveries"][0]
            assert "Could not connect" in delivery["last_error"]
            assert delivery["in_doubt"] is False
            proxy.accept()
            await _delivered(hub, message_id, timeout=30)
            assert (await hub.message(message_id))["deliveries"][0]["in_doubt"] is False
    services = [c["service"] for c in portal.get("/_mock/calls").json()]
    assert services == ["DongBoHoSoMC"], "nothing reached the portal before, so nothing to look up"
    assert portal.get(f"/_mock/dossiers/{code}").json()["status_history"] == [1]


async def _portal_has(portal: httpx.Client, code: str) -> bool:
    return portal.get(f"/_mock/dossiers/{code}").status_code == 200


async def _depth(hub: RunningHub, queue: str, count: int) -> bool:
    return await hub.hub.broker.queue_depth(queue) == count
