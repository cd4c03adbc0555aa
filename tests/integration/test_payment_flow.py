"""Online payment through the hub: payment.init (request-reply), verified result callbacks, one effect per
payment, rejections recorded with their reasons, reconciliation of lost callbacks, receipts and refunds.

Real RabbitMQ and database; the payment platform, the national portal and the one-stop system are the
mock HTTP servers from ``mocks/``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from adapters.payment.callbacks import CALLBACK_BURST
from adapters.payment.ledger import UNVERIFIED_REASONS, Payment, PaymentLedger
from adapters.payment.settlement import PaymentSettlement
from adapters.payment.signing import sign_message
from hub.plugin import DossierState, OriginatedMessage, utc_now
from hub.services import latest_dossier_state, originate
from hub.store.models import MessageRow
from mocks.payment import DEFAULT_PARTNER_CODE, DEFAULT_SECRET
from tests.support.harness import ONESTOP_KEY, RunningHub, eventually, running_hub
from tests.support.partners import (  # noqa: F401 - fixtures
    payment_url,
    platform,
    received,
    receiver,
    receiver_url,
    vnpost_url,
    write_partner_routes,
)
from tests.support.payloads import dossier, dossier_code
from tests.support.streaming import stream_large_body

pytestmark = pytest.mark.integration

FEES = [{"TenPhiLePhi": "Lệ phí đăng ký", "MaPhiLePhi": "LP01", "Gia": 100_000},
        {"TenPhiLePhi": "Phí thẩm định", "Gia": 50_000}]  # fmt: skip


@pytest.fixture(scope="module")
async def pay_hub(
    tmp_path_factory: pytest.TempPathFactory,
    portal_url: str,
    payment_url: str,  # noqa: F811
    vnpost_url: str,  # noqa: F811
    receiver_url: str,  # noqa: F811
) -> AsyncIterator[RunningHub]:
    folder = tmp_path_factory.mktemp("payments")
    routes = write_partner_routes(
        folder / "routes", portal_url=portal_url, payment_url=payment_url, vnpost_url=vnpost_url,
        receiver_url=receiver_url, query_after="1s",
    )  # fmt: skip
    async with _hub(f"sqlite+aiosqlite:///{folder}/hub.db", routes, portal_url, payment_url) as running:
        yield running


@pytest.fixture
async def unreconciled_hub(
    database_url: str,
    tmp_path: Path,
    portal_url: str,
    payment_url: str,  # noqa: F811
    vnpost_url: str,  # noqa: F811
    receiver_url: str,  # noqa: F811
) -> AsyncIterator[RunningHub]:
    """A hub whose reconciler never runs, so nothing follows a payment up behind the test's back.

    The platform's callbacks stay with the module's hub: the tests settle their payments in the ledger.
    """
    routes = write_partner_routes(
        tmp_path / "routes", portal_url=portal_url, payment_url=payment_url, vnpost_url=vnpost_url,
        receiver_url=receiver_url, query_after="1h", reconcile_interval="0",
    )  # fmt: skip
    async with running_hub(database_url=database_url, routes_dir=routes, portal_url=portal_url) as running:
        yield running


@contextlib.asynccontextmanager
async def _hub(database_url: str, routes: Path, portal_url: str, payment_url: str) -> AsyncIterator[RunningHub]:  # noqa: F811
    """A hub with the partner routes, and the fake platform told where to send its callbacks."""
    os.environ.setdefault("HUB_SYSTEM_KEY_ONESTOP", ONESTOP_KEY)
    async with running_hub(database_url=database_url, routes_dir=routes, portal_url=portal_url) as running:
        async with httpx.AsyncClient(base_url=payment_url) as client:
            await client.post("/_mock/config", json={"callback_url": f"{running.url}/v1/callbacks/payment"})
        yield running


async def request(hub: RunningHub, message_type: str, body: dict[str, Any]) -> httpx.Response:
    return await hub.client.post(
        f"{hub.url}/v1/requests/{message_type}", json=body, headers={"Authorization": f"Bearer {ONESTOP_KEY}"}
    )


async def open_payment(hub: RunningHub, code: str, *, status: int = 6) -> str:
    """Send the dossier (awaiting fee payment), wait for the portal to have it, start its payment."""
    sent = await hub.post("dossier.upserted", dossier(code, status=status, DanhSachLePhi=FEES))
    assert sent.status_code == 202, sent.text

    async def on_portal() -> bool:
        return await hub.delivery_state(sent.json()["id"]) == "delivered"

    await eventually(on_portal)
    answer = await request(hub, "payment.init", {"MaHoSo": code, "DanhSachLePhi": FEES, "SoTien": 150_000})
    assert answer.status_code == 200, answer.text
    result = answer.json()["result"]
    assert result["SoTien"] == 150_000
    assert result["UrlThanhToan"].startswith("http")
    return str(result["MaThamChieu"])


async def paid_without_follow_up(hub: RunningHub, code: str) -> tuple[Payment, DossierState]:
    """A payment of ``code``, settled in the ledger but not yet sent on (as if the hub stopped right after),
    and the dossier's state the hub reads to send it on."""
    ledger = PaymentLedger(hub.hub.store.engine)
    reference = await open_payment(hub, code)
    settled = await ledger.settle(
        reference, transaction_id=f"GD{reference[-12:]}", bank_code="NCB", transaction_time=None, settled_by="callback"
    )
    assert settled == "settled"
    payment = await ledger.get(reference)
    assert payment is not None
    read = await latest_dossier_state(hub.hub.store.engine, code)
    assert read is not None
    return payment, read


