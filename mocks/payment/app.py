"""A fake payment platform (the national portal's platform or a bank gateway), over real HTTP.

API: ``POST /api/thanh-toan`` with a signed JSON message (``LoaiBanTin`` INIT, QUERY, GET_BILL,
REFUND; MaXacThuc as in :mod:`mocks.payment._signature`). Answers HTTP 200 with ``MaLoi``
("00" done, "96" MaThamChieu reused with other content, "97" bad MaXacThuc, "98" invalid, "99"
platform error) and a signed answer.

Payment page: ``GET /pay/{token}`` (the UrlThanhToan of INIT) shows the amount and three buttons —
pay (``#pay``), cancel (``#cancel``), bank failure (``#fail``). Pressing one settles the payment,
sends the signed result callback to the hub's ``callback_url`` and sends the browser to UrlTraVe
(or shows the result).

Callback knobs (``POST /_mock/faults``): ``lose_next`` callbacks are never sent (reconciliation must
find them), ``duplicate_next`` callbacks are sent ``copies`` times at once, ``wrong_signature_next``
are signed with a wrong secret, ``wrong_amount_next`` carry another amount (correctly signed),
``callback_delay_ms`` delays every callback. ``fail_next`` API calls answer HTTP ``status``,
``error_next`` API calls answer MaLoi 99 (both only for one LoaiBanTin with ``fail_only``),
``bad_reply_next`` answer an HTML gateway page with HTTP 200, ``bad_answer_signature_next`` answers
are signed with a wrong secret. A callback the hub answers with HTTP 5xx or not at all is resent up
to ``callback_retries`` times.

Test controls: ``/_mock/config`` (POST ``{"callback_url"}``), ``/_mock/faults`` (GET, POST,
DELETE), ``/_mock/payments`` and ``/_mock/payments/{MaThamChieu}`` (GET),
``/_mock/payments/{MaThamChieu}/complete`` (POST ``{"outcome": "paid"|"cancelled"|"failed"}``: the
page's buttons without a browser), ``/_mock/payments/{MaThamChieu}/resend`` (POST: send the last
callback again, a replay), ``/_mock/callbacks`` (GET), ``/_mock/state`` (DELETE: forget everything).
"""

from __future__ import annotations

import asyncio
import html
import itertools
import json
import urllib.parse
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from mocks._controls import CountedKnobs, add_call_log, add_counted_knobs, add_health, add_state_reset
from mocks.payment._signature import is_signed, signature

__all__ = ["DEFAULT_PARTNER_CODE", "DEFAULT_SECRET", "create_app"]

DEFAULT_PARTNER_CODE = "LGSP-DEMO"
DEFAULT_SECRET = "sample-payment-secret-for-the-mock"
_VIETNAM = ZoneInfo("Asia/Ho_Chi_Minh")
_RESULT_CODES = {"pending": "01", "paid": "00", "cancelled": "02", "failed": "03", "expired": "04"}
_RESULT_TEXT = {
    "00": "Giao dịch thành công",
    "01": "Giao dịch đang chờ thanh toán",
    "02": "Người dùng hủy giao dịch",
    "03": "Ngân hàng từ chối giao dịch",
    "04": "Giao dịch hết hạn",
    "10": "Không tìm thấy giao dịch",
}


def _now_text() -> str:
    return datetime.now(_VIETNAM).strftime("%Y%m%d%H%M%S")


class FaultSettings(BaseModel):
    """Body of ``POST /_mock/faults``: only the keys given change."""

    model_config = ConfigDict(extra="forbid")

    lose_next: int | None = Field(default=None, ge=0)
    duplicate_next: int | None = Field(default=None, ge=0)
    copies: int | None = Field(default=None, ge=2, le=20)
    wrong_signature_next: int | None = Field(default=None, ge=0)
    wrong_amount_next: int | None = Field(default=None, ge=0)
    callback_delay_ms: int | None = Field(default=None, ge=0)
    callback_retries: int | None = Field(default=None, ge=0, le=10)
    fail_next: int | None = Field(default=None, ge=0)
    status: int | None = Field(default=None, ge=400, le=599)
    fail_only: str | None = Field(default=None, description="fail_next/error_next only for this LoaiBanTin")
    error_next: int | None = Field(default=None, ge=0)
    bad_reply_next: int | None = Field(default=None, ge=0)
    bad_answer_signature_next: int | None = Field(default=None, ge=0)
    latency_ms: int | None = Field(default=None, ge=0)


