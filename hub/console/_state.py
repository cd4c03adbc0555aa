"""What the console's endpoints get through FastAPI dependencies: its state, the page, who is logged in.

One :class:`ConsoleState` per app, made from the hub when the console is included
(:func:`hub.console.include_console`) and kept on ``app.state.console``.
"""

# No `from __future__ import annotations` here: FastAPI reads the `Annotated[..., Depends(...)]` aliases at run time.

import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any, cast
from urllib.parse import quote, urlencode

import structlog
from fastapi import Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from hub.bootstrap import Hub
from hub.console._auth import LocalAccounts, LoginThrottle, Role, Session, SessionCodec
from hub.console._i18n import DEFAULT_LANGUAGE, LANGUAGES, Translator, status_name, translator
from hub.console._oidc import OidcProvider
from hub.console._sessions import ConsoleSessions
from hub.errors import ConfigurationError, HubError, StoreUnavailableError
from hub.observability import mask_text
from hub.settings import HubSettings

__all__ = [
    "LOGIN_FORM_COOKIE",
    "PREFIX",
    "SESSION_COOKIE",
    "ConsoleHub",
    "ConsoleState",
    "CurrentConsole",
    "CurrentSession",
    "Page",
    "PublicPage",
    "Viewer",
    "guarded",
    "safe_next",
]

log = structlog.get_logger(__name__)

PREFIX = "/console"
SESSION_COOKIE = "hub_console"
#: Holds the token of the login form (signed), which the form sends back: a login cannot be posted from
#: another site (login CSRF).
LOGIN_FORM_COOKIE = "hub_console_login"
LANG_COOKIE = "hub_console_lang"
_VIETNAM = timezone(timedelta(hours=7), "ICT")  # Asia/Ho_Chi_Minh has no summer time
_TEMPLATES = Path(__file__).parent / "templates"
#: Only the console's own scripts and styles; no inline script, no framing, forms post to the console only.
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)


@dataclass(frozen=True, slots=True)
class ConsoleState:
    """The console of one hub: its accounts, logins, cookie signers, login throttle, OIDC provider and templates."""

    hub: Hub
    accounts: LocalAccounts
    logins: ConsoleSessions  # who is logged in (server side)
    sessions: SessionCodec  # the session cookie: a login's random id, signed
    login_forms: SessionCodec  # the login form's token
    oidc_flows: SessionCodec  # the short-lived cookie between /oidc/start and /oidc/callback
    throttle: LoginThrottle
    oidc: OidcProvider | None
    templates: Environment

    @property
    def settings(self) -> HubSettings:
        return self.hub.settings

    @classmethod
    def from_hub(cls, hub: Hub) -> "ConsoleState":
        settings = hub.settings
        accounts = LocalAccounts.from_settings(settings)
        if settings.console_secret_key is not None and settings.console_secret_key.get_secret_value():
            secret = settings.console_secret_key.get_secret_value().encode()
        else:
            secret = secrets.token_bytes(32)
            log.warning(
                "console_secret_key_generated",
                detail="HUB_CONSOLE_SECRET_KEY is not set; console logins are signed with a random key of this "
                "process, so they end when it restarts and are not shared with other ingress processes.",
            )
        oidc: OidcProvider | None = None
        if settings.console_oidc_issuer and settings.console_oidc_client_id:
            if not settings.console_public_url and not settings.demo:
                raise ConfigurationError(
                    "HUB_CONSOLE_OIDC_ISSUER is set but HUB_CONSOLE_PUBLIC_URL is not: the console's login redirect "
                    "would be built from the Host header a visitor sends. Set HUB_CONSOLE_PUBLIC_URL to the address "
                    "officials open (https://hub.example.vn), the one whose /console/oidc/callback is registered "
                    "at the provider."
                )
            client_secret = settings.console_oidc_client_secret
            oidc = OidcProvider(
                settings.console_oidc_issuer,
                settings.console_oidc_client_id,
                client_secret.get_secret_value() if client_secret else None,
                scopes=settings.console_oidc_scopes,
            )
        if not accounts and oidc is None:
            log.warning(
                "console_without_accounts",
                detail="Nobody can log in to the console: set HUB_CONSOLE_ADMIN_PASSWORD (see `hub console "
                "hash-password`) or HUB_CONSOLE_OIDC_ISSUER.",
            )
        return cls(
            hub=hub,
            accounts=accounts,
            logins=ConsoleSessions(hub.store.engine, lifetime_seconds=settings.console_session_hours * 3600),
            sessions=SessionCodec(secret, max_age_seconds=int(settings.console_session_hours * 3600)),
            login_forms=SessionCodec(secret, max_age_seconds=3600, purpose="hub-console-login-form"),
            oidc_flows=SessionCodec(secret, max_age_seconds=600, purpose="hub-console-oidc"),
            throttle=LoginThrottle(),
            oidc=oidc,
            templates=Environment(
                loader=FileSystemLoader(_TEMPLATES),
                autoescape=select_autoescape(["html"]),
                trim_blocks=True,
                lstrip_blocks=True,
            ),
        )

    async def start_session(self, next_url: str | None, user: str, role: Role, method: str) -> Response:
        """Log ``user`` in: a row of the logins, its signed cookie and a redirect to where they were going."""
        token, _ = await self.logins.open(user, role, method)
        response = RedirectResponse(safe_next(next_url), status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            self.sessions.dumps({"s": token}),
            max_age=int(self.sessions.max_age_seconds),
            path=PREFIX,
            httponly=True,
            samesite="lax",
            secure=self.settings.console_secure_cookie,
        )
        self.hub.metrics.console_logins.labels(method, "ok").inc()
        log.info("console_login", user=user, role=role.value, method=method)
        return response