async def reflected_on_ledger(settlement: PaymentSettlement, payment: Payment) -> str | None:
    """The paid state the ledger records for ``payment`` (its ``reflected_message_id``)."""
    recorded = await settlement.ledger.get(payment.reference)
    assert recorded is not None
    return recorded.reflected_message_id


async def stored_count(hub: RunningHub, message_type: str, code: str) -> int:
    async with hub.hub.store.engine.connect() as connection:
        statement = select(func.count()).where(MessageRow.type == message_type, MessageRow.dossier_code == code)
        return int((await connection.execute(statement)).scalar_one())


async def post_callback(hub: RunningHub, body: dict[str, Any]) -> dict[str, Any]:
    response = await hub.client.post(f"{hub.url}/v1/callbacks/payment", json=body)
    assert response.status_code == 200, response.text
    return dict(response.json())


def signed_result(reference: str, **fields: Any) -> dict[str, Any]:
    message = {
        "LoaiBanTin": "RESULT", "MaLoi": "00", "MaDoiTac": DEFAULT_PARTNER_CODE, "MaThamChieu": reference,
        "SoTien": 150_000, "MaTienTe": "VND", "MaGiaoDich": "GD-FORGED-1", "MaNganHang": "NCB",
        "ThoiGianGD": "20261128090000", "ThongTinGiaoDich": "x", **fields,
    }  # fmt: skip
    return {**message, "MaXacThuc": sign_message("RESULT", message, DEFAULT_SECRET)}


# ---------------------------------------------------------------------------------------------------------


async def test_a_paid_fee_reaches_the_onestop_system_and_the_portal_once_despite_duplicates(
    database_url: str,
    tmp_path: Path,
    portal_url: str,
    portal: httpx.Client,
    payment_url: str,  # noqa: F811
    vnpost_url: str,  # noqa: F811
    receiver_url: str,  # noqa: F811
    platform: httpx.AsyncClient,  # noqa: F811
    receiver: httpx.AsyncClient,  # noqa: F811
) -> None:
    routes = write_partner_routes(
        tmp_path / "routes", portal_url=portal_url, payment_url=payment_url, vnpost_url=vnpost_url,
        receiver_url=receiver_url, query_after="1h",
    )  # fmt: skip
    async with _hub(database_url, routes, portal_url, payment_url) as hub:
        code = dossier_code()
        reference = await open_payment(hub, code)
        await platform.post("/_mock/faults", json={"duplicate_next": 1, "copies": 3})
        await platform.post(f"/_mock/payments/{reference}/complete", json={"outcome": "paid"})

        completed = await eventually(lambda: received(receiver, "payment.completed", code))
        payload = completed[0]["payload"]
        assert payload["MaThamChieu"] == reference
        assert payload["SoTien"] == 150_000
        assert payload["KenhXacNhan"] == "callback"
        assert [line["Gia"] for line in payload["DanhSachLePhi"]] == [100_000, 50_000]

        def on_portal_as_paid() -> dict[str, Any] | None:
            current = portal.get(f"/_mock/dossiers/{code}").json()["current"]
            return current if current.get("DuocThanhToanTrucTuyen") == 1 else None

        current = await eventually(lambda: asyncio.to_thread(on_portal_as_paid))
        assert current["TrangThaiHoSo"] == 4, "awaiting fee payment (6) becomes processing (4) once paid"
        receipt = await eventually(lambda: received(receiver, "payment.receipt", code))
        assert receipt[0]["payload"]["SoBienLai"].startswith("BL")

        answers = sorted(c["answer"]["MaLoi"] for c in (await platform.get("/_mock/callbacks")).json())
        assert answers == ["00", "02", "02"], "three copies at once: one taken, two answered 'already confirmed'"
        replay = await platform.post(f"/_mock/payments/{reference}/resend")
        assert replay.json()["answer"]["MaLoi"] == "02"

        ledger = PaymentLedger(hub.hub.store.engine)
        results = await ledger.results(reference=reference)
        assert sorted((r.outcome, r.reason) for r in results) == [
            ("accepted", None),
            ("rejected", "replayed_transaction"),
            ("rejected", "replayed_transaction"),
            ("rejected", "replayed_transaction"),
        ]
        assert await stored_count(hub, "payment.completed", code) == 1
        assert await stored_count(hub, "dossier.upserted", code) == 2  # the one-stop's, and the hub's reflection
        assert len(await received(receiver, "payment.completed", code)) == 1


