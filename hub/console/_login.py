"""Logging in to the console and out: local accounts (throttled) and an OIDC provider."""

# No `from __future__ import annotations` here: FastAPI reads the endpoints' annotations at run time.

import hmac
import secrets
from typing import Annotated

import httpx
import structlog
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from hub.console._auth import Role
from hub.console._oidc import OidcLoginError, PkceChallenge
from hub.console._state import (
    LOGIN_FORM_COOKIE,
    PREFIX,
    SESSION_COOKIE,
    ConsoleState,
    CurrentConsole,
    CurrentSession,
    Page,
    PublicPage,
    safe_next,
)
from hub.errors import StoreUnavailableError

__all__ = ["router"]

log = structlog.get_logger(__name__)

OIDC_COOKIE = "hub_console_oidc"

#: Included by the console's router, which puts it under ``/console``.
router = APIRouter(include_in_schema=False)


def _form_token(console: ConsoleState, request: Request) -> str | None:
    """The login form's token this browser holds (in its signed cookie), if any."""
    data = console.login_forms.loads(request.cookies.get(LOGIN_FORM_COOKIE))
    token = data.get("t") if data else None
    return token if isinstance(token, str) and token else None


def _login_page(console: ConsoleState, page: Page, status_code: int = 200, error: str | None = None) -> HTMLResponse:
    """The login page; its form carries a token that must come back with the browser's cookie of it."""
    token = _form_token(console, page.request) or secrets.token_urlsafe(24)
    response = page.render(
        "login.html",
        status_code=status_code,
        error=error,
        csrf=token,
        has_accounts=bool(console.accounts),
        oidc_label=console.settings.console_oidc_label if console.oidc else None,
        next=safe_next(page.request.query_params.get("next")),
    )
    response.set_cookie(
        LOGIN_FORM_COOKIE,
        console.login_forms.dumps({"t": token}),
        max_age=int(console.login_forms.max_age_seconds),
        path=PREFIX,
        httponly=True,
        samesite="lax",
        secure=console.settings.console_secure_cookie,
    )
    return response


def _same(sent: str, expected: str | None) -> bool:
    return bool(sent) and expected is not None and hmac.compare_digest(sent.encode(), expected.encode())


@router.get("/login")
async def login_form(console: CurrentConsole, page: PublicPage, session: CurrentSession) -> Response:
    if session is not None:
        return RedirectResponse(safe_next(page.request.query_params.get("next")), status_code=303)
    return _login_page(console, page)


