"""The payment platform adapter against the fake platform, over real sockets.

Covers MaXacThuc signing and verification, INIT / QUERY / GET_BILL / REFUND, idempotency, and the
translation of every failure the adapter can see into the hub's errors.
"""

from __future__ import annotations

import hashlib
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.payment import PaymentPlatformAdapter, create_adapter
from adapters.payment.signing import sign, sign_message, verify_message
from adapters.payment.wire import PaymentResult
from hub.adapter import RequestContext
from hub.envelope import Envelope
from hub.errors import PermanentDeliveryError, TransientDeliveryError, UnusableReplyError
from hub.store import MessageStore
from tests.support.partners import bind_store, payment_url, platform  # noqa: F401 - fixtures
from tests.support.payloads import dossier_code

SECRET = "sample-payment-secret-for-the-mock"
Factory = Callable[..., Awaitable[PaymentPlatformAdapter]]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[MessageStore]:
    store = MessageStore.open(f"sqlite+aiosqlite:///{tmp_path}/ledger.db")
    await store.migrate()
    yield store
    await store.aclose()


@pytest.fixture
async def make_adapter(payment_url: str, store: MessageStore) -> AsyncIterator[Factory]:  # noqa: F811
    adapters: list[PaymentPlatformAdapter] = []

    async def factory(**overrides: Any) -> PaymentPlatformAdapter:
        config = {
            "base_url": payment_url,
            "partner_code": "LGSP-DEMO",
            "secret": SECRET,
            "timeout_seconds": "1s",
            **overrides,
        }
        adapter = create_adapter("payment-platform", config)
        bind_store(adapter, store)
        adapters.append(adapter)
        return adapter

    yield factory
    for adapter in adapters:
        await adapter.aclose()


def _init(code: str, amount: int = 150_000, request_id: str | None = None) -> Envelope:
    return Envelope(
        id=request_id or str(uuid.uuid4()),
        type="payment.init",
        source="onestop",
        payload={
            "MaHoSo": code,
            "DanhSachLePhi": [{"TenPhiLePhi": "Lệ phí", "Gia": amount}],
            "SoTien": amount,
            "MaTienTe": "VND",
        },
    )


def _context() -> RequestContext:
    return RequestContext(target="payment-platform", route="payment-init", source="onestop", attempt=1, deadline=0)


# ------------------------------------------------------------------ MaXacThuc


def test_the_signature_is_sha256_over_the_pipe_joined_fields_and_the_secret() -> None:
    message = {"LoaiBanTin": "QUERY", "PhienBan": "1.0.6", "MaDoiTac": "P", "MaThamChieu": "R", "ThoiGianGD": "1"}
    expected = hashlib.sha256(b"QUERY|1.0.6|P|R|1|s3cret").hexdigest()
    assert sign_message("QUERY", message, "s3cret") == expected
    assert verify_message("QUERY", {**message, "MaXacThuc": expected.upper()}, "s3cret")
    assert not verify_message("QUERY", {**message, "MaThamChieu": "R2", "MaXacThuc": expected}, "s3cret")
    assert not verify_message("QUERY", {**message, "MaXacThuc": expected}, "other")
    assert not verify_message("QUERY", message, "s3cret"), "a message without MaXacThuc is not valid"
    assert sign(["a", None, 5], "k") == hashlib.sha256(b"a||5|k").hexdigest()
    with pytest.raises(TypeError):
        sign([150000.0], "k")


def test_a_result_with_a_float_amount_is_not_a_result() -> None:
    with pytest.raises(ValueError, match="integer"):
        PaymentResult.model_validate(
            {"LoaiBanTin": "RESULT", "MaLoi": "00", "MaDoiTac": "P", "MaThamChieu": "R", "SoTien": 150000.0,
             "MaTienTe": "VND", "MaXacThuc": "x"}
        )  # fmt: skip
    parsed = PaymentResult.model_validate(
        {"LoaiBanTin": "RESULT", "MaLoi": "00", "MaDoiTac": "P", "MaThamChieu": "R", "SoTien": "150000",
         "MaTienTe": "VND", "MaXacThuc": "x"}
    )  # fmt: skip
    assert parsed.SoTien == 150000


# ------------------------------------------------------------------ happy paths


async def test_init_records_the_payment_and_returns_the_payment_page(
    make_adapter: Factory,
    platform: httpx.AsyncClient,  # noqa: F811
) -> None:
    adapter = await make_adapter()
    code = dossier_code()
    envelope = _init(code)
    answer = await adapter.request(envelope, _context())
    assert answer["MaHoSo"] == code
    assert answer["SoTien"] == 150_000
    assert answer["UrlThanhToan"].startswith("http")
    assert answer["MaThamChieu"].startswith(code)
    payment = await adapter.ledger.get(answer["MaThamChieu"])
    assert payment is not None
    assert (payment.state, payment.amount, payment.payment_url) == ("initiated", 150_000, answer["UrlThanhToan"])

    again = await adapter.request(envelope, _context())  # a redelivered request
    assert again == answer
    calls = (await platform.get("/_mock/calls")).json()
    assert [c["LoaiBanTin"] for c in calls] == ["INIT"], "a redelivered request must not INIT twice"

    twice = await adapter.request(_init(code), _context())  # the citizen clicked twice
    assert twice["MaThamChieu"] == answer["MaThamChieu"]


