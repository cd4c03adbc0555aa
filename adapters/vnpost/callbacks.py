"""What the VNPost plugin adds to an ingress process: the tracking callback endpoint and the polling loop.

* ``POST /v1/callbacks/vnpost`` – a VNPost tracking event (or a list), authenticated by the token in
  ``X-VNPost-Token`` (:mod:`adapters.vnpost.tracking`); answered ``{"Status": "100"}``.
* Polling of quiet parcels every ``poll_interval`` of the VNPost targets (the shortest one; none when
  every target has 0). ``hub post track`` runs one pass by hand.

See docs/payments-and-post.md.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from adapters.vnpost.tracking import VNPostTargets, open_vnpost_targets
from adapters.vnpost.wire import StatusCallback
from hub.plugin import BodyTooLargeError, Extension, HubContext, StoreUnavailableError, json_problem, read_body

__all__ = ["create_callback_router", "extend_ingress"]

log = structlog.get_logger(__name__)

MAX_CALLBACK_BYTES = 65_536


class CallbackAnswer(BaseModel):
    """What the hub answers VNPost: ``Status`` "100" taken, "104" unknown parcel, "102" unreadable, "401" bad
    token, "500" not recorded (send again)."""

    Status: str
    Message: str


_ANSWERS: dict[int | str, dict[str, object]] = {
    status: {"model": CallbackAnswer, "description": meaning}
    for status, meaning in [
        (400, "Not JSON, or a field is missing or wrong."),
        (401, "No X-VNPost-Token, or the wrong one."),
        (413, "The body is larger than a callback can be."),
        (503, "Not recorded (no VNPost target, or no store); send again."),
    ]
}
_EVENT = StatusCallback.model_json_schema()
#: One tracking event, or a list of them.
_CALLBACK_BODY = {"anyOf": [_EVENT, {"type": "array", "items": _EVENT}]}


def create_callback_router(targets: VNPostTargets) -> APIRouter:
    """The VNPost callback endpoint over the tracker of ``targets`` (503 while there is none)."""
    router = APIRouter(tags=["partner callbacks"])

    @router.post(
        "/v1/callbacks/vnpost",
        response_model=CallbackAnswer,
        responses=_ANSWERS,
        openapi_extra={
            "security": [],  # the token below instead of a system key
            "parameters": [
                {"name": "X-VNPost-Token", "in": "header", "required": True, "schema": {"type": "string"}},
            ],
            "requestBody": {"required": True, "content": {"application/json": {"schema": _CALLBACK_BODY}}},
        },
    )
    async def vnpost_callback(request: Request) -> JSONResponse:
        tracker = targets.tracker
        if tracker is None:
            detail = targets.not_configured()
            return JSONResponse({"Status": "500", "Message": "Chưa cấu hình", "detail": detail}, status_code=503)
        token = request.headers.get("x-vnpost-token")
        if not tracker.token_known(token):  # before reading the body: a stranger's body is never read
            log.warning("vnpost_callback_refused", reason="token")
            return JSONResponse({"Status": "401", "Message": "Sai hoặc thiếu X-VNPost-Token"}, status_code=401)
        try:
            body = await read_body(request, MAX_CALLBACK_BYTES)
        except BodyTooLargeError as exc:
            return JSONResponse({"Status": "102", "Message": "Bản tin quá lớn", "detail": str(exc)}, status_code=413)
        if (problem := json_problem(body)) is not None:
            return JSONResponse({"Status": "102", "Message": "Bản tin có ký tự điều khiển", "detail": problem}, 400)
        try:
            reply = await tracker.handle_callback(body, token)
        except StoreUnavailableError as exc:
            log.exception("vnpost_callback_not_recorded", error=str(exc))
            return JSONResponse(
                {"Status": "500", "Message": "Tạm thời không ghi nhận được, vui lòng gửi lại"},
                status_code=503,
                headers={"Retry-After": "5"},
            )
        return JSONResponse(reply.body, status_code=reply.http_status)

    return router


def extend_ingress(context: HubContext) -> Extension:
    """The callback endpoint, the polling loop (when a target polls) and the closing of the adapters."""
    targets = open_vnpost_targets(context)
    loops: list[Callable[[], Coroutine[Any, Any, None]]] = []
    tracker = targets.tracker
    intervals = [a.poll_interval for a in targets.adapters.values() if a.poll_interval > 0]
    if tracker is not None and intervals:
        interval = min(intervals)

        async def poll_loop() -> None:
            await tracker.run_every(interval)

        loops.append(poll_loop)
    return Extension(routers=[create_callback_router(targets)], loops=loops, aclose=targets.aclose)
