"""The VNPost adapter against the fake VNPost, over real sockets: token cache and refresh, orders,
cancellation, tracking, and the translation of every failure."""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from adapters.vnpost import VNPostAdapter, create_adapter
from hub.adapter import RequestContext
from hub.envelope import Envelope
from hub.errors import PermanentDeliveryError, TransientDeliveryError
from hub.store import MessageStore
from schemas.postal import PostalOrder, PostalParty
from tests.support.partners import RECEIVER, bind_store, vnpost, vnpost_url  # noqa: F401 - fixtures
from tests.support.payloads import dossier_code

Factory = Callable[..., Awaitable[VNPostAdapter]]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[MessageStore]:
    store = MessageStore.open(f"sqlite+aiosqlite:///{tmp_path}/shipments.db")
    await store.migrate()
    yield store
    await store.aclose()


def _config(base_url: str, **overrides: Any) -> dict[str, Any]:
    return {
        "base_url": base_url,
        "username": "lgsp-demo",
        "password": "sample-vnpost-password-for-the-mock",
        "customer_code": "C000001",
        "timeout_seconds": "1s",
        "agency_name": "Bộ phận Một cửa",
        "agency_phone": "02400000000",
        "agency_address": "1 Đường Thử",
        "agency_province": "01",
        "agency_ward": "00070",
        **overrides,
    }


@pytest.fixture
async def make_adapter(vnpost_url: str, store: MessageStore) -> AsyncIterator[Factory]:  # noqa: F811
    adapters: list[VNPostAdapter] = []

    async def factory(*, store_: MessageStore | None = None, **overrides: Any) -> VNPostAdapter:
        adapter = create_adapter("vnpost", {**_config(vnpost_url), **overrides})
        bind_store(adapter, store_ or store)
        adapters.append(adapter)
        return adapter

    yield factory
    for adapter in adapters:
        await adapter.aclose()


def _order(code: str, **fields: Any) -> Envelope:
    receiver = {**RECEIVER, "FullName": "Nguyễn Văn Nhận", "Phone": "0900000002"}
    return Envelope(
        id=str(uuid.uuid4()),
        type="postal.order",
        source="onestop",
        payload={"MaHoSo": code, "Direction": "result", "Receiver": receiver, "CODAmount": 0, **fields},
    )


def _cancel(code: str, item_code: str | None = None) -> Envelope:
    payload: dict[str, Any] = {"MaHoSo": code, "Reason": "Công dân nhận tại quầy"}
    if item_code:
        payload["ItemCode"] = item_code
    return Envelope(id=str(uuid.uuid4()), type="postal.cancel", source="onestop", payload=payload)


def _context() -> RequestContext:
    return RequestContext(target="vnpost", route="postal-order", source="onestop", attempt=1, deadline=0)


# ------------------------------------------------------------------ schema: administrative units


def test_codes_are_checked_against_the_current_units_and_old_province_codes_are_mapped() -> None:
    party = PostalParty(Address="1 A", ProvinceCode="1", WardCode="70")
    assert (party.ProvinceCode, party.WardCode) == ("01", "00070")
    merged = PostalParty(Address="1 A", ProvinceCode="35", DistrictCode="347", WardCode="14464")  # Hà Nam → Ninh Bình
    assert (merged.ProvinceCode, merged.DistrictCode) == ("37", "347")
    with pytest.raises(ValidationError, match="not in province 37"):
        PostalParty(Address="1 A", ProvinceCode="37", WardCode="00070")
    with pytest.raises(ValidationError, match="not a province code"):
        PostalParty(Address="1 A", ProvinceCode="99", WardCode="00070")
    with pytest.raises(ValidationError, match="not a current ward"):
        PostalParty(Address="1 A", ProvinceCode="01", WardCode="99999")
    with pytest.raises(ValidationError, match="applicant's address"):
        PostalOrder(MaHoSo=dossier_code(), Direction="result")


# ------------------------------------------------------------------ orders, tracking, cancel


async def test_an_order_gets_an_item_code_and_the_token_is_cached(
    make_adapter: Factory,
    vnpost: httpx.AsyncClient,  # noqa: F811
) -> None:
    adapter = await make_adapter()
    code = dossier_code()
    envelope = _order(code, CODAmount=50_000)
    answer = await adapter.request(envelope, _context())
    assert answer["OrderNumber"] == code
    assert answer["ItemCode"].startswith("EB")
    order = (await vnpost.get(f"/_mock/orders/{answer['ItemCode']}")).json()["Order"]
    assert order["OrderNumber"] == code
    assert order["CODAmount"] == 50_000
    assert order["Sender"]["FullName"] == "Bộ phận Một cửa", "the agency's side comes from the settings"
    assert order["Receiver"]["WardCode"] == "00070"
    assert await adapter.request(envelope, _context()) == answer, "a redelivered request returns the same parcel"
    await adapter.request(_order(dossier_code()), _context())
    faults = (await vnpost.get("/_mock/faults")).json()
    assert faults["tokens_issued"] == 1
    events = await adapter.book.events(answer["ItemCode"])
    assert [e.status for e in events] == [0]

    await vnpost.post("/_mock/clock/advance", json={"steps": 2, "ItemCode": answer["ItemCode"]})
    tracking = await adapter.tracking(answer["ItemCode"])
    assert [e.Status for e in tracking.Events] == [0, 1, 2]