@dataclass
class Faults(CountedKnobs):
    lose_next: int = 0
    duplicate_next: int = 0
    copies: int = 2
    wrong_signature_next: int = 0
    wrong_amount_next: int = 0
    callback_delay_ms: int = 0
    callback_retries: int = 2
    fail_next: int = 0
    status: int = 503
    fail_only: str | None = None
    error_next: int = 0
    bad_reply_next: int = 0
    bad_answer_signature_next: int = 0
    latency_ms: int = 0


@dataclass
class MockPayment:
    reference: str
    amount: int
    currency: str
    description: str
    return_url: str | None
    token: str
    created: str
    status: str = "pending"
    transaction_id: str | None = None
    bank_code: str | None = None
    paid_at: str | None = None
    bill_number: str | None = None
    refunds: dict[str, int] = field(default_factory=dict)
    last_callback: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "MaThamChieu": self.reference,
            "SoTien": self.amount,
            "MaTienTe": self.currency,
            "ThongTinGiaoDich": self.description,
            "UrlTraVe": self.return_url,
            "token": self.token,
            "status": self.status,
            "MaGiaoDich": self.transaction_id,
            "MaNganHang": self.bank_code,
            "ThoiGianGD": self.paid_at,
            "SoBienLai": self.bill_number,
            "refunds": self.refunds,
            "created": self.created,
        }


@dataclass
class PlatformState:
    partner_code: str
    secret: str
    callback_url: str | None = None
    faults: Faults = field(default_factory=Faults)
    payments: dict[str, MockPayment] = field(default_factory=dict)
    by_token: dict[str, str] = field(default_factory=dict)
    callbacks: list[dict[str, Any]] = field(default_factory=list)
    api_calls: list[dict[str, Any]] = field(default_factory=list)
    counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def reset(self) -> None:
        self.faults.reset()
        self.payments.clear()
        self.by_token.clear()
        self.callbacks.clear()
        self.api_calls.clear()


def _page(payment: MockPayment, partner: str) -> str:
    amount = f"{payment.amount:,}".replace(",", ".")
    ref = html.escape(payment.reference)
    token = html.escape(payment.token)
    if payment.status != "pending":
        return _result_page(payment)
    return f"""<!doctype html>
<html lang="vi"><head><meta charset="utf-8"><title>Nền tảng thanh toán (giả lập)</title></head>
<body>
<h1>Thanh toán phí, lệ phí</h1>
<p>Đơn vị: {html.escape(partner)}</p>
<p>Mã tham chiếu: <strong id="reference">{ref}</strong></p>
<p>Nội dung: {html.escape(payment.description)}</p>
<p>Số tiền: <strong id="amount">{amount} {html.escape(payment.currency)}</strong></p>
<form method="post" action="/pay/{token}/pay"><button id="pay" type="submit">Thanh toán</button></form>
<form method="post" action="/pay/{token}/cancel"><button id="cancel" type="submit">Hủy giao dịch</button></form>
<form method="post" action="/pay/{token}/fail"><button id="fail" type="submit">Ngân hàng từ chối</button></form>
</body></html>"""


def _result_page(payment: MockPayment) -> str:
    code = _RESULT_CODES[payment.status]
    return f"""<!doctype html>
<html lang="vi"><head><meta charset="utf-8"><title>Kết quả thanh toán</title></head>
<body><h1 id="result" data-code="{code}">{html.escape(_RESULT_TEXT[code])}</h1>
<p>Mã tham chiếu: {html.escape(payment.reference)}</p>
<p>Mã giao dịch: <span id="transaction">{html.escape(payment.transaction_id or "")}</span></p></body></html>"""


