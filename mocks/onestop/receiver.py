"""The receiving side of a mock one-stop system: records what the hub delivers to it.

``POST /lgsp/messages`` takes one hub message ``{"id", "type", "dossier_code", "accepted_at",
"payload"}`` with ``Authorization: Bearer <api key>`` (when the app was given a key) and answers
``{"status": "received"}`` (or ``"duplicate"`` for an id it already has: the hub delivers at least
once, so a real one-stop system must do the same).

Fault knobs (``POST /_mock/faults``): ``fail_next`` deliveries answer HTTP ``status`` (503) with
``retry_after``; ``reject_next`` answer 422; ``latency_ms`` delays every delivery.
Test controls: ``GET /_mock/received`` (``?type=`` and ``?dossier=`` filter; every delivery in
arrival order, duplicates included with ``"duplicate": true``), ``DELETE /_mock/received``,
``/_mock/faults`` (GET, POST, DELETE). Run it with ``python -m mocks.onestop.receiver``.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from mocks._controls import CountedKnobs, add_counted_knobs, add_health

__all__ = ["create_receiver_app"]


class ReceiverFaults(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fail_next: int | None = Field(default=None, ge=0)
    status: int | None = Field(default=None, ge=400, le=599)
    retry_after: int | None = Field(default=None, ge=0)
    reject_next: int | None = Field(default=None, ge=0)
    latency_ms: int | None = Field(default=None, ge=0)


@dataclass
class _Knobs(CountedKnobs):
    fail_next: int = 0
    status: int = 503
    retry_after: int | None = None
    reject_next: int = 0
    latency_ms: int = 0


@dataclass
class _State:
    api_key: str | None
    knobs: _Knobs = field(default_factory=_Knobs)
    received: list[dict[str, Any]] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def create_receiver_app(api_key: str | None = None) -> FastAPI:
    """The receiving mock; with ``api_key`` every delivery must carry it as a bearer token."""
    state = _State(api_key=api_key)
    app = FastAPI(title="Mock one-stop system (receiving side)", version="1")

    @app.post("/lgsp/messages")
    async def receive(request: Request) -> Response:
        if state.api_key is not None:
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), state.api_key.encode()):
                return JSONResponse({"detail": "Sai khóa truy cập"}, status_code=401)
        knobs = state.knobs
        if knobs.latency_ms:
            await asyncio.sleep(knobs.latency_ms / 1000)
        if knobs.take("fail_next"):
            headers = {"Retry-After": str(knobs.retry_after)} if knobs.retry_after is not None else None
            return JSONResponse({"detail": "Hệ thống một cửa tạm thời gián đoạn"}, knobs.status, headers=headers)
        if knobs.take("reject_next"):
            return JSONResponse({"detail": "Bản tin bị từ chối (giả lập)"}, status_code=422)
        try:
            body = json.loads(await request.body())
        except ValueError:
            return JSONResponse({"detail": "Body is not JSON"}, status_code=400)
        if not isinstance(body, dict) or not isinstance(body.get("id"), str) or not isinstance(body.get("type"), str):
            return JSONResponse({"detail": "A hub message needs id, type and payload."}, status_code=422)
        async with state.lock:
            duplicate = body["id"] in state.ids
            state.ids.add(body["id"])
            state.received.append(
                {
                    **body,
                    "duplicate": duplicate,
                    "idempotency_key": request.headers.get("idempotency-key"),
                    "received_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
                }
            )
        return JSONResponse({"status": "duplicate" if duplicate else "received"})

    add_health(app)

    @app.get("/_mock/received")
    async def received(type: str | None = None, dossier: str | None = None) -> list[dict[str, Any]]:
        return [
            item
            for item in state.received
            if (type is None or item["type"] == type) and (dossier is None or item.get("dossier_code") == dossier)
        ]

    @app.delete("/_mock/received")
    async def forget() -> dict[str, str]:
        async with state.lock:
            state.received.clear()
            state.ids.clear()
        return {"status": "reset"}

    add_counted_knobs(app, state.knobs, ReceiverFaults)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m mocks.onestop.receiver", description="Receiving side of a mock one-stop system."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8084)
    parser.add_argument("--api-key", default=None, help="require this bearer key from the hub")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    uvicorn.run(create_receiver_app(args.api_key), host=args.host, port=args.port, log_level=args.log_level)


if __name__ == "__main__":
    main()