async def test_rejected_callbacks_are_recorded_with_their_reason_and_answered_as_the_platform_expects(
    pay_hub: RunningHub,
    platform: httpx.AsyncClient,  # noqa: F811
    receiver: httpx.AsyncClient,  # noqa: F811
    portal: httpx.Client,
) -> None:
    hub = pay_hub
    ledger = PaymentLedger(hub.hub.store.engine)
    code = dossier_code()
    reference = await open_payment(hub, code)

    assert (await post_callback(hub, signed_result("NO-SUCH-REFERENCE")))["MaLoi"] == "01"
    assert (await post_callback(hub, signed_result(reference, MaTienTe="USD")))["MaLoi"] == "05"
    assert (await post_callback(hub, signed_result(reference, MaDoiTac="SOMEONE-ELSE")))["MaLoi"] == "97"
    assert (await post_callback(hub, {**signed_result(reference), "SoTien": 150000.0}))["MaLoi"] == "99"
    forged = {**signed_result(reference), "MaXacThuc": "0" * 64}
    assert (await post_callback(hub, forged))["MaLoi"] == "97"
    response = await hub.client.post(f"{hub.url}/v1/callbacks/payment", content=b"not json")
    assert response.json()["MaLoi"] == "99"

    # The platform itself sends a correctly signed result with the wrong amount, then one with a bad signature.
    await platform.post("/_mock/faults", json={"wrong_amount_next": 1})
    await platform.post(f"/_mock/payments/{reference}/complete", json={"outcome": "paid"})
    await eventually(lambda: _answered(platform, reference))
    await platform.post("/_mock/faults", json={"wrong_signature_next": 1})
    assert (await platform.post(f"/_mock/payments/{reference}/resend")).json()["answer"]["MaLoi"] == "04"

    reasons = {r.reason: (r.answer_code, r.detail) for r in await ledger.results(outcome="rejected")}
    assert reasons["unknown_reference"][0] == "01"
    assert reasons["currency_mismatch"][0] == "05"
    assert reasons["unknown_partner"][0] == "97"
    assert reasons["bad_signature"][0] == "97"
    assert reasons["malformed"][0] == "99"
    assert reasons["amount_mismatch"][0] == "04"
    assert "151000 VND" in (reasons["amount_mismatch"][1] or "")
    assert await stored_count(hub, "payment.completed", code) == 0, "no rejected callback had an effect"

    # No valid callback came, but the platform knows the citizen paid: reconciliation (QUERY) settles it.
    completed = await eventually(lambda: received(receiver, "payment.completed", code))
    assert completed[0]["payload"]["KenhXacNhan"] == "reconciliation"
    payment = await ledger.get(reference)
    assert payment is not None
    assert (payment.state, payment.settled_by) == ("paid", "reconciliation")


async def _answered(platform: httpx.AsyncClient, reference: str) -> bool:  # noqa: F811
    callbacks = [c for c in (await platform.get("/_mock/callbacks")).json() if c["MaThamChieu"] == reference]
    return bool(callbacks) and all(c.get("outcome") == "answered" for c in callbacks)