@router.post("/login")
async def login(
    request: Request,
    console: CurrentConsole,
    page: PublicPage,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    metrics = console.hub.metrics
    address = request.client.host if request.client else "-"
    if not _same(csrf, _form_token(console, request)):
        metrics.console_logins.labels("local", "refused").inc()
        log.warning("console_login_form_refused", address=address)
        return _login_page(console, page, 400, page.t("csrf_failed"))
    username = username.strip()
    wait = console.throttle.wait_seconds(username, address)
    if wait > 0:
        metrics.console_logins.labels("local", "throttled").inc()
        return _login_page(console, page, 429, page.t("login_throttled").format(seconds=int(wait) + 1))
    account = console.accounts.authenticate(username, password)
    if account is None:
        console.throttle.failed(username, address)
        metrics.console_logins.labels("local", "refused").inc()
        log.warning("console_login_refused", user=username, address=address)
        return _login_page(console, page, 401, page.t("login_failed"))
    console.throttle.succeeded(username, address)
    response = await _log_in(console, page, request.query_params.get("next"), account.name, account.role, "local")
    response.delete_cookie(LOGIN_FORM_COOKIE, path=PREFIX)
    return response


async def _log_in(
    console: ConsoleState, page: Page, next_url: str | None, user: str, role: Role, method: str
) -> Response:
    try:
        return await console.start_session(next_url, user, role, method)
    except StoreUnavailableError as exc:
        log.error("console_login_not_recorded", user=user, error=str(exc))  # noqa: TRY400 - a sentence, no trace
        return _login_page(console, page, 503, str(exc))


@router.post("/logout")
async def logout(
    console: CurrentConsole, page: PublicPage, session: CurrentSession, csrf: Annotated[str, Form()] = ""
) -> Response:
    """End the login on the server (a copy of the cookie is no good afterwards) and drop the cookie."""
    if session is not None:
        if not _same(csrf, session.csrf):
            return page.render("error.html", status_code=400, sentence=page.t("csrf_failed"))
        try:
            await console.logins.end(session)
        except StoreUnavailableError as exc:
            return page.render("error.html", status_code=503, sentence=str(exc))
        log.info("console_logout", user=session.user)
    response = RedirectResponse(f"{PREFIX}/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path=PREFIX)
    return response


def _redirect_uri(console: ConsoleState, request: Request) -> str:
    """Where the provider sends the browser back: under HUB_CONSOLE_PUBLIC_URL (the request's address only
    in the demo; the console refuses to start with OIDC and without it otherwise)."""
    public_url = console.settings.console_public_url
    base = public_url.rstrip("/") if public_url else str(request.base_url)
    return f"{base.rstrip('/')}{PREFIX}/oidc/callback"


@router.get("/oidc/start")
async def oidc_start(request: Request, console: CurrentConsole, page: PublicPage) -> Response:
    oidc = console.oidc
    if oidc is None:
        return _login_page(console, page, 404, "OIDC login is not configured (HUB_CONSOLE_OIDC_ISSUER).")
    pkce = PkceChallenge.create()
    try:
        async with httpx.AsyncClient(timeout=oidc.timeout) as client:
            url = await oidc.authorization_url(client, _redirect_uri(console, request), pkce)
    except OidcLoginError as exc:
        return _login_page(console, page, 502, str(exc))
    response = RedirectResponse(url, status_code=303)
    flow = {"s": pkce.state, "n": pkce.nonce, "v": pkce.verifier, "next": request.query_params.get("next")}
    response.set_cookie(
        OIDC_COOKIE,
        console.oidc_flows.dumps(flow),
        max_age=int(console.oidc_flows.max_age_seconds),
        path=PREFIX,
        httponly=True,
        samesite="lax",
        secure=console.settings.console_secure_cookie,
    )
    return response


@router.get("/oidc/callback")
async def oidc_callback(
    request: Request, console: CurrentConsole, page: PublicPage, code: str = "", state: str = "", error: str = ""
) -> Response:
    oidc, settings, metrics = console.oidc, console.settings, console.hub.metrics
    flow = console.oidc_flows.loads(request.cookies.get(OIDC_COOKIE))
    if (
        oidc is None
        or flow is None
        or not state
        or not hmac.compare_digest(str(flow.get("s")).encode(), state.encode())
    ):
        return _login_page(console, page, 400, "This login is unknown or older than 10 minutes; start it again.")
    if error or not code:
        return _login_page(console, page, 401, f"The login provider did not log you in ({error or 'no code'}).")
    pkce = PkceChallenge(str(flow["s"]), str(flow["n"]), str(flow["v"]))
    try:
        async with httpx.AsyncClient(timeout=oidc.timeout) as client:
            claims = await oidc.login(client, code=code, redirect_uri=_redirect_uri(console, request), pkce=pkce)
    except OidcLoginError as exc:
        metrics.console_logins.labels("oidc", "refused").inc()
        log.warning("console_oidc_refused", error=str(exc))
        return _login_page(console, page, 401, str(exc))
    identity = str(claims.get(settings.console_oidc_identity_claim, ""))
    role = settings.console_oidc_roles.get(identity)
    if not identity or role not in {r.value for r in Role}:
        metrics.console_logins.labels("oidc", "refused").inc()
        log.warning("console_oidc_not_allowed", identity=identity)
        return _login_page(
            console,
            page,
            403,
            f"Account {identity or '(no ' + settings.console_oidc_identity_claim + ')'} logged in at the provider "
            "but may not use the console; ask the hub's administrator to add it to HUB_CONSOLE_OIDC_ROLES.",
        )
    response = await _log_in(console, page, str(flow.get("next") or PREFIX), identity, Role(role), "oidc")
    response.delete_cookie(OIDC_COOKIE, path=PREFIX)
    return response
