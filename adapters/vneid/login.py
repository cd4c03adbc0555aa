"""Logins through the hub (``mode: login`` routes): VNeID for the one-stop systems, one signed assertion back.

The one-stop system never talks to VNeID. It sends the citizen's browser to the hub; the hub runs
the OpenID Connect flow (authorization code + PKCE) with the provider the route names, checks the
level of assurance the route requires, and sends the browser back with a one-time code. The
one-stop system's server redeems the code (with its system key) for a short-lived **identity
assertion**: a JWT signed by the hub (RS256), verifiable with the hub's JWKS. See docs/identity.md.

Endpoints:

* ``GET  /v1/identity/login/{route}?system=S&return_to=URL&state=X`` (browser) → 302 to the provider;
* ``GET  /v1/identity/callback`` (browser, the redirect URI registered at the provider) → 302 to
  ``return_to?code=…&state=X`` or ``return_to?error=…&error_description=…&state=X``;
* ``POST /v1/identity/assertions`` ``{"code": "…"}`` (system key) → ``{"assertion", "expires_in", "identity"}``;
* ``GET  /v1/identity/jwks.json`` the hub's public signing keys.

Logins in progress live in the database (``login_sessions``, :mod:`adapters.vneid.sessions`), so any
ingress process may answer any step. Each login is bound to the browser that started it by a cookie.
"""

from __future__ import annotations

import html
import math
import secrets
import time
import urllib.parse
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
import structlog
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field, ValidationError

from adapters.vneid.assertions import AssertionSigner
from adapters.vneid.sessions import LOGIN_LIFETIME, LoginSessions, sha256_hex
from adapters.vneid.tables import LoginSessionRow
from hub.plugin import (
    SYSTEM_KEY,
    AuditRecord,
    BodyTooLargeError,
    ConfigurationError,
    DeliveryError,
    Extension,
    HubContext,
    HubError,
    IdentityProvider,
    LoginRequest,
    Problem,
    RateLimiter,
    Route,
    StoreUnavailableError,
    SystemSpec,
    TransientDeliveryError,
    as_utc,
    control_characters,
    problem_responses,
    read_body,
)

__all__ = ["ASSERTION_TYPE", "CALLBACK_PATH", "create_login_extension", "return_allowed"]

log = structlog.get_logger(__name__)

CALLBACK_PATH = "/v1/identity/callback"
ASSERTION_TYPE = "urn:lgsp:params:token-type:identity-assertion"
_COOKIE_PREFIX = "lgsp_login_"
#: Logins one client address may start: each stores a row, and anyone may ask (a commune's office behind one
#: address starts a few a minute); beyond, 429.
LOGINS_PER_ADDRESS_RATE = 1.0
LOGINS_PER_ADDRESS_BURST = 20
#: Logins in progress (10 minutes each at most) the database holds; beyond, a new one is answered 503.
MAX_LOGINS_IN_PROGRESS = 10_000
#: ``POST /v1/identity/assertions`` carries ``{"code": "…"}``.
MAX_ASSERTION_REQUEST_BYTES = 4096


#: A page for the browser; JSON (``{"detail": …}``) when the hub refuses the request before the login code runs
#: (a control character in the address).
_PAGE_OR_PROBLEM = {
    "text/html": {"schema": {"type": "string"}},
    "application/json": {"schema": Problem.model_json_schema()},
}
#: The browser endpoints answer with a redirect, or with a page that says why the login cannot go on.
_BROWSER_ANSWERS: dict[int | str, dict[str, Any]] = {
    302: {"description": "On to the next step of the login (the Location header)."},
    **{
        status: {"description": meaning, "content": _PAGE_OR_PROBLEM}
        for status, meaning in [
            (400, "A parameter is missing or wrong, or the login is unknown, expired or finished."),
            (403, "The system may not use this login route."),
            (404, "There is no such login route."),
            (429, "Too many logins right now (Retry-After)."),
            (503, "The provider or the store cannot be reached; try again (Retry-After)."),
        ]
    },
}