async def test_a_lost_callback_is_recovered_by_reconciliation(
    pay_hub: RunningHub,
    platform: httpx.AsyncClient,  # noqa: F811
    receiver: httpx.AsyncClient,  # noqa: F811
    portal: httpx.Client,
) -> None:
    hub = pay_hub
    code = dossier_code()
    reference = await open_payment(hub, code)
    await platform.post("/_mock/faults", json={"lose_next": 1})
    await platform.post(f"/_mock/payments/{reference}/complete", json={"outcome": "paid"})
    completed = await eventually(lambda: received(receiver, "payment.completed", code))
    assert completed[0]["payload"]["KenhXacNhan"] == "reconciliation"
    assert [c["outcome"] for c in (await platform.get("/_mock/callbacks")).json()] == ["lost"]
    calls = [c["LoaiBanTin"] for c in (await platform.get("/_mock/calls")).json() if c["MaThamChieu"] == reference]
    assert "QUERY" in calls
    await eventually(lambda: received(receiver, "payment.receipt", code))
    assert "GET_BILL" in [c["LoaiBanTin"] for c in (await platform.get("/_mock/calls")).json()]
    # The callback arrives late after all: it changes nothing.
    late = await platform.post(f"/_mock/payments/{reference}/resend")
    assert late.json()["answer"]["MaLoi"] == "02"
    assert await stored_count(hub, "payment.completed", code) == 1


async def test_a_cancelled_payment_sends_nothing_and_a_refund_needs_an_unperformed_service(
    pay_hub: RunningHub,
    platform: httpx.AsyncClient,  # noqa: F811
    receiver: httpx.AsyncClient,  # noqa: F811
    portal: httpx.Client,
) -> None:
    hub = pay_hub
    ledger = PaymentLedger(hub.hub.store.engine)
    cancelled_code = dossier_code()
    cancelled = await open_payment(hub, cancelled_code)
    await platform.post(f"/_mock/payments/{cancelled}/complete", json={"outcome": "cancelled"})

    async def is_cancelled() -> bool:
        payment = await ledger.get(cancelled)
        return payment is not None and payment.state == "cancelled"

    await eventually(is_cancelled)
    assert await stored_count(hub, "payment.completed", cancelled_code) == 0
    refused = await request(hub, "payment.refund", {"MaHoSo": cancelled_code, "LyDo": "Không thực hiện"})
    assert refused.status_code == 422
    assert "no paid payment" in refused.json()["detail"]

    code = dossier_code()
    reference = await open_payment(hub, code)
    await platform.post(f"/_mock/payments/{reference}/complete", json={"outcome": "paid"})
    await eventually(lambda: received(receiver, "payment.completed", code))

    async def paid_state_resent() -> bool:  # the hub re-sends the dossier as paid after payment.completed
        return await stored_count(hub, "dossier.upserted", code) == 2

    # So the one-stop system's next state is the newest at once. Sent while the paid state is being made, it
    # would still end up the newest (as paid), but a moment later: the refund below could come in between.
    await eventually(paid_state_resent)
    finished = await hub.post("dossier.upserted", dossier(code, status=10))
    assert finished.status_code == 202
    performed = await request(hub, "payment.refund", {"MaHoSo": code, "LyDo": "Thử hoàn tiền"})
    assert performed.status_code == 422
    assert "was processed" in performed.json()["detail"]

    assert (await hub.post("dossier.upserted", dossier(code, status=3))).status_code == 202  # refused after all
    refund = await request(hub, "payment.refund", {"MaHoSo": code, "LyDo": "Hồ sơ bị từ chối"})
    assert refund.status_code == 200, refund.text
    result = refund.json()["result"]
    assert (result["TrangThai"], result["SoTien"], result["MaThamChieu"]) == ("refunded", 150_000, reference)
    on_platform = (await platform.get(f"/_mock/payments/{reference}")).json()
    assert on_platform["refunds"] == {result["MaHoanTien"]: 150_000}
    again = await request(hub, "payment.refund", {"MaHoSo": code, "LyDo": "Lần nữa"})
    assert again.status_code == 422
    assert "already refunded" in again.json()["detail"]


