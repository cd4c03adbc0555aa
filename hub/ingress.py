"""The ingress API: systems post messages here; ops read where each message is.

A 202 is answered only after the message is in the store *and* confirmed by RabbitMQ.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import fastapi_offline
import orjson
import structlog
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field
from starlette.types import Receive, Scope, Send

from hub import services
from hub.auth import AuthenticationError, SystemKeys
from hub.bootstrap import Hub
from hub.errors import BrokerUnavailableError, StoreUnavailableError
from hub.routing import SystemSpec
from hub.services import Publisher, RefusalError
from hub.store import MessageView

__all__ = ["create_ingress_app", "message_json"]

log = structlog.get_logger(__name__)


def message_json(view: MessageView) -> dict[str, Any]:
    envelope = view.envelope
    return {
        "id": envelope.id,
        "seq": envelope.seq,
        "type": envelope.type,
        "source": envelope.source,
        "dossier_code": envelope.dossier_code,
        "accepted_at": envelope.accepted_at.isoformat(),
        "idempotency_key": view.idempotency_key,
        "payload": envelope.payload,
        "deliveries": [
            {
                "target": d.target,
                "route": d.route,
                "state": d.state,
                "attempts": d.attempts,
                "in_doubt": d.in_doubt,
                "next_attempt_at": d.next_attempt_at.isoformat() if d.next_attempt_at else None,
                "last_error": d.last_error,
                "delivered_at": d.delivered_at.isoformat() if d.delivered_at else None,
                "updated_at": d.updated_at.isoformat(),
            }
            for d in view.deliveries
        ],
        "events": [
            {
                "target": e.target,
                "kind": e.kind,
                "attempt": e.attempt,
                "detail": e.detail,
                "actor": e.actor,
                "at": e.at.isoformat(),
            }
            for e in view.events
        ],
    }


class AcceptedMessage(BaseModel):
    id: str
    targets: list[str]
    duplicate: bool = False


#: Times are written as ISO 8601 with their offset (``2026-12-04T08:15:02.123456+00:00``).
_Timestamp = Annotated[str, Field(json_schema_extra={"format": "date-time"})]


class DeliveryRecord(BaseModel):
    """Where one message stands with one target."""

    target: str = Field(description="The target system's name in the routing table (a queue of its own).")
    route: str = Field(description="The route that sent the message to this target.")
    state: str = Field(
        description="pending (stored, not yet confirmed by RabbitMQ), accepted (queued for the target), "
        "retrying, delivered, dead_lettered, replayed, superseded (an older state of the dossier, not "
        "sent because a newer one was delivered) or discarded."
    )
    attempts: int = Field(description="Attempts made so far.")
    in_doubt: bool = Field(
        description="An attempt may have reached the target without the hub learning the answer (a "
        "timeout, a dropped connection): before sending again, the hub asks the target whether it "
        "has the message, so it is not recorded twice. Once set, it stays set."
    )
    next_attempt_at: _Timestamp | None = Field(description="When the next attempt is due, while retrying.")
    last_error: str | None = Field(description="Why the last attempt failed, in a sentence.")
    delivered_at: _Timestamp | None
    updated_at: _Timestamp


class DeliveryEventRecord(BaseModel):
    """One step of a message's timeline."""

    target: str | None
    kind: str = Field(description="accepted, attempt_failed, delivered, dead_lettered, replayed, discarded, …")
    attempt: int | None
    detail: str | None
    actor: str | None = Field(description="Who did it, for an operator's action (replay, discard).")
    at: _Timestamp


class MessageRecord(BaseModel):
    """A message as the hub keeps it: its envelope, where it stands with each target, and its timeline."""

    id: str
    seq: int = Field(description="The hub's own order of acceptance.")
    type: str
    source: str
    dossier_code: str | None
    accepted_at: _Timestamp
    idempotency_key: str | None
    payload: dict[str, Any]
    deliveries: list[DeliveryRecord]
    events: list[DeliveryEventRecord]


class DossierMessages(BaseModel):
    dossier_code: str
    messages: list[MessageRecord] = Field(description="The dossier's messages in the order they were accepted.")


_INTERNAL_ERROR = orjson.dumps(
    {
        "detail": "The hub failed on this message and did not accept it; its log says why. "
        "Send it again with the same Idempotency-Key."
    }
)


