"""The ingress API: systems post messages here; ops read where each message is.

A 202 is answered only after the message is in the store *and* confirmed by RabbitMQ.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import fastapi_offline
import orjson
import structlog
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from hub.api import health_router, messages_router, requests_router
from hub.api.deps import IngressState
from hub.api.guard import Lock
from hub.api.health import MetricsPage
from hub.api.requests import RequestState
from hub.bootstrap import Hub
from hub.console import include_console
from hub.contract import complete_document
from hub.edge import BodyTooLargeError, ClientDisconnect, closing_unread_bodies, receive_body, request_problem
from hub.errors import BrokerUnavailableError, StoreUnavailableError
from hub.services import RefusalError

__all__ = ["create_ingress_app"]

log = structlog.get_logger(__name__)


_INTERNAL_ERROR = orjson.dumps(
    {
        "detail": "The hub failed on this message and did not accept it; its log says why. "
        "Send it again with the same Idempotency-Key."
    }
)


class IngressApp(FastAPI):
    """The ingress's FastAPI application, with one shortcut: ``POST /v1/messages``, the path every message
    comes in by, is answered by ``post_shortcut``, a plain ASGI handler, instead of going through
    Starlette's middleware and routing and FastAPI's request handling, whose work is a large share of the
    ingress's CPU per message. The shortcut and the FastAPI route call the same ``accept``; the route stays
    for the OpenAPI contract and answers whenever the shortcut is off (``HUB_INGRESS_SHORTCUT=false``).
    FastAPI's own OpenTelemetry middleware, when configured, does not see the shortcut's requests."""

    post_shortcut: Callable[[Scope, Receive, Send], Awaitable[None]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            receive, send = closing_unread_bodies(scope, receive, send)
            if (refused := request_problem(scope)) is not None:
                await _answer(send, 400, orjson.dumps({"detail": refused}))
                return
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


async def _answer(send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(extra or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def create_ingress_app(hub: Hub, *, run_relay: bool = True) -> FastAPI:
    """The FastAPI application of the ingress (the composition root passes the hub in)."""
    settings = hub.settings
    state = IngressState.for_hub(hub)
    requests = RequestState.for_hub(hub, state.keys)
    plugin_extensions = hub.extensions()

    async def relay_loop() -> None:
        older_than = timedelta(seconds=settings.outbox_relay_after_seconds)
        while True:
            await asyncio.sleep(min(5.0, settings.outbox_relay_after_seconds / 2))
            try:
                await state.publisher.relay_unpublished(older_than)
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
        await requests.client.aclose()
        for extension in plugin_extensions:
            if extension.aclose is not None:
                await extension.aclose()

    app = IngressApp(
        title="LGSP hub ingress",
        version="1",
        description="Provincial integration hub: systems post dossier messages; ops follow each one.",
        lifespan=lifespan,
        docs_url=None,  # /docs, /redoc and /openapi.json are served by _serve_offline_docs (no CDN, a lock)
        redoc_url=None,
        openapi_url=None,
    )
    app.state.ingress = state
    app.state.requests = requests
    app.state.metrics_page = MetricsPage.for_hub(hub)
    _serve_offline_docs(app, Lock(settings.docs_password, user=settings.docs_user, realm="hub API docs"))

    @app.exception_handler(RefusalError)
    async def _problem(_request: Request, exc: RefusalError) -> Response:
        status, body, headers = state.problem(exc)
        return Response(
            body,
            status_code=status,
            media_type="application/json",
            headers={k.decode(): v.decode() for k, v in headers},
        )

    @app.exception_handler(BodyTooLargeError)
    async def _too_large(request: Request, exc: BodyTooLargeError) -> Response:
        return await _problem(request, RefusalError(413, str(exc)))

    async def post_shortcut(scope: Scope, receive: Receive, send: Send) -> None:
        """``POST /v1/messages`` as a plain ASGI handler: the same checks and answers as the route's."""
        headers: dict[bytes, str] = {}
        for name, value in scope["headers"]:
            headers.setdefault(name, value.decode("latin-1"))  # names are lower case in ASGI; the first one counts
        extra: list[tuple[bytes, bytes]] = []
        try:
            system = state.sender(headers.get(b"authorization"))
            raw = await receive_body(receive, settings.max_body_bytes, headers.get(b"content-length"))
            status, body = 202, await state.accept(system, headers.get(b"idempotency-key"), raw)
        except ClientDisconnect:
            return  # the client went away before sending its whole body: nothing was accepted
        except BodyTooLargeError as exc:
            status, body, extra = state.problem(RefusalError(413, str(exc)))
        except RefusalError as exc:
            status, body, extra = state.problem(exc)
        except Exception:  # answered with a sentence and logged; the ingress goes on
            log.exception("ingress_failed")
            status, body = 500, _INTERNAL_ERROR
        await _answer(send, status, body, extra)

    app.post_shortcut = post_shortcut if settings.ingress_shortcut else None
    app.include_router(messages_router)
    app.include_router(requests_router)  # request-reply routes (docs/request-reply.md)
    include_console(app, hub)  # ops console under /console (docs/console.md)
    for extension in plugin_extensions:  # what the plugins add (hub/plugin.py)
        for router in extension.routers:
            app.include_router(router)
    app.include_router(health_router)
    fastapi_document = app.openapi

    def document() -> dict[str, Any]:
        """FastAPI's document completed from the route files (hub.contract), built once."""
        if app.openapi_schema is None:
            app.openapi_schema = complete_document(fastapi_document(), hub.routes, hub.schemas)
        return app.openapi_schema

    app.openapi = document  # type: ignore[method-assign]
    return app