async def test_a_one_stop_state_stored_while_the_paid_state_is_made_gets_the_paid_state_after_it(
    unreconciled_hub: RunningHub,
    platform: httpx.AsyncClient,  # noqa: F811
) -> None:
    hub = unreconciled_hub
    engine = hub.hub.store.engine
    settlement = PaymentSettlement(hub.hub.context, {})
    code = dossier_code()
    payment, read = await paid_without_follow_up(hub, code)  # the hub reads the state (awaiting fee payment) …
    assert read.payload["TrangThaiHoSo"] == 6
    refused = await hub.post("dossier.upserted", dossier(code, status=3))  # … the one-stop system refuses it …
    assert refused.status_code == 202
    reflected = await settlement.reflect_state(payment, read)  # … then the paid state made from the read one

    newest = await latest_dossier_state(engine, code)
    assert newest is not None
    assert newest.message_id == reflected
    assert (newest.payload["TrangThaiHoSo"], newest.payload["DuocThanhToanTrucTuyen"]) == (3, 1)
    assert await stored_count(hub, "dossier.upserted", code) == 4  # 6, refused 3, paid 4 (overtaken), paid 3

    # A state the one-stop system sends after the paid one is the newest, and stays so: neither the same
    # step again nor the reconciler's follow-up makes another paid state.
    finished = await hub.post("dossier.upserted", dossier(code, status=10, DuocThanhToanTrucTuyen=1))
    assert finished.status_code == 202
    assert await settlement.reflect_state(payment, read) == reflected
    await settlement.send_on(payment)
    newest = await latest_dossier_state(engine, code)
    assert newest is not None
    assert newest.message_id == finished.json()["id"]
    assert await stored_count(hub, "dossier.upserted", code) == 5
    assert await reflected_on_ledger(settlement, payment) == reflected


async def store_paid_state(hub: RunningHub, payment: Payment, read: DossierState, key: str) -> OriginatedMessage:
    """The paid state made from ``read`` under ``key``, stored the way the settlement stores it."""
    stored = await originate(
        hub.hub, message_type="dossier.upserted", payload={**read.payload, "DuocThanhToanTrucTuyen": 1},
        source=payment.target, idempotency_key=key,
    )  # fmt: skip
    assert stored is not None
    return stored


async def test_a_paid_state_overtaken_before_the_hub_stopped_is_made_again_by_the_follow_up(
    unreconciled_hub: RunningHub,
    platform: httpx.AsyncClient,  # noqa: F811
) -> None:
    hub = unreconciled_hub
    engine = hub.hub.store.engine
    settlement = PaymentSettlement(hub.hub.context, {})
    code = dossier_code()
    payment, read = await paid_without_follow_up(hub, code)
    assert (await hub.post("dossier.upserted", dossier(code, status=3))).status_code == 202
    # The hub stored the paid state made from what it had read, and stopped before looking for newer states.
    overtaken = await store_paid_state(hub, payment, read, f"payment.reflected:{payment.transaction_id}:{read.seq}")

    await settlement.send_on(payment)  # the reconciler's follow-up
    newest = await latest_dossier_state(engine, code)
    assert newest is not None
    assert (newest.payload["TrangThaiHoSo"], newest.payload["DuocThanhToanTrucTuyen"]) == (3, 1)
    assert newest.message_id != overtaken.id
    assert await reflected_on_ledger(settlement, payment) == newest.message_id


async def test_a_paid_state_an_older_hub_stored_is_not_sent_again_after_an_upgrade(
    unreconciled_hub: RunningHub,
    platform: httpx.AsyncClient,  # noqa: F811
) -> None:
    hub = unreconciled_hub
    settlement = PaymentSettlement(hub.hub.context, {})
    code = dossier_code()
    payment, read = await paid_without_follow_up(hub, code)
    # The older hub stored the paid state under its key without a seq, and stopped before the ledger said so.
    older = await store_paid_state(hub, payment, read, f"payment.reflected:{payment.transaction_id}")
    assert (await hub.post("dossier.upserted", dossier(code, status=10, DuocThanhToanTrucTuyen=1))).status_code == 202

    await settlement.send_on(payment)  # what the upgraded hub's reconciler does
    assert await stored_count(hub, "dossier.upserted", code) == 3
    assert await reflected_on_ledger(settlement, payment) == older.id


async def test_a_payment_whose_init_never_reached_the_platform_is_closed_by_reconciliation(
    pay_hub: RunningHub,
    platform: httpx.AsyncClient,  # noqa: F811
) -> None:
    hub = pay_hub
    ledger = PaymentLedger(hub.hub.store.engine)
    code = dossier_code()
    body = {"MaHoSo": code, "DanhSachLePhi": FEES, "SoTien": 150_000}
    await platform.post("/_mock/faults", json={"fail_next": 3, "status": 503, "fail_only": "INIT"})
    failed = await request(hub, "payment.init", body)
    assert failed.status_code == 502
    assert "HTTP 503" in failed.json()["detail"]
    [payment] = await ledger.for_dossier(code)
    assert (payment.state, payment.payment_url) == ("initiated", None)

    async def closed() -> bool:
        current = await ledger.get(payment.reference)
        return current is not None and current.state == "failed"

    await eventually(closed)
    retried = await request(hub, "payment.init", body)
    assert retried.status_code == 200, retried.text
    assert retried.json()["result"]["MaThamChieu"] != payment.reference