class IngressApp(FastAPI):
    """The ingress's FastAPI application, with one shortcut: ``POST /v1/messages``, the path every
    message comes in by, is answered by ``post_shortcut``, a plain ASGI handler, instead of going
    through Starlette's middleware and routing and FastAPI's request handling. Skipping that
    framework work took a quarter off the ingress's CPU per message (bench/README.md). The shortcut and the
    FastAPI route call the same ``accept``; the route stays for the OpenAPI contract and answers
    whenever the shortcut is off (``HUB_INGRESS_SHORTCUT=false``). FastAPI's own OpenTelemetry
    middleware, when configured, does not see the shortcut's requests."""

    post_shortcut: Callable[[Scope, Receive, Send], Awaitable[None]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self.post_shortcut is not None
            and scope["type"] == "http"
            and scope["path"] == "/v1/messages"
            and scope["method"] == "POST"
            and not self.root_path
        ):
            await self.post_shortcut(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The request's body, or None when the client disconnects first; a 413 as soon as the body
    grows past ``limit`` (the rest is not read)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise RefusalError(413, f"The body is more than {limit} bytes; the hub accepts at most {limit}.")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def create_ingress_app(hub: Hub, *, run_relay: bool = True) -> FastAPI:
    """The FastAPI application of the ingress (the composition root passes the hub in)."""
    settings = hub.settings
    publisher = Publisher(hub)
    keys = SystemKeys.for_hub(hub)
    plugin_extensions = hub.extensions()

    async def relay_loop() -> None:
        older_than = timedelta(seconds=settings.outbox_relay_after_seconds)
        while True:
            await asyncio.sleep(min(5.0, settings.outbox_relay_after_seconds / 2))
            try:
                await publisher.relay_unpublished(older_than)
            except (StoreUnavailableError, BrokerUnavailableError) as exc:
                log.warning("outbox_relay_waiting", error=str(exc))

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            await hub.broker.connect()
        except BrokerUnavailableError as exc:
            log.warning("ingress_started_without_broker", error=str(exc))
        relay = asyncio.create_task(relay_loop()) if run_relay else None
        loops = [asyncio.create_task(loop()) for extension in plugin_extensions for loop in extension.loops]
        yield
        for task in [*loops, relay]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for extension in plugin_extensions:
            if extension.aclose is not None:
                await extension.aclose()

    app = IngressApp(
        title="LGSP hub ingress",
        version="1",
        description="Provincial integration hub: systems post dossier messages; ops follow each one.",
        lifespan=lifespan,
        docs_url=None,  # /docs and /redoc are served without a CDN: see _serve_offline_docs
        redoc_url=None,
    )
    _serve_offline_docs(app)

    def problem(exc: RefusalError) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        """The error answer: the status, a JSON body ``{"detail": <sentence>, "errors": [...]}`` and headers."""
        hub.metrics.rejected.labels(str(exc.status)).inc()
        body: dict[str, Any] = {"detail": exc.detail}
        if exc.errors:
            body["errors"] = exc.errors
        headers = [(b"retry-after", b"5")] if exc.status == 503 else []
        return exc.status, orjson.dumps(body), headers

    @app.exception_handler(RefusalError)
    async def _problem(_request: Request, exc: RefusalError) -> Response:
        status, body, headers = problem(exc)
        return Response(
            body,
            status_code=status,
            media_type="application/json",
            headers={k.decode(): v.decode() for k, v in headers},
        )

    def authenticate(request: Request) -> SystemSpec | None:
        """The calling system, or None for the admin key; raise 401 otherwise."""
        return identify(request.headers.get("authorization"))

    def identify(authorization: str | None) -> SystemSpec | None:
        try:
            return keys.identify(authorization)
        except AuthenticationError as exc:
            raise RefusalError(401, str(exc)) from exc

    def sender(authorization: str | None) -> SystemSpec:
        """The system posting a message (401 without a valid key, 403 for the admin key)."""
        system = identify(authorization)
        if system is None:
            raise RefusalError(403, "The admin key cannot send messages; use the sending system's key.")
        return system

    def check_length(length: int) -> None:
        if length > settings.max_body_bytes:
            raise RefusalError(413, f"The body is {length} bytes; the hub accepts at most {settings.max_body_bytes}.")

    def declared_length(header: str | None) -> None:
        if header and header.isdigit():
            check_length(int(header))

    async def accept(system: SystemSpec, idempotency_key: str | None, raw: bytes) -> bytes:
        """Validate, store and publish one posted message; the 202's body (:class:`AcceptedMessage`)."""
        check_length(len(raw))
        accepted = await services.accept(hub, publisher, system, idempotency_key, raw)
        return orjson.dumps({"id": accepted.id, "targets": accepted.targets, "duplicate": accepted.duplicate})

    @app.post("/v1/messages", status_code=202, response_model=AcceptedMessage)
    async def post_message(request: Request) -> Response:
        """Send a message: 202 once it is stored and RabbitMQ has confirmed it.

        (`IngressApp` answers this path itself, through the same ``accept``; this route is its
        contract in the OpenAPI document and answers when the shortcut is off.)"""
        system = sender(request.headers.get("authorization"))
        declared_length(request.headers.get("content-length"))
        answer = await accept(system, request.headers.get("idempotency-key"), await request.body())
        return Response(answer, status_code=202, media_type="application/json")

    async def post_shortcut(scope: Scope, receive: Receive, send: Send) -> None:
        """``POST /v1/messages`` as a plain ASGI handler: the same checks and answers as ``post_message``."""
        headers: dict[bytes, str] = {}
        for name, value in scope["headers"]:
            headers.setdefault(name, value.decode("latin-1"))  # names are lower case in ASGI; the first one counts
        extra: list[tuple[bytes, bytes]] = []
        try:
            system = sender(headers.get(b"authorization"))
            declared_length(headers.get(b"content-length"))
            raw = await _read_body(receive, settings.max_body_bytes)
            if raw is None:
                return  # the client went away before sending its whole body: nothing was accepted
            status, body = 202, await accept(system, headers.get(b"idempotency-key"), raw)
        except RefusalError as exc:
            status, body, extra = problem(exc)
        except Exception:  # answered with a sentence and logged; the ingress goes on
            log.exception("ingress_failed")
            status, body = 500, _INTERNAL_ERROR
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    *extra,
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    app.post_shortcut = post_shortcut if settings.ingress_shortcut else None

    async def readable(request: Request, view: MessageView | None, what: str) -> MessageView:
        system = authenticate(request)
        if view is None or (system is not None and view.envelope.source != system.id):
            raise RefusalError(404, f"There is no {what} you may read.")
        return view

    @app.get("/v1/messages/{message_id}", response_model=MessageRecord)
    async def get_message(message_id: str, request: Request) -> dict[str, Any]:
        authenticate(request)
        try:
            view = await hub.store.message(message_id)
        except StoreUnavailableError as exc:
            raise RefusalError(503, str(exc)) from exc
        return message_json(await readable(request, view, f"message {message_id}"))

    @app.get("/v1/dossiers/{dossier_code}/messages", response_model=DossierMessages)
    async def get_dossier_messages(dossier_code: str, request: Request) -> dict[str, Any]:
        system = authenticate(request)
        try:
            views = await hub.store.dossier_messages(dossier_code)
        except StoreUnavailableError as exc:
            raise RefusalError(503, str(exc)) from exc
        if system is not None:
            views = [v for v in views if v.envelope.source == system.id]
        return {"dossier_code": dossier_code, "messages": [message_json(v) for v in views]}

    # --- feature routers: each feature adds one `app.include_router(...)` line below -------------
    from hub.requests import create_request_router

    app.include_router(create_request_router(hub))  # request-reply routes (docs/request-reply.md)
    from hub.console import include_console

    include_console(app, hub)  # ops console under /console (docs/console.md)
    from hub.callbacks import create_partner_router

    app.include_router(create_partner_router(hub))  # payment + VNPost callbacks (docs/payments-and-post.md)
    # ---------------------------------------------------------------------------------------------
    for extension in plugin_extensions:  # what the plugins add (hub/plugin.py)
        for router in extension.routers:
            app.include_router(router)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        problems: list[str] = [hub.starting] if hub.starting else []
        try:
            await hub.broker.check()
        except BrokerUnavailableError as exc:
            problems.append(str(exc))
        try:
            await hub.store.ping()
        except StoreUnavailableError as exc:
            problems.append(str(exc))
        if problems:
            return JSONResponse({"status": "unavailable", "problems": problems}, status_code=503)
        return JSONResponse({"status": "ready"})

    @app.get("/metrics")
    async def metrics() -> Response:
        await refresh_gauges(hub)
        return Response(generate_latest(hub.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


_DOCS_ASSETS = "/docs/assets"
#: The docs pages load nothing from elsewhere, not even ReDoc's "by Redocly" logo (cdn.redoc.ly).
_DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:"
)


def _serve_offline_docs(app: FastAPI) -> None:
    """Swagger UI at ``/docs`` and ReDoc at ``/redoc``, their scripts served by the hub itself from the
    copies of swagger-ui-dist and redoc that the ``fastapi-offline`` package ships: provincial networks
    reach no CDN. The online validator badge is off too (it would call validator.swagger.io), and a
    Content-Security-Policy keeps the browser from asking any other host."""
    assets = StaticFiles(directory=Path(fastapi_offline.__file__).parent / "static")
    app.mount(_DOCS_ASSETS, assets, name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = f"{request.scope.get('root_path', '')}"
        page = get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{_DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{_DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{_DOCS_ASSETS}/favicon.png",
            swagger_ui_parameters={"validatorUrl": None},
        )
        page.headers["Content-Security-Policy"] = _DOCS_CSP
        return page

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = f"{request.scope.get('root_path', '')}"
        page = get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{_DOCS_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{_DOCS_ASSETS}/favicon.png",
            with_google_fonts=False,
        )
        page.headers["Content-Security-Policy"] = _DOCS_CSP
        return page


async def refresh_gauges(hub: Hub) -> None:
    """Read queue depths from RabbitMQ and the oldest undelivered message from the store."""
    topology = hub.broker.topology
    now = datetime.now(UTC)
    for target in hub.routes.delivery_targets():
        depth = await hub.broker.queue_depth(topology.target_queue(target))
        if depth is not None:
            hub.metrics.queue_depth.labels(target).set(depth)
        dlq = await hub.broker.queue_depth(topology.dlq(target))
        if dlq is not None:
            hub.metrics.dlq_depth.labels(target).set(dlq)
        with contextlib.suppress(StoreUnavailableError):
            oldest = await hub.store.oldest_open_accepted_at(target)
            hub.metrics.oldest_pending_age.labels(target).set((now - oldest).total_seconds() if oldest else 0)
    with contextlib.suppress(StoreUnavailableError):
        from hub.metrics import refresh_store_gauges

        await refresh_store_gauges(hub.metrics, hub.store, hub.routes.targets)
