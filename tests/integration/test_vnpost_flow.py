"""Postal delivery through the hub: postal.order / postal.cancel (request-reply), tracking callbacks and
polling, and postal.status_changed delivered to the one-stop system in order per parcel.

Real RabbitMQ and database; VNPost, the national portal and the one-stop system are the mocks.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from adapters.vnpost.shipments import ShipmentBook
from mocks.vnpost import DEFAULT_CALLBACK_TOKEN
from tests.support.harness import ONESTOP_KEY, RunningHub, eventually, running_hub
from tests.support.partners import (  # noqa: F401 - fixtures
    RECEIVER,
    payment_url,
    received,
    receiver,
    receiver_url,
    vnpost,
    vnpost_url,
    write_partner_routes,
)
from tests.support.payloads import dossier, dossier_code
from tests.support.streaming import stream_large_body

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def post_hub(
    tmp_path_factory: pytest.TempPathFactory,
    portal_url: str,
    payment_url: str,  # noqa: F811
    vnpost_url: str,  # noqa: F811
    receiver_url: str,  # noqa: F811
) -> AsyncIterator[RunningHub]:
    os.environ.setdefault("HUB_SYSTEM_KEY_ONESTOP", ONESTOP_KEY)
    folder = tmp_path_factory.mktemp("vnpost")
    routes = write_partner_routes(
        folder / "routes", portal_url=portal_url, payment_url=payment_url, vnpost_url=vnpost_url,
        receiver_url=receiver_url, poll_after="400ms", poll_interval="200ms",
    )  # fmt: skip
    async with running_hub(
        database_url=f"sqlite+aiosqlite:///{folder}/hub.db", routes_dir=routes, portal_url=portal_url
    ) as running:
        async with httpx.AsyncClient(base_url=vnpost_url) as client:
            await client.post("/_mock/config", json={"callback_url": f"{running.url}/v1/callbacks/vnpost"})
        yield running


async def request(hub: RunningHub, message_type: str, body: dict[str, Any]) -> httpx.Response:
    return await hub.client.post(
        f"{hub.url}/v1/requests/{message_type}", json=body, headers={"Authorization": f"Bearer {ONESTOP_KEY}"}
    )


async def order(hub: RunningHub, code: str) -> str:
    """Send the dossier (name and phone come from it), then order a parcel for its result."""
    assert (await hub.post("dossier.upserted", dossier(code, status=9))).status_code == 202
    answer = await request(hub, "postal.order", {"MaHoSo": code, "Direction": "result", "Receiver": RECEIVER})
    assert answer.status_code == 200, answer.text
    result = answer.json()["result"]
    assert result["OrderNumber"] == code
    return str(result["ItemCode"])


async def statuses(receiver: httpx.AsyncClient, code: str) -> list[int]:  # noqa: F811
    return [m["payload"]["Status"] for m in await received(receiver, "postal.status_changed", code)]


async def test_a_parcel_is_followed_to_delivered_in_order_despite_reordered_and_duplicated_callbacks(
    post_hub: RunningHub,
    vnpost: httpx.AsyncClient,  # noqa: F811
    receiver: httpx.AsyncClient,  # noqa: F811
    portal: httpx.Client,
) -> None:
    hub = post_hub
    code = dossier_code()
    item = await order(hub, code)
    parcel = (await vnpost.get(f"/_mock/orders/{item}")).json()["Order"]
    assert parcel["Receiver"]["FullName"] == "Nguyễn Thị Thử Nghiệm", "the applicant's name comes from the dossier"
    assert parcel["Receiver"]["Phone"] == "0900000001"

    async def reached(status: int) -> list[int] | None:
        seen = await statuses(receiver, code)
        return seen if seen and seen[-1] == status else None

    await eventually(lambda: reached(0))
    await vnpost.post("/_mock/faults", json={"duplicate_next": 1})
    await vnpost.post("/_mock/clock/advance", json={"ItemCode": item})
    await eventually(lambda: reached(1))
    await vnpost.post("/_mock/faults", json={"reverse_callbacks": True})
    await vnpost.post("/_mock/clock/advance", json={"ItemCode": item, "steps": 3})  # 4, 3, 2 arrive in that order
    seen = await eventually(lambda: reached(4))
    assert seen == [0, 1, 2, 3, 4], "every status once, in order, although 4 and 3 arrived before 2"
    last = (await received(receiver, "postal.status_changed", code))[-1]["payload"]
    assert [e["Status"] for e in last["History"]] == [0, 1, 2, 3, 4], "the newest status carries the whole history"
    assert last["ItemCode"] == item
    shipment = await ShipmentBook(hub.hub.store.engine).by_item_code(item)
    assert shipment is not None
    assert (shipment.state, shipment.status) == ("delivered", 4)


async def test_a_quiet_parcel_is_polled_until_delivered(
    post_hub: RunningHub,
    vnpost: httpx.AsyncClient,  # noqa: F811
    receiver: httpx.AsyncClient,  # noqa: F811
    portal: httpx.Client,
) -> None:
    hub = post_hub
    code = dossier_code()
    item = await order(hub, code)
    await vnpost.post("/_mock/faults", json={"callbacks": False})
    await vnpost.post("/_mock/clock/advance", json={"ItemCode": item, "steps": 4})

    async def delivered() -> list[int] | None:
        seen = await statuses(receiver, code)
        return seen if seen and seen[-1] == 4 else None

    seen = await eventually(delivered)
    assert seen == sorted(seen)
    assert any(c["service"] == "getOrderTracking" for c in (await vnpost.get("/_mock/calls")).json())
    assert {c["outcome"] for c in (await vnpost.get("/_mock/callbacks")).json()} == {"quiet"}


async def test_cancel_and_callback_refusals(
    post_hub: RunningHub,
    vnpost: httpx.AsyncClient,  # noqa: F811
    receiver: httpx.AsyncClient,  # noqa: F811
    portal: httpx.Client,
) -> None:
    hub = post_hub
    code = dossier_code()
    item = await order(hub, code)
    cancelled = await request(hub, "postal.cancel", {"MaHoSo": code, "Reason": "Công dân nhận tại quầy"})
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["result"] == {"MaHoSo": code, "ItemCode": item, "Cancelled": True}

    picked = dossier_code()
    picked_item = await order(hub, picked)
    await vnpost.post("/_mock/clock/advance", json={"ItemCode": picked_item})
    refused = await request(hub, "postal.cancel", {"MaHoSo": picked, "Reason": "Muộn"})
    assert refused.status_code == 422
    assert "Status 105" in refused.json()["detail"]

    event = {"ItemCode": picked_item, "Status": 2, "Time": "20261128100000"}
    url = f"{hub.url}/v1/callbacks/vnpost"
    forged = await hub.client.post(url, json=event, headers={"X-VNPost-Token": "wrong"})
    assert forged.status_code == 401
    unknown = await hub.client.post(
        url, json={**event, "ItemCode": "EB000000000VN"}, headers={"X-VNPost-Token": DEFAULT_CALLBACK_TOKEN}
    )
    assert unknown.json()["Status"] == "104"
    bad = await hub.client.post(url, json={"ItemCode": picked_item}, headers={"X-VNPost-Token": DEFAULT_CALLBACK_TOKEN})
    assert (bad.status_code, bad.json()["Status"]) == (400, "102")
    events = await ShipmentBook(hub.hub.store.engine).events(picked_item)
    assert [e.status for e in events] == [0, 1], "refused callbacks stored nothing"
    invalid = await request(
        hub, "postal.order", {"MaHoSo": dossier_code(), "Receiver": {**RECEIVER, "WardCode": "14464"}}
    )
    assert invalid.status_code == 422
    assert "not in province 01" in str(invalid.json()["errors"])


# --------------------------------------------------------------------------- the edge (issue #17)


async def test_a_large_callback_is_refused_before_it_is_read_with_or_without_a_token(post_hub: RunningHub) -> None:
    url = f"{post_hub.url}/v1/callbacks/vnpost"
    # Before issue #17, 200 MB without a token were read whole (276 MB → 585 MB of memory) before a 413.
    stranger = await stream_large_body(url, {"Content-Type": "application/json"})
    assert stranger.status == 401, stranger.head
    assert stranger.closed
    assert stranger.sent < 8 * 1024 * 1024  # of 64 MiB
    partner = await stream_large_body(
        url, {"Content-Type": "application/json", "X-VNPost-Token": DEFAULT_CALLBACK_TOKEN}
    )
    assert partner.status == 413, partner.head
    assert partner.closed
    assert partner.sent < 8 * 1024 * 1024


async def test_a_callback_with_control_characters_is_refused_with_a_sentence(post_hub: RunningHub) -> None:
    url = f"{post_hub.url}/v1/callbacks/vnpost"
    headers = {"X-VNPost-Token": DEFAULT_CALLBACK_TOKEN}
    event = {"ItemCode": "EB\u0000VN", "Status": 2, "Time": "20261128100000"}
    refused = await post_hub.client.post(url, json=[event], headers=headers)
    assert refused.status_code == 400, refused.text
    assert refused.json()["detail"] == "Field '0.ItemCode' holds a control character (U+0000); remove it."