async def test_a_delayed_callback_still_settles_the_payment(
    pay_hub: RunningHub,
    platform: httpx.AsyncClient,  # noqa: F811
    receiver: httpx.AsyncClient,  # noqa: F811
    portal: httpx.Client,
) -> None:
    hub = pay_hub
    code = dossier_code()
    reference = await open_payment(hub, code)
    await platform.post("/_mock/faults", json={"callback_delay_ms": 300})
    await platform.post(f"/_mock/payments/{reference}/complete", json={"outcome": "paid"})
    completed = await eventually(lambda: received(receiver, "payment.completed", code))
    assert completed[0]["payload"]["MaThamChieu"] == reference
    await eventually(lambda: _answered(platform, reference))
    [callback] = [c for c in (await platform.get("/_mock/callbacks")).json() if c["MaThamChieu"] == reference]
    assert callback["answer"]["MaLoi"] == "00", "the delayed callback, not reconciliation, settled it"


# --------------------------------------------------------------------------- the edge (issue #17)


async def test_large_bodies_to_the_callback_and_to_payment_init_are_refused_before_they_are_read(
    pay_hub: RunningHub,
) -> None:
    for path, headers in [
        ("/v1/callbacks/payment", {}),
        ("/v1/requests/payment.init", {"Authorization": f"Bearer {ONESTOP_KEY}"}),
    ]:
        upload = await stream_large_body(f"{pay_hub.url}{path}", {"Content-Type": "application/json", **headers})
        assert upload.status == 413, (path, upload.head)
        assert upload.closed, path
        assert upload.sent < 8 * 1024 * 1024, path  # of 64 MiB


async def test_a_callback_with_a_nul_is_refused_with_a_sentence_and_not_recorded(unreconciled_hub: RunningHub) -> None:
    """On PostgreSQL a NUL in a callback used to become a 503 carrying the driver's error text."""
    hub = unreconciled_hub
    ledger = PaymentLedger(hub.hub.store.engine)
    before = len(await ledger.results(limit=1000))
    for result in ({**signed_result("REF\u0000X")}, {**signed_result("REF-1"), "MaDoiTac": "A\u0000"}):
        response = await hub.client.post(f"{hub.url}/v1/callbacks/payment", json=result)
        assert response.status_code == 400, response.text
        assert response.json()["MaLoi"] == "99"
        assert "control character (U+0000)" in response.json()["detail"]
    assert len(await ledger.results(limit=1000)) == before


async def test_junk_callbacks_are_rate_limited_per_address_and_their_records_expire(
    unreconciled_hub: RunningHub,
) -> None:
    hub = unreconciled_hub
    ledger = PaymentLedger(hub.hub.store.engine)
    before = await unverified(ledger)
    statuses = [
        (await hub.client.post(f"{hub.url}/v1/callbacks/payment", content=b"junk")).status_code for _ in range(80)
    ]
    assert statuses.count(200) <= CALLBACK_BURST + 3  # + what refilled meanwhile
    assert 429 in statuses
    throttled = await hub.client.post(f"{hub.url}/v1/callbacks/payment", content=b"junk")
    assert throttled.status_code == 429
    assert "Too many payment callbacks" in throttled.json()["detail"]
    assert int(throttled.headers["Retry-After"]) >= 1
    assert await unverified(ledger) - before == statuses.count(200)

    # A verified rejection (the platform signed it) is kept; unverified ones beyond the newest `keep` go, and
    # all of them once older than the retention.
    await ledger.record_result(
        channel="callback", outcome="rejected", reason="amount_mismatch", detail=f"signed {hub.url}", answer_code="04"
    )
    await ledger.forget_unverified(older_than=utc_now() - timedelta(days=30), keep=5)
    assert await unverified(ledger) == 5
    await ledger.forget_unverified(older_than=utc_now() + timedelta(seconds=1), keep=1000)
    assert await unverified(ledger) == 0
    assert [r for r in await ledger.results(limit=1000) if r.detail == f"signed {hub.url}"]


async def unverified(ledger: PaymentLedger) -> int:
    return len([r for r in await ledger.results(limit=10_000) if r.reason in UNVERIFIED_REASONS])