_DOCS_ASSETS = "/docs/assets"
_OPENAPI_URL = "/openapi.json"
#: The docs pages load nothing from elsewhere, not even ReDoc's "by Redocly" logo (cdn.redoc.ly).
_DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:"
)


def _serve_offline_docs(app: FastAPI, lock: Lock) -> None:
    """Swagger UI at ``/docs`` and ReDoc at ``/redoc``, their scripts served by the hub itself from the
    copies of swagger-ui-dist and redoc that the ``fastapi-offline`` package ships: provincial networks
    reach no CDN. The online validator badge is off too (it would call validator.swagger.io), and a
    Content-Security-Policy keeps the browser from asking any other host. With HUB_DOCS_PASSWORD set,
    the two pages and ``/openapi.json`` ask for it (``lock``); the assets are the packages' own files."""
    assets = StaticFiles(directory=Path(fastapi_offline.__file__).parent / "static")
    app.mount(_DOCS_ASSETS, assets, name="docs-assets")

    def refused(request: Request) -> Response | None:
        if lock.opens(request.headers.get("authorization")):
            return None
        detail = "The API docs are protected: log in with the docs user and password (HUB_DOCS_PASSWORD)."
        return JSONResponse({"detail": detail}, status_code=401, headers=lock.challenge)

    @app.get(_OPENAPI_URL, include_in_schema=False)
    async def openapi_document(request: Request) -> Response:
        if (refusal := refused(request)) is not None:
            return refusal
        document = app.openapi()
        root = str(request.scope.get("root_path", "")).rstrip("/")
        if root and not document.get("servers"):  # behind a proxy's prefix, as FastAPI's own route does
            document = {**document, "servers": [{"url": root}]}
        return JSONResponse(document)

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> Response:
        if (refusal := refused(request)) is not None:
            return refusal
        root = f"{request.scope.get('root_path', '')}"
        page = get_swagger_ui_html(
            openapi_url=f"{root}{_OPENAPI_URL}",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{_DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{_DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{_DOCS_ASSETS}/favicon.png",
            swagger_ui_parameters={"validatorUrl": None},
        )
        page.headers["Content-Security-Policy"] = _DOCS_CSP
        return page

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> Response:
        if (refusal := refused(request)) is not None:
            return refusal
        root = f"{request.scope.get('root_path', '')}"
        page = get_redoc_html(
            openapi_url=f"{root}{_OPENAPI_URL}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{_DOCS_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{_DOCS_ASSETS}/favicon.png",
            with_google_fonts=False,
        )
        page.headers["Content-Security-Policy"] = _DOCS_CSP
        return page
