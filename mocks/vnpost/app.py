"""A fake VNPost API over real HTTP, with parcels that move on a clock the tests control.

Services (``POST``, JSON, the token from getToken in the ``h-token`` header; HTTP 401 without a
valid token), all answering HTTP 200 ``{"Status", "Message", "Data"}``:

* ``/serviceApi/v1/getToken`` ``{"Username", "Password"}`` -> ``Data {"Token", "ExpiresIn"}`` ("106" wrong login)
* ``/serviceApi/v1/postOrder`` an order -> ``Data {"ItemCode", "OrderNumber", "TotalFee", "Status": 0}``;
  "102" invalid data, "103" an open order with this OrderNumber exists (``Data.ItemCode`` is it)
* ``/serviceApi/v1/cancelOrder`` ``{"ItemCode", "Reason"}``; "104" unknown, "105" already picked up
* ``/serviceApi/v1/getOrderTracking`` ``{"ItemCode"}`` -> ``Data {"ItemCode", "OrderNumber", "Status", "Events"}``

Parcels only move when a test says so: ``POST /_mock/clock/advance {"steps": 1, "minutes": 60,
"ItemCode": optional}`` moves every open parcel (or one) ``steps`` statuses on (0 created, 1 picked
up, 2 in transit, 3 out for delivery, 4 delivered) and posts one callback per new status to the hub
(``X-VNPost-Token``), in order per parcel unless ``reverse_callbacks`` is set.

Fault knobs (``POST /_mock/faults``): ``fail_next`` calls answer HTTP ``status``; ``error_next`` calls
answer Status ``error_status`` ("500"); ``latency_ms``; ``expire_tokens`` (every token now invalid);
``reject_tokens`` (every call 401); ``token_ttl_seconds``; ``callbacks`` false = no callbacks at all
(the hub must poll); ``lose_next`` callbacks are not sent; ``duplicate_next`` are sent twice;
``reverse_callbacks`` sends one advance's callbacks of a parcel newest first; ``echo_receiver_next``
orders are refused with a message that repeats the receiver's name, phone and address (as real
systems do).

Test controls: ``/_mock/config`` (POST ``{"callback_url", "callback_token"}``), ``/_mock/faults``
(GET, POST, DELETE), ``/_mock/orders[/{ItemCode}]``, ``/_mock/callbacks``, ``/_mock/calls``,
``/_mock/state`` (DELETE).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from mocks._controls import CountedKnobs, add_call_log, add_fault_knobs, add_health, add_state_reset

__all__ = ["DEFAULT_CALLBACK_TOKEN", "DEFAULT_PASSWORD", "DEFAULT_USERNAME", "create_app"]

DEFAULT_USERNAME = "lgsp-demo"
DEFAULT_PASSWORD = "sample-vnpost-password-for-the-mock"
DEFAULT_CALLBACK_TOKEN = "sample-vnpost-callback-token"
_VIETNAM = ZoneInfo("Asia/Ho_Chi_Minh")
STATUS_NAMES = {
    0: "Đã tạo đơn",
    1: "Đã lấy hàng",
    2: "Đang vận chuyển",
    3: "Đang phát",
    4: "Phát thành công",
}
POST_OFFICES = {0: None, 1: "Bưu cục Hoàn Kiếm", 2: "Trung tâm khai thác Hà Nội", 3: "Bưu cục phát", 4: "Bưu cục phát"}


class FaultSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fail_next: int | None = Field(default=None, ge=0)
    status: int | None = Field(default=None, ge=400, le=599)
    error_next: int | None = Field(default=None, ge=0)
    error_status: str | None = None
    latency_ms: int | None = Field(default=None, ge=0)
    expire_tokens: bool | None = None
    reject_tokens: bool | None = None
    token_ttl_seconds: int | None = Field(default=None, ge=1)
    callbacks: bool | None = None
    lose_next: int | None = Field(default=None, ge=0)
    duplicate_next: int | None = Field(default=None, ge=0)
    reverse_callbacks: bool | None = None
    echo_receiver_next: int | None = Field(default=None, ge=0)


@dataclass
class Faults(CountedKnobs):
    fail_next: int = 0
    status: int = 503
    error_next: int = 0
    error_status: str = "500"
    latency_ms: int = 0
    token_ttl_seconds: int = 3600
    reject_tokens: bool = False
    callbacks: bool = True
    lose_next: int = 0
    duplicate_next: int = 0
    reverse_callbacks: bool = False
    echo_receiver_next: int = 0


@dataclass
class MockOrder:
    item_code: str
    order_number: str
    body: dict[str, Any]
    status: int = 0
    cancelled: bool = False
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def open(self) -> bool:
        return not self.cancelled and self.status < 4

    def as_dict(self) -> dict[str, Any]:
        return {
            "ItemCode": self.item_code,
            "OrderNumber": self.order_number,
            "Status": self.status,
            "Cancelled": self.cancelled,
            "Events": self.events,
            "Order": self.body,
        }


@dataclass
class VNPostState:
    username: str
    password: str
    callback_url: str | None
    callback_token: str
    faults: Faults = field(default_factory=Faults)
    tokens: dict[str, float] = field(default_factory=dict)
    tokens_issued: int = 0
    orders: dict[str, MockOrder] = field(default_factory=dict)
    callbacks: list[dict[str, Any]] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)
    clock: datetime = field(default_factory=lambda: datetime.now(_VIETNAM).replace(microsecond=0))
    counter: itertools.count[int] = field(default_factory=lambda: itertools.count(100_000_001))
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def now_text(self) -> str:
        return self.clock.strftime("%Y%m%d%H%M%S")


def _reply(status: str, message: str, data: Any = None) -> JSONResponse:
    return JSONResponse({"Status": status, "Message": message, "Data": data})


def _party_problem(party: Any, side: str) -> str | None:
    if not isinstance(party, dict):
        return f"Thiếu thông tin {side}"
    for key in ("FullName", "Phone", "Address", "ProvinceCode", "WardCode"):
        if not isinstance(party.get(key), str) or not party[key].strip():
            return f"{side}.{key} không được để trống"
    return None


def create_app(
    *,
    username: str = DEFAULT_USERNAME,
    password: str = DEFAULT_PASSWORD,
    callback_url: str | None = None,
    callback_token: str = DEFAULT_CALLBACK_TOKEN,
) -> FastAPI:
    state = VNPostState(username=username, password=password, callback_url=callback_url, callback_token=callback_token)
    app = FastAPI(title="Mock VNPost", version="1")

    def token_ok(request: Request) -> bool:
        if state.faults.reject_tokens:
            return False
        token = request.headers.get("h-token", "")
        expiry = state.tokens.get(token)
        return expiry is not None and expiry > time.monotonic()

    async def body_of(request: Request) -> dict[str, Any] | None:
        try:
            body = json.loads(await request.body())
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    async def faulted(service: str) -> Response | None:
        faults = state.faults
        if faults.latency_ms:
            await asyncio.sleep(faults.latency_ms / 1000)
        if faults.take("fail_next"):
            state.calls.append({"service": service, "http": faults.status})
            return JSONResponse({"Status": "500", "Message": "Lỗi giả lập"}, status_code=faults.status)
        if faults.take("error_next"):
            state.calls.append({"service": service, "Status": faults.error_status})
            return _reply(faults.error_status, "Lỗi hệ thống VNPost (giả lập)")
        return None

    async def post_callback(event: dict[str, Any], order: MockOrder) -> None:
        record: dict[str, Any] = {"ItemCode": order.item_code, "Status": event["Status"]}
        state.callbacks.append(record)
        faults = state.faults
        if not faults.callbacks:
            record["outcome"] = "quiet"
            return
        if faults.take("lose_next"):
            record["outcome"] = "lost"
            return
        if state.callback_url is None:
            record["outcome"] = "no_callback_url"
            return
        body = {"ItemCode": order.item_code, "OrderNumber": order.order_number, **event}
        copies = 2 if faults.take("duplicate_next") else 1
        async with httpx.AsyncClient(timeout=10) as client:
            for _ in range(copies):
                try:
                    response = await client.post(
                        state.callback_url, json=body, headers={"X-VNPost-Token": state.callback_token}
                    )
                    record["outcome"] = "answered"
                    record["http"] = response.status_code
                    record["answer"] = response.json()
                except (httpx.HTTPError, ValueError) as exc:
                    record["outcome"] = f"error: {type(exc).__name__}"
        record["copies"] = copies

    def add_event(order: MockOrder, status: int) -> dict[str, Any]:
        event = {"Status": status, "StatusName": STATUS_NAMES[status], "Time": state.now_text()}
        if POST_OFFICES[status]:
            event["PostOffice"] = POST_OFFICES[status]
        order.status = status
        order.events.append(event)
        return event

    # ------------------------------------------------------------------ API

    @app.post("/serviceApi/v1/getToken")
    async def get_token(request: Request) -> Response:
        if (faulty := await faulted("getToken")) is not None:
            return faulty
        body = await body_of(request) or {}
        state.calls.append({"service": "getToken"})
        if body.get("Username") != state.username or body.get("Password") != state.password:
            return _reply("106", "Sai tên đăng nhập hoặc mật khẩu")
        token = secrets.token_urlsafe(18)
        state.tokens[token] = time.monotonic() + state.faults.token_ttl_seconds
        state.tokens_issued += 1
        return _reply("100", "Thành công", {"Token": token, "ExpiresIn": state.faults.token_ttl_seconds})

    async def guarded(service: str, request: Request) -> tuple[dict[str, Any] | None, Response | None]:
        if (faulty := await faulted(service)) is not None:
            return None, faulty
        if not token_ok(request):
            state.calls.append({"service": service, "http": 401})
            return None, JSONResponse({"Status": "401", "Message": "Token không hợp lệ hoặc hết hạn"}, 401)
        body = await body_of(request)
        if body is None:
            state.calls.append({"service": service, "Status": "102"})
            return None, _reply("102", "Dữ liệu không phải JSON")
        return body, None

    @app.post("/serviceApi/v1/postOrder")
    async def post_order(request: Request) -> Response:
        body, refused = await guarded("postOrder", request)
        if body is None:
            return refused or _reply("102", "Dữ liệu không hợp lệ")
        number = body.get("OrderNumber")
        problem = None
        if not isinstance(number, str) or not number:
            problem = "OrderNumber không được để trống"
        cod = body.get("CODAmount", 0)
        if problem is None and (not isinstance(cod, int) or isinstance(cod, bool) or cod < 0):
            problem = "CODAmount phải là số nguyên không âm"
        problem = (
            problem or _party_problem(body.get("Sender"), "Sender") or _party_problem(body.get("Receiver"), "Receiver")
        )
        if problem is None and state.faults.take("echo_receiver_next"):
            receiver = body["Receiver"]
            problem = f"Người nhận {receiver['FullName']} ({receiver['Phone']}) tại {receiver['Address']} không hợp lệ"
        if problem is not None:
            state.calls.append({"service": "postOrder", "Status": "102"})
            return _reply("102", problem)
        async with state.lock:
            existing = next((o for o in state.orders.values() if o.order_number == number and o.open), None)
            if existing is not None:
                state.calls.append({"service": "postOrder", "Status": "103"})
                return _reply("103", f"Đơn hàng {number} đã tồn tại", {"ItemCode": existing.item_code})
            item_code = f"EB{next(state.counter):09d}VN"
            order = MockOrder(item_code=item_code, order_number=str(number), body=body)
            add_event(order, 0)
            state.orders[item_code] = order
        state.calls.append({"service": "postOrder", "Status": "100"})
        # No callback for status 0: the hub learns it from this answer.
        fee = 25_000 + (cod // 100 if isinstance(cod, int) else 0)
        return _reply(
            "100", "Tạo đơn thành công", {"ItemCode": item_code, "OrderNumber": number, "TotalFee": fee, "Status": 0}
        )

    @app.post("/serviceApi/v1/cancelOrder")
    async def cancel_order(request: Request) -> Response:
        body, refused = await guarded("cancelOrder", request)
        if body is None:
            return refused or _reply("102", "Dữ liệu không hợp lệ")
        order = state.orders.get(str(body.get("ItemCode")))
        if order is None:
            return _reply("104", "Không tìm thấy vận đơn")
        if order.status >= 1 and not order.cancelled:
            return _reply("105", "Bưu gửi đã được nhận, không thể hủy")
        order.cancelled = True
        state.calls.append({"service": "cancelOrder", "Status": "100"})
        return _reply("100", "Đã hủy đơn", {"ItemCode": order.item_code})

    @app.post("/serviceApi/v1/getOrderTracking")
    async def tracking(request: Request) -> Response:
        body, refused = await guarded("getOrderTracking", request)
        if body is None:
            return refused or _reply("102", "Dữ liệu không hợp lệ")
        order = state.orders.get(str(body.get("ItemCode")))
        state.calls.append({"service": "getOrderTracking", "ItemCode": body.get("ItemCode")})
        if order is None:
            return _reply("104", "Không tìm thấy vận đơn")
        return _reply(
            "100",
            "Thành công",
            {
                "ItemCode": order.item_code,
                "OrderNumber": order.order_number,
                "Status": order.status,
                "Events": order.events,
            },
        )

    # ------------------------------------------------------------------ test controls

    add_health(app)

    @app.post("/_mock/config")
    async def configure(request: Request) -> dict[str, Any]:
        body = await body_of(request) or {}
        if "callback_url" in body:
            state.callback_url = body["callback_url"]
        if "callback_token" in body:
            state.callback_token = str(body["callback_token"])
        return {"callback_url": state.callback_url}

    @app.post("/_mock/clock/advance")
    async def advance(request: Request) -> dict[str, Any]:
        body = await body_of(request) or {}
        steps = int(body.get("steps", 1))
        minutes = float(body.get("minutes", 60))
        only = body.get("ItemCode")
        moved: list[tuple[MockOrder, list[dict[str, Any]]]] = []
        async with state.lock:
            for order in state.orders.values():
                if not order.open or (only is not None and order.item_code != only):
                    continue
                events = []
                for _ in range(steps):
                    if order.status >= 4:
                        break
                    state.clock += timedelta(minutes=minutes)
                    events.append(add_event(order, order.status + 1))
                moved.append((order, events))
        for order, events in moved:
            for event in reversed(events) if state.faults.reverse_callbacks else events:
                await post_callback(event, order)
        return {
            "clock": state.now_text(),
            "moved": {order.item_code: [e["Status"] for e in events] for order, events in moved},
        }

    def show_faults() -> dict[str, Any]:
        return {**state.faults.as_dict(), "tokens_active": len(state.tokens), "tokens_issued": state.tokens_issued}

    def change_faults(settings: FaultSettings) -> dict[str, Any]:
        if settings.expire_tokens:
            state.tokens.clear()
        state.faults.apply(settings.model_copy(update={"expire_tokens": None}))
        return show_faults()

    def clear_faults() -> dict[str, Any]:
        state.faults.reset()
        return state.faults.as_dict()

    add_fault_knobs(app, show=show_faults, change=change_faults, clear=clear_faults, settings=FaultSettings)

    @app.get("/_mock/orders")
    async def list_orders() -> list[dict[str, Any]]:
        return [o.as_dict() for o in state.orders.values()]

    @app.get("/_mock/orders/{item_code}")
    async def get_order(item_code: str) -> Response:
        order = state.orders.get(item_code)
        if order is None:
            return JSONResponse({"detail": f"The mock VNPost has no parcel {item_code}."}, status_code=404)
        return JSONResponse(order.as_dict())

    @app.get("/_mock/callbacks")
    async def list_callbacks() -> list[dict[str, Any]]:
        return list(state.callbacks)

    async def reset() -> None:
        async with state.lock:
            state.orders.clear()
            state.callbacks.clear()
            state.calls.clear()
            state.tokens.clear()
            state.tokens_issued = 0
            state.faults.reset()

    add_call_log(app, calls=lambda: list(state.calls))
    add_state_reset(app, reset)
    return app