@dataclass
class Page:
    """What every template receives: who is logged in, the language, and formatting helpers."""

    request: Request
    session: Session | None
    lang: str
    t: Translator
    templates: Environment
    notice: str | None = None

    @property
    def may_change(self) -> bool:
        return self.session is not None and self.session.role.may_change

    def render(self, template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
        html = self.templates.get_template(template).render(page=self, t=self.t, **values)
        response = HTMLResponse(html, status_code=status_code)
        if self.request.query_params.get("lang") == self.lang:
            response.set_cookie(LANG_COOKIE, self.lang, max_age=365 * 86400, path=PREFIX, samesite="lax")
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Content-Security-Policy"] = _CSP
        return response

    def url(self, path: str, **query: Any) -> str:
        """A console URL keeping nothing but the given query parameters (None values dropped)."""
        params = {k: v for k, v in query.items() if v not in (None, "")}
        return f"{PREFIX}{path}" + (f"?{urlencode(params)}" if params else "")

    def other_language_url(self) -> str:
        other = "en" if self.lang == "vi" else "vi"
        params = dict(self.request.query_params)
        params["lang"] = other
        return f"{self.request.url.path}?{urlencode(params)}"

    def time(self, value: datetime | None) -> str:
        return value.astimezone(_VIETNAM).strftime("%d/%m/%Y %H:%M:%S") if value else self.t("never")

    def age(self, seconds: float | None) -> str:
        if seconds is None:
            return "–"
        seconds = max(0.0, seconds)
        for limit, unit, key in ((60, 1, "seconds_short"), (3600, 60, "minutes_short"), (86400, 3600, "hours_short")):
            if seconds < limit:
                return f"{int(seconds // unit)} {self.t(key)}"
        return f"{int(seconds // 86400)} {self.t('days_short')}"

    def since(self, value: datetime | None) -> str:
        if value is None:
            return self.t("never")
        return f"{self.age((datetime.now(value.tzinfo) - value).total_seconds())} {self.t('ago')}"

    def status(self, payload: dict[str, Any]) -> str:
        value = payload.get("TrangThaiHoSo", payload.get("TrangThai"))
        return "–" if value is None else status_name(value, self.lang)

    def state(self, state: str) -> str:
        return self.t(f"state_{state}")

    def event(self, kind: str) -> str:
        return self.t(f"event_{kind}")

    @staticmethod
    def masked(text: str | None) -> str:
        return mask_text(text) if text else ""

    @staticmethod
    def percent(value: float | None) -> str:
        return "–" if value is None else f"{value:.0%}"


def safe_next(value: str | None) -> str:
    """Only console paths are followed after login (never another site)."""
    if value and value.startswith(PREFIX) and not value.startswith("//") and "\\" not in value:
        return value
    return PREFIX


# ---------------------------------------------------------------------- dependencies


def current_console(request: Request) -> ConsoleState:
    """The console of the app serving this request (set by :func:`hub.console.include_console`)."""
    return cast(ConsoleState, request.app.state.console)


CurrentConsole = Annotated[ConsoleState, Depends(current_console)]


def console_hub(console: CurrentConsole) -> Hub:
    """The hub the console looks at and changes (its store, routes, metrics)."""
    return console.hub


ConsoleHub = Annotated[Hub, Depends(console_hub)]


async def current_session(request: Request, console: CurrentConsole) -> Session | None:
    """Who is logged in: the login whose id the session cookie carries; None without a valid cookie (missing,
    altered, expired, not ASCII) or when that login ended (logged out, expired)."""
    data = console.sessions.loads(request.cookies.get(SESSION_COOKIE))
    token = data.get("s") if data else None
    if not isinstance(token, str) or not token:
        return None
    try:
        return await console.logins.find(token)
    except StoreUnavailableError as exc:
        raise HTTPException(503, str(exc)) from exc


CurrentSession = Annotated[Session | None, Depends(current_session)]


def _page(request: Request, console: ConsoleState, session: Session | None) -> Page:
    """The page context; ``?done=replayed&n=3`` / ``?done=discarded`` (set after an action) adds a notice."""
    wanted = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE) or DEFAULT_LANGUAGE
    lang = wanted if wanted in LANGUAGES else DEFAULT_LANGUAGE
    t = translator(lang)
    done, count = request.query_params.get("done"), request.query_params.get("n", "0")
    notice = None
    if done == "replayed":
        notice = t("replayed_n").format(n=int(count) if count.isdigit() else 0)
    elif done == "discarded":
        notice = t("discarded")
    return Page(request, session, lang, t, console.templates, notice=notice)