async def test_an_expired_token_is_refreshed_once(
    make_adapter: Factory,
    vnpost: httpx.AsyncClient,  # noqa: F811
) -> None:
    adapter = await make_adapter()
    await adapter.request(_order(dossier_code()), _context())
    await vnpost.post("/_mock/faults", json={"expire_tokens": True})
    await adapter.request(_order(dossier_code()), _context())
    assert (await vnpost.get("/_mock/faults")).json()["tokens_issued"] == 2
    await vnpost.post("/_mock/faults", json={"reject_tokens": True})
    with pytest.raises(PermanentDeliveryError, match=r"HTTP 401.*credentials"):
        await adapter.request(_order(dossier_code()), _context())


async def test_cancel_before_pickup_only(
    make_adapter: Factory,
    vnpost: httpx.AsyncClient,  # noqa: F811
) -> None:
    adapter = await make_adapter()
    first, second = dossier_code(), dossier_code()
    item = (await adapter.request(_order(first), _context()))["ItemCode"]
    cancelled = await adapter.request(_cancel(first), _context())
    assert cancelled == {"MaHoSo": first, "ItemCode": item, "Cancelled": True}
    assert (await vnpost.get(f"/_mock/orders/{item}")).json()["Cancelled"] is True
    other = (await adapter.request(_order(second), _context()))["ItemCode"]
    await vnpost.post("/_mock/clock/advance", json={"ItemCode": other})
    with pytest.raises(PermanentDeliveryError, match="Status 105"):
        await adapter.request(_cancel(second, other), _context())


async def test_an_order_vnpost_already_has_is_adopted_or_refused(
    make_adapter: Factory,
    tmp_path: Path,
) -> None:
    adapter = await make_adapter()
    code = dossier_code()
    item = (await adapter.request(_order(code), _context()))["ItemCode"]
    with pytest.raises(PermanentDeliveryError, match=f"already has an open parcel {item}"):
        await adapter.request(_order(code), _context())
    # A hub that lost its record (postOrder answered, then a crash) adopts VNPost's parcel.
    fresh = MessageStore.open(f"sqlite+aiosqlite:///{tmp_path}/fresh.db")
    await fresh.migrate()
    try:
        forgetful = await make_adapter(store_=fresh)
        adopted = await forgetful.request(_order(code), _context())
        assert adopted["ItemCode"] == item
    finally:
        await fresh.aclose()


async def test_the_applicant_name_and_phone_must_come_from_somewhere(make_adapter: Factory) -> None:
    adapter = await make_adapter()
    envelope = _order(dossier_code())
    bare = {**envelope.payload, "Receiver": RECEIVER}
    with pytest.raises(PermanentDeliveryError, match="lacks the applicant's FullName or Phone"):
        await adapter.request(envelope.model_copy(update={"payload": bare}), _context())


# ------------------------------------------------------------------ failure mapping


@pytest.mark.parametrize(
    ("faults", "error", "words"),
    [
        ({"fail_next": 1, "status": 503}, TransientDeliveryError, "HTTP 503"),
        ({"fail_next": 1, "status": 429}, TransientDeliveryError, "HTTP 429"),
        ({"fail_next": 1, "status": 403}, PermanentDeliveryError, "HTTP 403"),
        ({"error_next": 1, "error_status": "500"}, TransientDeliveryError, "Status 500"),
        ({"error_next": 1, "error_status": "102"}, PermanentDeliveryError, "Status 102"),
        ({"latency_ms": 1500}, TransientDeliveryError, "did not answer"),
    ],
)
async def test_every_vnpost_failure_is_translated(
    make_adapter: Factory,
    vnpost: httpx.AsyncClient,  # noqa: F811
    faults: dict[str, Any],
    error: type[Exception],
    words: str,
) -> None:
    adapter = await make_adapter()
    await adapter.client.fetch_token()
    await vnpost.post("/_mock/faults", json=faults)
    with pytest.raises(error, match=words) as caught:
        await adapter.request(_order(dossier_code()), _context())
    assert type(caught.value) is error


async def test_personal_data_vnpost_echoes_back_is_masked_in_the_reason(
    make_adapter: Factory,
    vnpost: httpx.AsyncClient,  # noqa: F811
) -> None:
    adapter = await make_adapter()
    await vnpost.post("/_mock/faults", json={"echo_receiver_next": 1})
    with pytest.raises(PermanentDeliveryError, match="Status 102") as caught:
        await adapter.request(_order(dossier_code()), _context())
    reason = caught.value.reason
    assert "Nguyễn Văn Nhận" not in reason
    assert "0900000002" not in reason
    assert "1 Tràng Tiền" not in reason
    assert "***" in reason


async def test_wrong_credentials_and_an_unreachable_vnpost(make_adapter: Factory) -> None:
    adapter = await make_adapter(password="wrong")
    with pytest.raises(PermanentDeliveryError, match="username or password"):
        await adapter.check()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    unreachable = await make_adapter(base_url=f"http://127.0.0.1:{port}")
    with pytest.raises(TransientDeliveryError, match="Could not connect"):
        await unreachable.check()