def _query(*names: str) -> list[dict[str, Any]]:
    return [{"name": name, "in": "query", "required": False, "schema": {"type": "string"}} for name in names]


class AssertionAnswer(BaseModel):
    assertion: str = Field(description="A JWT signed by the hub (RS256); its keys are at /v1/identity/jwks.json.")
    token_type: str
    expires_in: int = Field(description="Seconds the assertion is valid.")
    identity: dict[str, Any] = Field(description="The verified identity (schema identity.login/v1).")


class _AssertionProblem(Problem):
    error: str | None = Field(default=None, description="invalid_grant: the code cannot be redeemed.")


def return_allowed(return_to: str, route: Route) -> bool:
    """``return_to`` is under one of the route's return URLs (same scheme and host, path prefix)."""
    if route.login is None:
        return False
    target = urllib.parse.urlsplit(return_to)
    if target.scheme not in ("http", "https") or not target.netloc or target.username or target.password:
        return False
    for allowed in route.login.return_urls:
        base = urllib.parse.urlsplit(allowed)
        if (target.scheme, target.netloc.lower()) != (base.scheme, base.netloc.lower()):
            continue
        prefix = (base.path or "/").rstrip("/")
        if target.path in (prefix, prefix + "/") or target.path.startswith(prefix + "/"):
            return True
    return False


def _with_query(url: str, params: dict[str, str | None]) -> str:
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query) + [(k, v) for k, v in params.items() if v is not None]
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def _page(status: int, sentence: str, *, retry_after: float | None = None) -> HTMLResponse:
    headers = {"Retry-After": str(max(1, round(retry_after)))} if retry_after is not None else None
    return HTMLResponse(
        '<!doctype html><html lang="vi"><head><meta charset="utf-8"><title>Đăng nhập / Login</title></head>'
        f"<body><h1>Không đăng nhập được / The login cannot continue</h1><p>{html.escape(sentence)}</p></body></html>",
        status_code=status,
        headers=headers,
    )


def _problem(status: int, detail: str, *, retry_after: float | None = None, **extra: Any) -> JSONResponse:
    """A JSON error answer for a system's server (``{"detail": …}``, as the hub's other endpoints answer)."""
    headers = {"Retry-After": str(max(1, math.ceil(retry_after)))} if retry_after is not None else None
    return JSONResponse({"detail": detail, **extra}, status_code=status, headers=headers)


def _calling_system(context: HubContext, request: Request) -> SystemSpec | JSONResponse:
    """The system whose key the request carries, or the 401/403 answer."""
    try:
        system = context.identify(request.headers.get("authorization"))
    except HubError as exc:
        return _problem(401, str(exc))
    if system is None:
        return _problem(403, "The admin key cannot send requests; use the calling system's key.")
    return system


def _identity_providers(context: HubContext, login_routes: Mapping[str, Route]) -> dict[str, IdentityProvider]:
    providers: dict[str, IdentityProvider] = {}
    for route in login_routes.values():
        target = route.targets[0]
        if target not in providers:
            provider = context.adapter(target)
            if not isinstance(provider, IdentityProvider):
                raise ConfigurationError(
                    f"Login route '{route.name}' sends to target '{target}', whose adapter cannot log people in; "
                    "use an identity provider adapter such as vneid."
                )
            providers[target] = provider
    return providers


def create_login_extension(context: HubContext) -> Extension | None:
    """The ``/v1/identity`` endpoints of the ingress; None when the route files have no ``mode: login`` route."""
    login_routes = dict(context.routes_of_mode("login"))
    if not login_routes:
        return None
    if not context.settings.identity_public_url and not context.settings.demo:
        raise ConfigurationError(
            f"The route files have login routes ({', '.join(sorted(login_routes))}) but HUB_IDENTITY_PUBLIC_URL is "
            "not set: the redirect to VNeID and the issuer of identity assertions would follow the Host header a "
            "browser sends. Set HUB_IDENTITY_PUBLIC_URL to the hub's external address (https://lgsp.example.vn, "
            "whose /v1/identity/callback is registered at VNeID), or remove the login routes."
        )
    providers = _identity_providers(context, login_routes)
    router = _create_router(context, login_routes, providers)

    async def aclose() -> None:
        for provider in providers.values():
            await provider.aclose()

    return Extension(routers=[router], aclose=aclose)