async def test_query_get_bill_and_refund_follow_the_payment(
    make_adapter: Factory,
    platform: httpx.AsyncClient,  # noqa: F811
) -> None:
    adapter = await make_adapter()
    reference = (await adapter.request(_init(dossier_code()), _context()))["MaThamChieu"]
    pending = await adapter.query(reference)
    assert (pending.MaLoi, pending.MaGiaoDich) == ("01", None)
    await platform.post(f"/_mock/payments/{reference}/complete", json={"outcome": "paid"})
    paid = await adapter.query(reference)
    assert paid.paid
    assert paid.MaGiaoDich
    assert paid.SoTien == 150_000
    bill = await adapter.get_bill(reference, paid.MaGiaoDich)
    assert bill.SoBienLai
    unknown = await adapter.query("NO-SUCH-REFERENCE")
    assert unknown.MaLoi == "10"
    refund = await adapter.client.refund(
        reference=reference, transaction_id=paid.MaGiaoDich, refund_reference="R1", amount=150_000,
        currency="VND", reason="Hồ sơ bị từ chối",
    )  # fmt: skip
    assert refund.MaHoanTien == "R1"
    await adapter.check()


# ------------------------------------------------------------------ failure mapping


@pytest.mark.parametrize(
    ("faults", "error", "words"),
    [
        ({"fail_next": 1, "status": 503}, TransientDeliveryError, "HTTP 503"),
        ({"fail_next": 1, "status": 429}, TransientDeliveryError, "HTTP 429"),
        ({"fail_next": 1, "status": 401}, PermanentDeliveryError, "credentials"),
        ({"fail_next": 1, "status": 400}, PermanentDeliveryError, "HTTP 400"),
        ({"error_next": 1}, TransientDeliveryError, "MaLoi 99"),
        ({"bad_reply_next": 1}, TransientDeliveryError, "not a JSON object"),
        ({"bad_answer_signature_next": 1}, UnusableReplyError, "wrong MaXacThuc"),
        ({"latency_ms": 1500}, TransientDeliveryError, "did not answer"),
    ],
)
async def test_every_platform_failure_is_translated(
    make_adapter: Factory,
    platform: httpx.AsyncClient,  # noqa: F811
    faults: dict[str, Any],
    error: type[Exception],
    words: str,
) -> None:
    adapter = await make_adapter()
    await platform.post("/_mock/faults", json=faults)
    with pytest.raises(error, match=words) as caught:
        await adapter.query("ANY-REFERENCE")
    assert type(caught.value) is error


async def test_a_wrong_partner_secret_is_permanent_and_marks_the_payment_failed(
    make_adapter: Factory,
    platform: httpx.AsyncClient,  # noqa: F811
) -> None:
    adapter = await make_adapter(secret="not-the-platform-secret")
    code = dossier_code()
    with pytest.raises(PermanentDeliveryError, match=r"MaLoi 97.*partner secret"):
        await adapter.request(_init(code), _context())
    [payment] = await adapter.ledger.for_dossier(code)
    assert payment.state == "failed"
    assert "97" in (payment.last_error or "")


async def test_an_unreachable_platform_is_transient(make_adapter: Factory) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    adapter = await make_adapter(base_url=f"http://127.0.0.1:{port}")
    with pytest.raises(TransientDeliveryError, match="Could not connect"):
        await adapter.query("ANY")


async def test_a_paid_dossier_is_not_initiated_twice_and_float_amounts_are_refused(
    make_adapter: Factory,
    platform: httpx.AsyncClient,  # noqa: F811
) -> None:
    adapter = await make_adapter()
    code = dossier_code()
    answer = await adapter.request(_init(code), _context())
    await adapter.ledger.settle(
        answer["MaThamChieu"], transaction_id=f"GD-{uuid.uuid4().hex[:8]}", bank_code=None,
        transaction_time=None, settled_by="callback",
    )  # fmt: skip
    with pytest.raises(PermanentDeliveryError, match="already has a paid payment"):
        await adapter.request(_init(code), _context())
    float_request = _init(dossier_code())
    float_request = float_request.model_copy(update={"payload": {**float_request.payload, "SoTien": 150000.0}})
    with pytest.raises(PermanentDeliveryError, match="SoTien"):
        await adapter.request(float_request, _context())