def public_page(request: Request, console: CurrentConsole) -> Page:
    """The page of someone not (yet) logged in: the login page and its errors."""
    return _page(request, console, None)


PublicPage = Annotated[Page, Depends(public_page)]


def viewer(request: Request, console: CurrentConsole, session: CurrentSession) -> Page:
    """A logged-in official's page, or a redirect to the login page (HX-Redirect for htmx)."""
    if session is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        login = f"{PREFIX}/login?next={quote(target, safe='')}"
        if request.query_params.get("lang") in LANGUAGES:
            login += f"&lang={request.query_params['lang']}"
        if request.headers.get("hx-request"):
            raise HTTPException(401, "Log in again.", headers={"HX-Redirect": login})
        raise HTTPException(303, "Log in first.", headers={"Location": login})
    return _page(request, console, session)


Viewer = Annotated[Page, Depends(viewer)]


async def guarded(page: Page, csrf: str, action: Callable[[Session], Awaitable[Response]]) -> Response:
    """Run a change for an operator whose form carries the session's CSRF token; refuse anyone else."""
    session = page.session
    if session is None or not session.role.may_change:
        role = page.t(f"role_{session.role.value}") if session else "-"
        sentence = page.t("forbidden").format(user=session.user if session else "-", role=role)
        log.warning("console_change_refused", user=session.user if session else None, path=page.request.url.path)
        return page.render("error.html", status_code=403, sentence=sentence)
    if not csrf or not hmac.compare_digest(csrf.encode(), session.csrf.encode()):
        return page.render("error.html", status_code=400, sentence=page.t("csrf_failed"))
    try:
        return await action(session)
    except HubError as exc:
        log.warning("console_action_failed", error=str(exc))
        return page.render("error.html", status_code=503, sentence=str(exc))