def _create_router(
    context: HubContext, login_routes: Mapping[str, Route], providers: Mapping[str, IdentityProvider]
) -> APIRouter:
    settings = context.settings
    signer = AssertionSigner.from_settings(settings)
    limiter = RateLimiter()
    logins = LoginSessions(context.engine)
    router = APIRouter(tags=["identity"])

    def public_url(request: Request) -> str:
        return (settings.identity_public_url or str(request.base_url)).rstrip("/")

    async def write_audit(
        route: Route, system: str, login_id: str, outcome: str, subject: str | None, detail: str | None
    ) -> None:
        try:
            await context.audit(
                AuditRecord(
                    kind=route.type, route=route.name, system=system, outcome=outcome, request_id=login_id[:36],
                    subject=subject, detail=detail,
                )
            )  # fmt: skip
        except StoreUnavailableError:
            log.exception("audit_write_failed", outcome=outcome)

    @router.get(
        "/v1/identity/login/{route_name}",
        status_code=302,
        response_class=Response,
        responses=_BROWSER_ANSWERS,
        openapi_extra={"parameters": _query("system", "return_to", "state")},
    )
    async def start_login(route_name: str, request: Request) -> Response:
        route = login_routes.get(route_name)
        if route is None or route.login is None:
            return _page(404, f"There is no login route '{route_name}'; check the link of the one-stop system.")
        params = request.query_params
        system_id, return_to, client_state = params.get("system", ""), params.get("return_to", ""), params.get("state")
        system = context.system(system_id)
        if system is None or (route.sources is not None and system_id not in route.sources):
            return _page(403, f"System '{system_id}' may not use login route '{route_name}'.")
        if route.type not in system.allowed_types:
            return _page(403, f"System '{system_id}' may not use '{route.type}'; ask the hub's operators to allow it.")
        if not return_to or not return_allowed(return_to, route):
            return _page(
                400,
                f"The return address is not one the hub may send you back to for '{route_name}'. The hub's "
                "operators must add it to the route's login.return_urls.",
            )
        if client_state is not None and len(client_state) > 500:
            return _page(400, "The state parameter is longer than 500 characters.")
        address = request.client.host if request.client else "-"
        wait = limiter.try_acquire(route, system_id)
        if wait is None:
            wait = limiter.try_take(address, rate=LOGINS_PER_ADDRESS_RATE, burst=LOGINS_PER_ADDRESS_BURST)
        if wait is not None:
            return _page(429, f"Too many logins right now; try again in {max(1, round(wait))} s.", retry_after=wait)
        login = LoginRequest(
            state=secrets.token_urlsafe(32),
            nonce=secrets.token_urlsafe(24),
            code_verifier=secrets.token_urlsafe(48),
            redirect_uri=public_url(request) + CALLBACK_PATH,
        )
        provider = providers[route.targets[0]]
        try:
            authorize = await provider.authorization_url(login)
        except DeliveryError as exc:
            log.warning("login_provider_unavailable", route=route.name, reason=exc.reason)
            return _page(503, f"{exc.reason} Try again in a moment.", retry_after=30)
        browser_secret = secrets.token_urlsafe(24)
        now = datetime.now(UTC)
        try:
            started = await logins.start(
                LoginSessionRow(
                    id=login.state, route=route.name, system=system_id, return_to=return_to,
                    client_state=client_state, browser_hash=sha256_hex(browser_secret), nonce=login.nonce,
                    code_verifier=login.code_verifier, created_at=now, expires_at=now + LOGIN_LIFETIME,
                ),
                at_most=MAX_LOGINS_IN_PROGRESS,
            )  # fmt: skip
        except StoreUnavailableError as exc:
            return _page(503, f"{exc} Try again in a moment.", retry_after=30)
        if not started:
            log.warning("logins_full", route=route.name, at_most=MAX_LOGINS_IN_PROGRESS)
            return _page(503, "Too many logins are in progress right now; try again in a minute.", retry_after=60)
        response = RedirectResponse(authorize, status_code=302)
        response.set_cookie(
            _COOKIE_PREFIX + sha256_hex(login.state)[:16], browser_secret,
            max_age=int(LOGIN_LIFETIME.total_seconds()), path="/v1/identity", httponly=True, samesite="lax",
            secure=settings.identity_secure_cookie,
        )  # fmt: skip
        log.info("login_started", route=route.name, system=system_id)
        return response

    @router.get(
        CALLBACK_PATH,
        status_code=302,
        response_class=Response,
        responses=_BROWSER_ANSWERS,
        openapi_extra={"parameters": _query("state", "code", "error")},
    )
    async def callback(request: Request) -> Response:
        params = request.query_params
        login_id = params.get("state", "")
        try:
            row = await logins.get(login_id) if login_id else None
        except StoreUnavailableError as exc:
            return _page(503, f"{exc} Start the login again in a moment.", retry_after=30)
        if row is None or as_utc(row.expires_at) < datetime.now(UTC):
            return _page(400, "This login is unknown or expired (a login must finish within 10 minutes); start again.")
        if row.completed_at is not None:
            return _page(400, "This login has already finished; start again from the one-stop system.")
        cookie_name = _COOKIE_PREFIX + sha256_hex(login_id)[:16]
        cookie = request.cookies.get(cookie_name, "")
        if not secrets.compare_digest(sha256_hex(cookie), row.browser_hash):
            return _page(
                400, "This login was started in another browser (or cookies are blocked); start it again here."
            )
        route = login_routes.get(row.route)
        if route is None or route.login is None:
            return _page(400, f"Login route '{row.route}' no longer exists; start again.")

        async def back(
            outcome: str, query: dict[str, str | None], *, subject: str | None = None, detail: str | None = None
        ) -> Response:
            await write_audit(route, row.system, login_id, outcome, subject, detail)
            response = RedirectResponse(
                _with_query(row.return_to, {**query, "state": row.client_state}), status_code=302
            )
            response.delete_cookie(cookie_name, path="/v1/identity")
            log.info("login_finished", route=route.name, system=row.system, outcome=outcome)
            return response

        if params.get("error"):
            await logins.finish(login_id, code_hash=None, identity=None)
            error = params["error"] if params["error"] in ("access_denied", "login_required") else "login_failed"
            return await back(
                "cancelled", {"error": error, "error_description": "The login was cancelled at the provider."}
            )
        code = params.get("code")
        if not code:
            return _page(400, "The provider sent neither a code nor an error; start the login again.")
        login = LoginRequest(
            state=login_id, nonce=row.nonce, code_verifier=row.code_verifier,
            redirect_uri=public_url(request) + CALLBACK_PATH,
        )  # fmt: skip
        provider = providers[route.targets[0]]
        started = time.perf_counter()
        try:
            claims = await provider.complete(code, login)
            identity = context.schemas[route.schema_name].model_validate(claims).model_dump(mode="json")
        except DeliveryError as exc:
            await logins.finish(login_id, code_hash=None, identity=None)
            kind = "temporarily_unavailable" if isinstance(exc, TransientDeliveryError) else "login_failed"
            return await back("failed", {"error": kind, "error_description": exc.reason}, detail=exc.reason)
        except ValidationError as exc:
            await logins.finish(login_id, code_hash=None, identity=None)
            detail = (
                f"The provider's identity does not match schema {route.schema_name} ({exc.error_count()} problem(s))."
            )
            return await back("failed", {"error": "login_failed", "error_description": detail}, detail=detail)
        subject = str(identity.get("SoDinhDanh") or "") or None
        loa = int(identity.get("loa") or 0)
        if route.login.min_loa is not None and loa < route.login.min_loa:
            await logins.finish(login_id, code_hash=None, identity=None)
            detail = (
                f"This service requires a level {route.login.min_loa} electronic identity account; the account "
                f"used is level {loa}. Raise the account's level in the VNeID app, then log in again."
            )
            return await back(
                "refused_loa",
                {"error": "insufficient_loa", "error_description": detail},
                subject=subject,
                detail=detail,
            )
        one_time_code = secrets.token_urlsafe(32)
        if not await logins.finish(login_id, code_hash=sha256_hex(one_time_code), identity=identity):
            return _page(400, "This login has already finished; start again from the one-stop system.")
        log.info("login_verified", seconds=round(time.perf_counter() - started, 3), loa=loa)
        return await back("ok", {"code": one_time_code}, subject=subject)

    @router.post(
        "/v1/identity/assertions",
        response_model=AssertionAnswer,
        responses=problem_responses(400, 401, 403, 413, 422, 429, 503, model=_AssertionProblem),
        openapi_extra={
            **SYSTEM_KEY,
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {"code": {"type": "string", "minLength": 1}},
                            "required": ["code"],
                        }
                    }
                },
            },
        },
    )
    async def assertion(request: Request) -> Response:
        system = _calling_system(context, request)
        if isinstance(system, JSONResponse):
            return system
        try:
            body = orjson.loads(await read_body(request, MAX_ASSERTION_REQUEST_BYTES))
        except BodyTooLargeError as exc:
            return _problem(413, str(exc))
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("code"), str) or not body["code"]:
            return _problem(422, 'Send {"code": "<the code the browser brought back>"} as JSON.')
        if control := control_characters(body):
            return _problem(422, " ".join(control))
        try:
            redeemed = await logins.redeem(body["code"], system.id)
        except StoreUnavailableError as exc:
            return _problem(503, f"{exc} Redeem the code again in a moment.", retry_after=5)
        if redeemed is None:
            return _problem(
                400,
                "The code is unknown, was already used, has expired (codes live 2 minutes) or belongs to another "
                "system. Start the login again.",
                error="invalid_grant",
            )
        row, identity = redeemed
        route = login_routes.get(row.route)
        ttl = route.login.assertion_ttl if route is not None and route.login is not None else 120.0
        now = int(time.time())
        claims = {
            "iss": public_url(request),
            "aud": system.id,
            "sub": identity["SoDinhDanh"],
            "iat": now,
            "nbf": now,
            "exp": now + int(ttl),
            "jti": sha256_hex(row.id)[:32],
            "auth_time": int(as_utc(row.completed_at or row.created_at).timestamp()),
            "route": row.route,
            "idp": identity.get("provider"),
            "idp_sub": identity.get("sub"),
            "HoVaTen": identity.get("HoVaTen"),
            "SoDinhDanh": identity.get("SoDinhDanh"),
            "NgayThangNamSinh": identity.get("NgayThangNamSinh"),
            "LoaiTaiKhoan": identity.get("LoaiTaiKhoan"),
            "loa": identity.get("loa"),
        }
        return JSONResponse(
            {
                "assertion": signer.sign(claims),
                "token_type": ASSERTION_TYPE,
                "expires_in": int(ttl),
                "identity": identity,
            },
            headers={"Cache-Control": "no-store"},
        )

    @router.get(
        "/v1/identity/jwks.json",
        responses={200: {"content": {"application/json": {"schema": {"type": "object", "required": ["keys"]}}}}},
    )
    async def jwks() -> JSONResponse:
        return JSONResponse(signer.jwks(), headers={"Cache-Control": "public, max-age=300"})

    return router