def create_app(
    *,
    partner_code: str = DEFAULT_PARTNER_CODE,
    secret: str = DEFAULT_SECRET,
    callback_url: str | None = None,
) -> FastAPI:
    """The fake platform for one partner account (MaDoiTac ``partner_code`` with ``secret``)."""
    state = PlatformState(partner_code=partner_code, secret=secret, callback_url=callback_url)
    app = FastAPI(title="Mock payment platform", version="1")

    def signed(kind: str, message: dict[str, Any], *, secret_to_use: str | None = None) -> dict[str, Any]:
        return {**message, "MaXacThuc": signature(kind, message, secret_to_use or state.secret)}

    def result_message(payment: MockPayment) -> dict[str, Any]:
        code = _RESULT_CODES[payment.status]
        return {
            "LoaiBanTin": "RESULT",
            "MaLoi": code,
            "MoTaLoi": _RESULT_TEXT[code],
            "MaDoiTac": state.partner_code,
            "MaThamChieu": payment.reference,
            "SoTien": payment.amount,
            "MaTienTe": payment.currency,
            "MaGiaoDich": payment.transaction_id,
            "MaNganHang": payment.bank_code,
            "ThoiGianGD": payment.paid_at or _now_text(),
            "ThongTinGiaoDich": payment.description,
        }

    async def post_callback(body: dict[str, Any], record: dict[str, Any]) -> None:
        url = state.callback_url
        if url is None:
            record.update(outcome="no_callback_url")
            return
        attempts = state.faults.callback_retries + 1
        async with httpx.AsyncClient(timeout=10) as client:
            for attempt in range(1, attempts + 1):
                record["attempts"] = attempt
                try:
                    response = await client.post(url, json=body)
                except httpx.HTTPError as exc:
                    record.update(outcome="error", error=type(exc).__name__)
                else:
                    record["status"] = response.status_code
                    try:
                        record["answer"] = response.json()
                    except ValueError:
                        record["answer"] = response.text[:200]
                    record["outcome"] = "answered"
                    if response.status_code < 500:
                        return
                await asyncio.sleep(0.3 * attempt)

    async def send_result(payment: MockPayment) -> None:
        faults = state.faults
        message = result_message(payment)
        base = {"seq": next(state.counter), "MaThamChieu": payment.reference, "MaLoi": message["MaLoi"]}
        if faults.callback_delay_ms:
            await asyncio.sleep(faults.callback_delay_ms / 1000)
        if faults.take("wrong_amount_next"):
            message["SoTien"] = payment.amount + 1000
            base["tampered"] = "amount"
        body = signed("RESULT", message)
        if faults.take("wrong_signature_next"):
            body = signed("RESULT", message, secret_to_use=state.secret + "-wrong")
            base["tampered"] = "signature"
        payment.last_callback = body
        if faults.take("lose_next"):
            state.callbacks.append({**base, "outcome": "lost"})
            return
        copies = faults.copies if faults.take("duplicate_next") else 1
        records = [{**base, "copy": n + 1, "outcome": "sending"} for n in range(copies)]
        state.callbacks.extend(records)
        await asyncio.gather(*(post_callback(body, record) for record in records))

    def spawn(coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        state.tasks.add(task)
        task.add_done_callback(state.tasks.discard)

    def finish(payment: MockPayment, outcome: str) -> None:
        if payment.status != "pending":
            return
        payment.status = outcome
        if outcome == "paid":
            number = next(state.counter)
            payment.transaction_id = f"GD{number:010d}"
            payment.bank_code = "NCB"
            payment.paid_at = _now_text()
        spawn(send_result(payment))

    # ------------------------------------------------------------------ API

    def answer(kind: str, message: dict[str, Any]) -> JSONResponse:
        if state.faults.take("bad_answer_signature_next"):
            return JSONResponse(signed(kind, message, secret_to_use=state.secret + "-wrong"))
        return JSONResponse(signed(kind, message))

    def refusal(code: str, text: str) -> JSONResponse:
        return JSONResponse({"MaLoi": code, "MoTaLoi": text})

    @app.post("/api/thanh-toan")
    async def api(request: Request) -> Response:
        faults = state.faults
        if faults.latency_ms:
            await asyncio.sleep(faults.latency_ms / 1000)
        try:
            body = json.loads(await request.body())
        except ValueError:
            return JSONResponse({"MaLoi": "98", "MoTaLoi": "Bản tin không phải JSON"}, status_code=400)
        kind = body.get("LoaiBanTin") if isinstance(body, dict) else None
        state.api_calls.append({"LoaiBanTin": kind, "MaThamChieu": body.get("MaThamChieu") if kind else None})
        targeted = faults.fail_only is None or faults.fail_only == kind
        if targeted and faults.take("fail_next"):
            return JSONResponse({"error": "giả lập lỗi"}, status_code=faults.status)
        if targeted and faults.take("error_next"):
            return refusal("99", "Hệ thống thanh toán đang bận (giả lập)")
        if faults.take("bad_reply_next"):
            return HTMLResponse("<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>")
        if kind not in ("INIT", "QUERY", "GET_BILL", "REFUND"):
            return refusal("98", f"LoaiBanTin {kind!r} không được hỗ trợ")
        if body.get("MaDoiTac") != state.partner_code or not is_signed(kind, body, state.secret):
            return refusal("97", "Sai chữ ký (MaXacThuc) hoặc mã đối tác")
        reference = body.get("MaThamChieu")
        if not isinstance(reference, str) or not reference:
            return refusal("98", "Thiếu MaThamChieu")
        if kind == "INIT":
            return init(request, body, reference)
        payment = state.payments.get(reference)
        if kind == "QUERY":
            if payment is None:
                return answer("RESULT", {
                    "LoaiBanTin": "RESULT", "MaLoi": "10", "MoTaLoi": _RESULT_TEXT["10"],
                    "MaDoiTac": state.partner_code, "MaThamChieu": reference, "SoTien": 0, "MaTienTe": "VND",
                })  # fmt: skip
            return answer("RESULT", result_message(payment))
        if payment is None or payment.status != "paid" or body.get("MaGiaoDich") != payment.transaction_id:
            return refusal("98", "Giao dịch chưa được thanh toán hoặc sai MaGiaoDich")
        if kind == "GET_BILL":
            if payment.bill_number is None:
                payment.bill_number = f"BL{next(state.counter):07d}"
            return answer("GET_BILL_REPLY", {
                "LoaiBanTin": "GET_BILL", "MaLoi": "00", "MoTaLoi": "Thành công", "MaDoiTac": state.partner_code,
                "MaThamChieu": reference, "MaGiaoDich": payment.transaction_id, "SoBienLai": payment.bill_number,
                "KyHieuBienLai": "1C26TLP", "NgayBienLai": payment.paid_at, "SoTien": payment.amount,
                "UrlBienLai": f"{str(request.base_url).rstrip('/')}/bill/{urllib.parse.quote(reference)}",
            })  # fmt: skip
        return refund(body, payment)

    def init(request: Request, body: dict[str, Any], reference: str) -> JSONResponse:
        amount = body.get("SoTien")
        if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
            return refusal("98", "SoTien phải là số nguyên dương (VND)")
        if body.get("MaTienTe") != "VND":
            return refusal("98", "Chỉ hỗ trợ MaTienTe VND")
        existing = state.payments.get(reference)
        if existing is not None and existing.amount != amount:
            return refusal("96", f"MaThamChieu {reference} đã được dùng với số tiền khác")
        payment = existing
        if payment is None:
            token = f"p{next(state.counter):08d}"
            payment = MockPayment(
                reference=reference, amount=amount, currency="VND",
                description=str(body.get("ThongTinGiaoDich") or ""), return_url=body.get("UrlTraVe"), token=token,
                created=_now_text(),
            )  # fmt: skip
            state.payments[reference] = payment
            state.by_token[token] = reference
        url = f"{str(request.base_url).rstrip('/')}/pay/{payment.token}"
        return answer("INIT_REPLY", {
            "LoaiBanTin": "INIT", "MaLoi": "00", "MoTaLoi": "Thành công", "MaDoiTac": state.partner_code,
            "MaThamChieu": reference, "UrlThanhToan": url,
        })  # fmt: skip

    def refund(body: dict[str, Any], payment: MockPayment) -> JSONResponse:
        refund_reference = body.get("MaHoanTien")
        amount = body.get("SoTien")
        if not isinstance(refund_reference, str) or not refund_reference:
            return refusal("98", "Thiếu MaHoanTien")
        if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
            return refusal("98", "SoTien phải là số nguyên dương (VND)")
        if refund_reference not in payment.refunds:
            if sum(payment.refunds.values()) + amount > payment.amount:
                return refusal("98", "Số tiền hoàn vượt quá số tiền đã thanh toán")
            payment.refunds[refund_reference] = amount
        return answer("REFUND_REPLY", {
            "LoaiBanTin": "REFUND", "MaLoi": "00", "MoTaLoi": "Đã hoàn tiền", "MaDoiTac": state.partner_code,
            "MaThamChieu": payment.reference, "MaHoanTien": refund_reference,
            "MaGiaoDichHoanTien": f"HT-{refund_reference}", "SoTien": payment.refunds[refund_reference],
        })  # fmt: skip

    # ------------------------------------------------------------------ payment page

    def by_token(token: str) -> MockPayment | None:
        reference = state.by_token.get(token)
        return None if reference is None else state.payments.get(reference)

    @app.get("/pay/{token}", response_class=HTMLResponse)
    async def page(token: str) -> HTMLResponse:
        payment = by_token(token)
        if payment is None:
            return HTMLResponse("<h1>Không tìm thấy giao dịch</h1>", status_code=404)
        return HTMLResponse(_page(payment, state.partner_code))

    @app.post("/pay/{token}/{action}")
    async def press(token: str, action: str) -> Response:
        payment = by_token(token)
        outcome = {"pay": "paid", "cancel": "cancelled", "fail": "failed"}.get(action)
        if payment is None or outcome is None:
            return HTMLResponse("<h1>Không tìm thấy giao dịch</h1>", status_code=404)
        finish(payment, outcome)
        if payment.return_url:
            query = urllib.parse.urlencode({"MaThamChieu": payment.reference, "MaLoi": _RESULT_CODES[payment.status]})
            separator = "&" if "?" in payment.return_url else "?"
            return RedirectResponse(f"{payment.return_url}{separator}{query}", status_code=303)
        return HTMLResponse(_result_page(payment))

    @app.get("/bill/{reference}", response_class=HTMLResponse)
    async def bill(reference: str) -> HTMLResponse:
        payment = state.payments.get(reference)
        if payment is None or payment.bill_number is None:
            return HTMLResponse("<h1>Không có biên lai</h1>", status_code=404)
        return HTMLResponse(f"<h1>Biên lai {html.escape(payment.bill_number)}</h1>")

    # ------------------------------------------------------------------ test controls

    add_health(app)

    @app.post("/_mock/config")
    async def configure(request: Request) -> dict[str, Any]:
        body = await request.json()
        if "callback_url" in body:
            state.callback_url = body["callback_url"]
        return {"callback_url": state.callback_url, "partner_code": state.partner_code}

    add_counted_knobs(app, state.faults, FaultSettings)

    @app.get("/_mock/payments")
    async def list_payments() -> list[dict[str, Any]]:
        return [p.as_dict() for p in state.payments.values()]

    @app.get("/_mock/payments/{reference}")
    async def get_payment(reference: str) -> Response:
        payment = state.payments.get(reference)
        if payment is None:
            return JSONResponse({"detail": f"The mock platform has no payment {reference}."}, status_code=404)
        return JSONResponse(payment.as_dict())

    @app.post("/_mock/payments/{reference}/complete")
    async def complete(reference: str, request: Request) -> Response:
        payment = state.payments.get(reference)
        if payment is None:
            return JSONResponse({"detail": f"The mock platform has no payment {reference}."}, status_code=404)
        body = await request.json()
        outcome = body.get("outcome", "paid")
        if outcome not in ("paid", "cancelled", "failed"):
            return JSONResponse({"detail": "outcome must be paid, cancelled or failed."}, status_code=422)
        finish(payment, outcome)
        return JSONResponse(payment.as_dict())

    @app.post("/_mock/payments/{reference}/resend")
    async def resend(reference: str) -> Response:
        payment = state.payments.get(reference)
        if payment is None or payment.last_callback is None:
            return JSONResponse({"detail": f"No callback was sent for {reference}."}, status_code=404)
        record = {"seq": next(state.counter), "MaThamChieu": reference, "copy": 1, "resent": True}
        state.callbacks.append(record)
        await post_callback(payment.last_callback, record)
        return JSONResponse(record)

    @app.get("/_mock/callbacks")
    async def list_callbacks() -> list[dict[str, Any]]:
        return list(state.callbacks)

    add_call_log(app, calls=lambda: list(state.api_calls))
    add_state_reset(app, state.reset)
    return app
