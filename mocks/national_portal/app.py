"""A fake of the national public-services portal (Cổng Dịch vụ công quốc gia), over real HTTP.

Services (``POST``, bearer token from ``POST /oauth2/token``):

* ``/dvcqg/DongBoHoSoMC`` ``{"isUpdating": bool, "data": [dossier, ...]}``
* ``/dvcqg/CapNhatTienDoHoSoMC`` ``{"data": [step, ...]}`` (at most 10 steps)
* ``/dvcqg/TraCuuHoSo`` ``{"MaHoSo": "..."}``

They answer HTTP 200 ``{"error_code": 0|-1, "message": "..."}`` like the real portal; a
request is all-or-nothing (one bad item rejects the whole call). Malformed JSON gets HTTP 400.

Test controls (never faulted): ``/_mock/faults`` (GET, POST, DELETE), ``/_mock/calls`` (GET,
DELETE: also forgets every dossier), ``/_mock/dossiers/{MaHoSo}``, ``/_mock/stats``, ``/healthz``.

Faults apply to ``/dvcqg/*`` only, in this order: ``latency_ms``, then ``drop_next``, an active
outage (``outage_seconds``), ``fail_next``, ``bad_reply_next``; then the token is checked, then
``error_next``, then the request is validated: fields (:mod:`mocks.national_portal._wire`), MaTTHC in the
catalogue, the dossier exists / does not exist yet, then ``reject_procedures``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import time
import urllib.parse
from http import HTTPStatus
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mocks._controls import add_call_log, add_fault_knobs, add_health
from mocks.national_portal._state import CallRecord, FaultSettings, PortalState
from mocks.national_portal._wire import ProgressStep, SyncedDossier

__all__ = ["MAX_PROGRESS_STEPS", "create_app"]

MAX_PROGRESS_STEPS = 10
SERVICE_PREFIX = "/dvcqg/"


class _BadRequestError(Exception):
    """Answered with HTTP 400 (the body is not JSON)."""


class _UnauthorizedError(Exception):
    """Answered with HTTP 401 like a WSO2 gateway."""


class _RejectedError(Exception):
    """Answered with HTTP 200 ``error_code`` -1 and this message."""


def load_catalogue(path: Path | None = None) -> dict[str, dict[str, Any]]:
    if path is None:
        text = resources.files("mocks.national_portal").joinpath("procedures.json").read_text(encoding="utf-8")
    else:
        text = path.read_text(encoding="utf-8")
    data = json.loads(text)
    procedures = data["procedures"] if isinstance(data, dict) else data
    return {str(item["MaTTHC"]): item for item in procedures}


def _reply(error_code: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error_code": error_code, "message": message, **extra})


def _describe(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or 'body'}: {error['msg']}"
        for error in exc.errors(include_url=False)
    )


def _gateway_failure(status: int, retry_after: str | None) -> Response:
    """What a WSO2 gateway (or the load balancer in front of it) answers for ``status``."""
    headers = {"Retry-After": retry_after} if retry_after else {}
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    if status >= 500:
        title = f"{status} {phrase}"
        page = f"<html><head><title>{title}</title></head><body><h1>{title}</h1></body></html>"
        return Response(page, status_code=status, media_type="text/html", headers=headers)
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="dvcqg"'
    codes = {401: 900901, 403: 900908, 429: 900800}
    fault = {
        "code": codes.get(status, 900000 + status),
        "message": phrase,
        "description": f"{status} {phrase}",
    }
    return JSONResponse({"fault": fault}, status_code=status, headers=headers)


class _ServiceCallMiddleware:
    """Records every ``/dvcqg/*`` call and injects the transport-level faults."""

    def __init__(self, app: ASGIApp, state: PortalState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope["path"]).startswith(SERVICE_PREFIX):
            await self.app(scope, receive, send)
            return
        state = self.state
        raw = await _read_body(receive)
        try:
            parsed: Any = json.loads(raw)
        except ValueError:
            parsed = raw.decode("utf-8", "replace")
        started = time.monotonic()
        async with state.lock:
            record = state.start_call(str(scope["path"]).removeprefix(SERVICE_PREFIX), parsed)
            latency_ms = state.faults.latency_ms
        if latency_ms:
            await asyncio.sleep(latency_ms / 1000)

        async with state.lock:
            faults = state.faults
            action = "pass"
            if faults.drop_next > 0:
                faults.drop_next -= 1
                action = "drop"
            elif faults.outage_remaining() > 0:
                action = "fail"
            elif faults.fail_next > 0:
                faults.fail_next -= 1
                action = "fail"
            elif faults.bad_reply_next > 0:
                faults.bad_reply_next -= 1
                action = "bad_reply"
            status, retry_after, bad_body = faults.status, faults.retry_after, faults.bad_reply_body

        sent: dict[str, Any] = {"status": None, "body": b""}

        async def capturing_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                sent["status"] = message["status"]
            elif message["type"] == "http.response.body":
                sent["body"] += message.get("body", b"")
            await send(message)

        try:
            if action == "drop":
                # Start an answer, then return without its body: uvicorn closes the connection
                # and the client sees it dropped mid-reply (httpx.RemoteProtocolError).
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [(b"content-type", b"application/json"), (b"content-length", b"64")],
                    }
                )
                return
            if action == "fail":
                response = _gateway_failure(status, retry_after)
                await response(scope, receive, capturing_send)
            elif action == "bad_reply":
                await Response(bad_body, status_code=200, media_type="text/html")(scope, receive, capturing_send)
            else:
                await self.app(scope, _replay(raw, receive), capturing_send)
        finally:
            async with state.lock:
                record.duration_ms = round((time.monotonic() - started) * 1000, 1)
                record.status = sent["status"]
                if action == "drop":
                    record.outcome = "dropped"
                elif sent["status"] != 200:
                    record.outcome = "http_error"
                else:
                    _classify_reply(record_body=sent["body"], record=record)


def _classify_reply(*, record_body: bytes, record: CallRecord) -> None:
    try:
        reply = json.loads(record_body)
    except ValueError:
        record.outcome = "bad_reply"
        return
    if not isinstance(reply, dict) or "error_code" not in reply:
        record.outcome = "bad_reply"
        return
    record.error_code = reply["error_code"]
    record.message = reply.get("message")
    record.outcome = "accepted" if reply["error_code"] == 0 else "rejected"


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def create_app(
    catalogue_path: Path | None = None, *, client_id: str | None = None, client_secret: str | None = None
) -> FastAPI:
    """Build a fresh fake portal; ``catalogue_path`` defaults to the sample procedure catalogue.

    With ``client_id`` / ``client_secret`` the token endpoint accepts only those (also after
    ``DELETE /_mock/faults``); without, any non-empty pair.
    """
    state = PortalState(catalogue=load_catalogue(catalogue_path), client_id=client_id, client_secret=client_secret)
    app = FastAPI(title="Fake national public-services portal (Cổng DVCQG)", docs_url="/_mock/docs")
    app.state.portal = state
    app.add_middleware(_ServiceCallMiddleware, state=state)

    @app.exception_handler(_BadRequestError)
    async def _bad_request(_: Request, exc: Exception) -> Response:
        return JSONResponse({"error_code": -1, "message": str(exc)}, status_code=400)

    @app.exception_handler(_UnauthorizedError)
    async def _unauthorized(_: Request, exc: Exception) -> Response:
        return _gateway_failure(401, None)

    @app.exception_handler(_RejectedError)
    async def _rejected(_: Request, exc: Exception) -> Response:
        return _reply(-1, str(exc))

    async def service_body(request: Request) -> dict[str, Any]:
        """Check the bearer token, parse the JSON body, then apply ``error_next``."""
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        async with state.lock:
            if scheme.lower() != "bearer" or not state.token_is_valid(token.strip()):
                raise _UnauthorizedError
        try:
            body = json.loads(await request.body())
        except ValueError:
            raise _BadRequestError("Dữ liệu gửi lên không phải JSON hợp lệ") from None
        if not isinstance(body, dict):
            raise _BadRequestError("Dữ liệu gửi lên phải là một đối tượng JSON")
        async with state.lock:
            if state.faults.error_next > 0:
                state.faults.error_next -= 1
                raise _RejectedError(state.faults.error_message)
        return body

    def data_list(body: dict[str, Any]) -> list[Any]:
        data = body.get("data")
        if not isinstance(data, list) or not data:
            raise _RejectedError("Trường data phải là một danh sách không rỗng")
        return data

    def validated(model: type[BaseModel], item: Any, index: int) -> Any:
        if not isinstance(item, dict):
            raise _RejectedError(f"Phần tử thứ {index} của data phải là một đối tượng JSON")
        try:
            return model.model_validate(item)
        except ValidationError as exc:
            label = item.get("MaHoSo") if isinstance(item.get("MaHoSo"), str) else f"thứ {index}"
            raise _RejectedError(f"Dữ liệu hồ sơ {label} không hợp lệ: {_describe(exc)}") from None

    @app.post("/oauth2/token")
    async def issue_token(request: Request) -> Response:
        form = urllib.parse.parse_qs((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
        client_id = form.get("client_id", [""])[0]
        client_secret = form.get("client_secret", [""])[0]
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic":
            try:
                client_id, _, client_secret = base64.b64decode(encoded).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                client_id = client_secret = ""
        if form.get("grant_type", [""])[0] != "client_credentials":
            return JSONResponse(
                {
                    "error": "unsupported_grant_type",
                    "error_description": "Only client_credentials is supported",
                },
                status_code=400,
            )
        async with state.lock:
            faults = state.faults
            wrong = (
                not client_id
                or not client_secret
                or (faults.required_client_id is not None and client_id != faults.required_client_id)
                or (faults.required_client_secret is not None and client_secret != faults.required_client_secret)
            )
            if wrong:
                return JSONResponse(
                    {"error": "invalid_client", "error_description": "Client Authentication failed."},
                    status_code=401,
                )
            token, ttl = state.issue_token()
        return JSONResponse({"access_token": token, "token_type": "Bearer", "expires_in": ttl})

    @app.post("/dvcqg/DongBoHoSoMC")
    async def sync_dossiers(request: Request) -> Response:
        body = await service_body(request)
        updating = body.get("isUpdating")
        if not isinstance(updating, bool):
            raise _RejectedError("Trường isUpdating phải là true hoặc false")
        items = data_list(body)
        dossiers: list[tuple[SyncedDossier, dict[str, Any]]] = [
            (validated(SyncedDossier, item, index), item) for index, item in enumerate(items, 1)
        ]
        async with state.lock:
            seen: set[str] = set()
            for dossier, _ in dossiers:
                code = dossier.MaHoSo
                if dossier.MaTTHC not in state.catalogue:
                    raise _RejectedError(f"MaTTHC '{dossier.MaTTHC}' không có trong danh mục thủ tục hành chính")
                exists = code in state.dossiers or code in seen
                if not updating and exists:
                    raise _RejectedError(f"Hồ sơ {code} đã tồn tại trên Cổng DVCQG")
                if updating and code not in state.dossiers:
                    raise _RejectedError(f"Hồ sơ {code} không tồn tại trên Cổng DVCQG, không thể cập nhật")
                if dossier.MaTTHC in state.faults.reject_procedures:
                    raise _RejectedError(
                        f"MaTTHC '{dossier.MaTTHC}' đang tạm ngừng đồng bộ trên Cổng DVCQG, hồ sơ {code} bị từ chối"
                    )
                seen.add(code)
            for _, item in dossiers:
                state.record_upsert(item, creating=not updating)
        return _reply(0, "Thành công")

    @app.post("/dvcqg/CapNhatTienDoHoSoMC")
    async def update_progress(request: Request) -> Response:
        body = await service_body(request)
        items = data_list(body)
        if len(items) > MAX_PROGRESS_STEPS:
            raise _RejectedError(
                f"Mỗi lần chỉ được gửi tối đa {MAX_PROGRESS_STEPS} bước xử lý (nhận được {len(items)})"
            )
        steps: list[ProgressStep] = [validated(ProgressStep, item, index) for index, item in enumerate(items, 1)]
        async with state.lock:
            for step in steps:
                if step.MaHoSo not in state.dossiers:
                    raise _RejectedError(
                        f"Hồ sơ {step.MaHoSo} không tồn tại trên Cổng DVCQG, không thể cập nhật tiến độ xử lý"
                    )
            for item in items:
                state.record_step(item)
        return _reply(0, "Thành công")

    @app.post("/dvcqg/TraCuuHoSo")
    async def look_up(request: Request) -> Response:
        body = await service_body(request)
        code = body.get("MaHoSo")
        if not isinstance(code, str) or not code.strip():
            raise _RejectedError("Thiếu MaHoSo")
        async with state.lock:
            record = state.dossiers.get(code.strip())
            if record is None:
                raise _RejectedError(f"Không tìm thấy hồ sơ {code}")
            public = {
                key: record.current.get(key)
                for key in (
                    "MaHoSo",
                    "MaTTHC",
                    "TenTTHC",
                    "ChuHoSo",
                    "NgayTiepNhan",
                    "NgayHenTra",
                    "NgayTra",
                    "TrangThaiHoSo",
                )
            }
        return _reply(0, "Thành công", data=public)

    add_health(app)

    async def show_faults() -> dict[str, Any]:
        async with state.lock:
            return {**state.faults.as_dict(), "tokens_active": len(state.tokens)}

    async def change_faults(settings: FaultSettings) -> dict[str, Any]:
        async with state.lock:
            state.faults.apply(settings)
            if settings.expire_tokens:
                state.tokens.clear()
            return {**state.faults.as_dict(), "tokens_active": len(state.tokens)}

    async def clear_faults() -> dict[str, Any]:
        async with state.lock:
            state.reset_faults()
            return state.faults.as_dict()

    async def calls() -> list[dict[str, Any]]:
        async with state.lock:
            return [call.as_dict() for call in state.calls]

    async def forget_calls_and_dossiers() -> None:
        async with state.lock:
            state.reset_calls_and_dossiers()

    add_fault_knobs(app, show=show_faults, change=change_faults, clear=clear_faults, settings=FaultSettings)
    add_call_log(app, calls=calls, forget=forget_calls_and_dossiers)

    @app.get("/_mock/dossiers/{code}")
    async def get_dossier(code: str) -> Response:
        async with state.lock:
            record = state.dossiers.get(code)
            if record is None:
                return JSONResponse({"detail": f"The mock portal has no dossier {code}."}, status_code=404)
            return JSONResponse(record.as_dict())

    @app.get("/_mock/stats")
    async def get_stats() -> dict[str, Any]:
        async with state.lock:
            return state.stats()

    return app
