"""The console's pages and actions (FastAPI router, server-rendered with Jinja2, refreshed by htmx)."""

# No `from __future__ import annotations` here: FastAPI must see the closures in `Depends(...)`.

import hmac
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

import httpx
import orjson
import structlog
from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from hub.bootstrap import Hub
from hub.console._auth import LocalAccounts, LoginThrottle, Role, Session, SessionCodec
from hub.console._i18n import DEFAULT_LANGUAGE, LANGUAGES, Translator, status_name, translator
from hub.console._oidc import OidcLoginError, OidcProvider, PkceChallenge
from hub.console._overview import build_overview
from hub.errors import HubError
from hub.observability import mask_payload, mask_text
from hub.operations import DeadLetterFilter, discard, reason_group, reason_key, replay_matching, replay_message
from hub.store import DeliveryState
from schemas.dossier import DOSSIER_CODE_PATTERN

__all__ = ["create_console_router"]

log = structlog.get_logger(__name__)

SESSION_COOKIE = "hub_console"
OIDC_COOKIE = "hub_console_oidc"
LANG_COOKIE = "hub_console_lang"
PREFIX = "/console"
REFRESH_SECONDS = 5
DEAD_LETTERS_SHOWN = 200
DEAD_LETTERS_SCANNED = 5000
_VIETNAM = timezone(timedelta(hours=7), "ICT")  # Asia/Ho_Chi_Minh has no summer time
_HERE = Path(__file__).parent
_STATIC = {
    "console.css": "text/css; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
    "htmx.min.js": "text/javascript; charset=utf-8",
}
#: Only the console's own scripts and styles; no inline script, no framing, forms post to the console only.
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
_MESSAGE_ID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


@dataclass
class Page:
    """What every template receives: who is logged in, the language, and formatting helpers."""

    request: Request
    session: Session | None
    lang: str
    t: Translator
    notice: str | None = None

    @property
    def may_change(self) -> bool:
        return self.session is not None and self.session.role.may_change

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


def _safe_next(value: str | None) -> str:
    """Only console paths are followed after login (never another site)."""
    if value and value.startswith(PREFIX) and not value.startswith("//") and "\\" not in value:
        return value
    return PREFIX


def create_console_router(hub: Hub) -> APIRouter:
    """The ops console under ``/console`` (mounted by the ingress with one ``include_router``)."""
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
    codec = SessionCodec(secret, max_age_seconds=settings.console_session_hours * 3600)
    oidc_codec = SessionCodec(secret + b"/oidc", max_age_seconds=600)
    throttle = LoginThrottle()
    oidc: OidcProvider | None = None
    if settings.console_oidc_issuer and settings.console_oidc_client_id:
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
            detail="Nobody can log in to the console: set HUB_CONSOLE_ADMIN_PASSWORD (see `hub console hash-password`) "
            "or HUB_CONSOLE_OIDC_ISSUER.",
        )
    templates = Environment(
        loader=FileSystemLoader(_HERE / "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    router = APIRouter(prefix=PREFIX, include_in_schema=False)

    # ------------------------------------------------------------------ plumbing

    def language(request: Request) -> str:
        wanted = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE) or DEFAULT_LANGUAGE
        return wanted if wanted in LANGUAGES else DEFAULT_LANGUAGE

    def render(page: Page, template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
        html = templates.get_template(template).render(page=page, t=page.t, **values)
        response = HTMLResponse(html, status_code=status_code)
        if page.request.query_params.get("lang") == page.lang:
            response.set_cookie(LANG_COOKIE, page.lang, max_age=365 * 86400, path=PREFIX, samesite="lax")
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Content-Security-Policy"] = _CSP
        return response

    def page_for(request: Request, session: Session | None) -> Page:
        """The page context; ``?done=replayed&n=3`` / ``?done=discarded`` (set after an action) adds a notice."""
        lang = language(request)
        t = translator(lang)
        done, count = request.query_params.get("done"), request.query_params.get("n", "0")
        notice = None
        if done == "replayed":
            notice = t("replayed_n").format(n=int(count) if count.isdigit() else 0)
        elif done == "discarded":
            notice = t("discarded")
        return Page(request, session, lang, t, notice=notice)

    def session_of(request: Request) -> Session | None:
        return codec.decode_session(request.cookies.get(SESSION_COOKIE))

    def viewer(request: Request) -> Page:
        """Dependency: a logged-in official, or a redirect to the login page."""
        session = session_of(request)
        if session is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            login = f"{PREFIX}/login?next={quote(target, safe='')}"
            if request.query_params.get("lang") in LANGUAGES:
                login += f"&lang={request.query_params['lang']}"
            if request.headers.get("hx-request"):
                raise HTTPException(401, "Log in again.", headers={"HX-Redirect": login})
            raise HTTPException(303, "Log in first.", headers={"Location": login})
        return page_for(request, session)

    Viewer = Annotated[Page, Depends(viewer)]

    async def guarded(page: Page, csrf: str, action: Callable[[Session], Awaitable[Response]]) -> Response:
        """Run a change for an operator whose form carries the session's CSRF token; refuse anyone else."""
        session = page.session
        if session is None or not session.role.may_change:
            role = page.t(f"role_{session.role.value}") if session else "-"
            sentence = page.t("forbidden").format(user=session.user if session else "-", role=role)
            log.warning("console_change_refused", user=session.user if session else None, path=page.request.url.path)
            return render(page, "error.html", status_code=403, sentence=sentence)
        if not csrf or not hmac.compare_digest(csrf.encode(), session.csrf.encode()):
            return render(page, "error.html", status_code=400, sentence=page.t("csrf_failed"))
        try:
            return await action(session)
        except HubError as exc:
            log.warning("console_action_failed", error=str(exc))
            return render(page, "error.html", status_code=503, sentence=str(exc))

    def start_session(next_url: str | None, user: str, role: Role, method: str) -> Response:
        session = codec.new_session(user, role, method)
        response = RedirectResponse(_safe_next(next_url), status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            codec.encode_session(session),
            max_age=int(codec.max_age_seconds),
            path=PREFIX,
            httponly=True,
            samesite="lax",
            secure=settings.console_secure_cookie,
        )
        hub.metrics.console_logins.labels(method, "ok").inc()
        log.info("console_login", user=user, role=role.value, method=method)
        return response

    # ------------------------------------------------------------------ login

    def login_page(request: Request, status_code: int = 200, error: str | None = None) -> HTMLResponse:
        page = page_for(request, None)
        return render(
            page,
            "login.html",
            status_code=status_code,
            error=error,
            has_accounts=bool(accounts),
            oidc_label=settings.console_oidc_label if oidc else None,
            next=_safe_next(request.query_params.get("next")),
        )

    @router.get("/login")
    async def login_form(request: Request) -> Response:
        if session_of(request) is not None:
            return RedirectResponse(_safe_next(request.query_params.get("next")), status_code=303)
        return login_page(request)

    @router.post("/login")
    async def login(
        request: Request, username: Annotated[str, Form()] = "", password: Annotated[str, Form()] = ""
    ) -> Response:
        page = page_for(request, None)
        address = request.client.host if request.client else "-"
        username = username.strip()
        wait = throttle.wait_seconds(username, address)
        if wait > 0:
            hub.metrics.console_logins.labels("local", "throttled").inc()
            return login_page(request, 429, page.t("login_throttled").format(seconds=int(wait) + 1))
        account = accounts.authenticate(username, password)
        if account is None:
            throttle.failed(username, address)
            hub.metrics.console_logins.labels("local", "refused").inc()
            log.warning("console_login_refused", user=username, address=address)
            return login_page(request, 401, page.t("login_failed"))
        throttle.succeeded(username, address)
        return start_session(request.query_params.get("next"), account.name, account.role, "local")

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        session = session_of(request)
        if session is not None:
            log.info("console_logout", user=session.user)
        response = RedirectResponse(f"{PREFIX}/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path=PREFIX)
        return response

    def redirect_uri(request: Request) -> str:
        base = settings.console_public_url.rstrip("/") if settings.console_public_url else str(request.base_url)
        return f"{base.rstrip('/')}{PREFIX}/oidc/callback"

    @router.get("/oidc/start")
    async def oidc_start(request: Request) -> Response:
        if oidc is None:
            return login_page(request, 404, "OIDC login is not configured (HUB_CONSOLE_OIDC_ISSUER).")
        pkce = PkceChallenge.create()
        try:
            async with httpx.AsyncClient(timeout=oidc.timeout) as client:
                url = await oidc.authorization_url(client, redirect_uri(request), pkce)
        except OidcLoginError as exc:
            return login_page(request, 502, str(exc))
        response = RedirectResponse(url, status_code=303)
        flow = {"s": pkce.state, "n": pkce.nonce, "v": pkce.verifier, "next": request.query_params.get("next")}
        response.set_cookie(
            OIDC_COOKIE,
            oidc_codec.dumps({**flow, "exp": time.time() + 600}),
            max_age=600,
            path=PREFIX,
            httponly=True,
            samesite="lax",
            secure=settings.console_secure_cookie,
        )
        return response

    @router.get("/oidc/callback")
    async def oidc_callback(request: Request, code: str = "", state: str = "", error: str = "") -> Response:
        flow = oidc_codec.loads(request.cookies.get(OIDC_COOKIE))
        if (
            oidc is None
            or flow is None
            or not state
            or not hmac.compare_digest(str(flow.get("s")).encode(), state.encode())
        ):
            return login_page(request, 400, "This login is unknown or older than 10 minutes; start it again.")
        if error or not code:
            return login_page(request, 401, f"The login provider did not log you in ({error or 'no code'}).")
        pkce = PkceChallenge(str(flow["s"]), str(flow["n"]), str(flow["v"]))
        try:
            async with httpx.AsyncClient(timeout=oidc.timeout) as client:
                claims = await oidc.login(client, code=code, redirect_uri=redirect_uri(request), pkce=pkce)
        except OidcLoginError as exc:
            hub.metrics.console_logins.labels("oidc", "refused").inc()
            log.warning("console_oidc_refused", error=str(exc))
            return login_page(request, 401, str(exc))
        identity = str(claims.get(settings.console_oidc_identity_claim, ""))
        role = settings.console_oidc_roles.get(identity)
        if not identity or role not in {r.value for r in Role}:
            hub.metrics.console_logins.labels("oidc", "refused").inc()
            log.warning("console_oidc_not_allowed", identity=identity)
            return login_page(
                request,
                403,
                f"Account {identity or '(no ' + settings.console_oidc_identity_claim + ')'} logged in at the provider "
                "but may not use the console; ask the hub's administrator to add it to HUB_CONSOLE_OIDC_ROLES.",
            )
        response = start_session(str(flow.get("next") or PREFIX), identity, Role(role), "oidc")
        response.delete_cookie(OIDC_COOKIE, path=PREFIX)
        return response

    # ------------------------------------------------------------------ looking

    @router.get("")
    async def overview_page(page: Viewer) -> Response:
        overview = await build_overview(hub)
        return render(page, "overview.html", overview=overview, refresh=REFRESH_SECONDS)

    @router.get("/overview")
    async def overview_fragment(page: Viewer) -> Response:
        overview = await build_overview(hub)
        return render(page, "_overview.html", overview=overview, refresh=REFRESH_SECONDS)

    @router.get("/search")
    async def search(page: Viewer, q: str = "") -> Response:
        q = q.strip()
        if not q:
            return render(page, "search.html", q=q, not_found=False)
        try:
            if _MESSAGE_ID.match(q) and await hub.store.message_envelope(q.lower()) is not None:
                return RedirectResponse(page.url(f"/messages/{q.lower()}"), status_code=303)
            if DOSSIER_CODE_PATTERN.match(q) and await hub.store.dossier_messages(q, limit=1):
                return RedirectResponse(page.url(f"/dossiers/{quote(q)}"), status_code=303)
        except HubError as exc:
            return render(page, "error.html", status_code=503, sentence=str(exc))
        return render(page, "search.html", status_code=404, q=q, not_found=True)

    @router.get("/dossiers/{dossier_code}")
    async def dossier(page: Viewer, dossier_code: str) -> Response:
        try:
            views = await hub.store.dossier_messages(dossier_code)
        except HubError as exc:
            return render(page, "error.html", status_code=503, sentence=str(exc))
        if not views:
            return render(page, "search.html", status_code=404, q=dossier_code, not_found=True)
        timeline = sorted(
            ((view, event) for view in views for event in view.events),
            key=lambda item: (item[1].at, item[0].envelope.seq),
        )
        return render(page, "dossier.html", code=dossier_code, views=views, timeline=timeline)

    @router.get("/messages/{message_id}")
    async def message(page: Viewer, message_id: str) -> Response:
        try:
            view = await hub.store.message(message_id)
        except HubError as exc:
            return render(page, "error.html", status_code=503, sentence=str(exc))
        if view is None:
            return render(page, "search.html", status_code=404, q=message_id, not_found=True)
        payload = orjson.dumps(mask_payload(view.envelope.payload), option=orjson.OPT_INDENT_2).decode()
        timeline = [(view, event) for event in view.events]
        return render(
            page, "message.html", view=view, timeline=timeline, payload=payload, DEAD=DeliveryState.DEAD_LETTERED
        )

    @router.get("/dead-letters")
    async def dead_letter_targets(page: Viewer) -> Response:
        try:
            counts = await hub.store.open_counts()
        except HubError as exc:
            return render(page, "error.html", status_code=503, sentence=str(exc))
        targets = [
            (t, sum(n for (tt, _r, s), n in counts.items() if tt == t and s == DeliveryState.DEAD_LETTERED))
            for t in hub.routes.delivery_targets()
        ]
        return render(page, "dead_letter_targets.html", targets=targets)

    @router.get("/dead-letters/{target}")
    async def dead_letters(
        page: Viewer,
        target: str,
        reason: Annotated[str | None, Query()] = None,
        type: Annotated[str | None, Query()] = None,
        dossier: Annotated[str | None, Query()] = None,
    ) -> Response:
        if target not in hub.routes.targets:
            return render(page, "error.html", status_code=404, sentence=f"There is no target '{target}'.")
        selection = DeadLetterFilter(reason or None, type or None, (dossier or "").strip() or None)
        try:
            rows = await hub.store.dead_letters(target, limit=DEAD_LETTERS_SCANNED)
        except HubError as exc:
            return render(page, "error.html", status_code=503, sentence=str(exc))
        groups: dict[str, tuple[str, int]] = {}  # reason key -> (reason, count)
        for _envelope, delivery in rows:
            key = reason_key(delivery.last_error)
            groups[key] = (reason_group(delivery.last_error), groups.get(key, ("", 0))[1] + 1)
        matching = [(e, d) for e, d in rows if selection.matches(e, d)]
        return render(
            page,
            "dead_letters.html",
            target=target,
            groups=sorted(groups.items(), key=lambda item: -item[1][1]),
            rows=matching[:DEAD_LETTERS_SHOWN],
            total=len(matching),
            scanned_all=len(rows) < DEAD_LETTERS_SCANNED,
            selection=selection,
            types=sorted({e.type for e, _ in rows}),
        )

    @router.get("/audit")
    async def audit(page: Viewer) -> Response:
        try:
            entries = await hub.store.operator_events(hub.routes.targets, limit=200)
        except HubError as exc:
            return render(page, "error.html", status_code=503, sentence=str(exc))
        return render(page, "audit.html", entries=entries)

    @router.get("/static/{name}")
    async def static(name: str) -> Response:
        media_type = _STATIC.get(name)
        if media_type is None:
            return Response(status_code=404)
        return Response(
            (_HERE / "static" / name).read_bytes(),
            media_type=media_type,
            headers={"Cache-Control": "public, max-age=3600"},
        )

    # ------------------------------------------------------------------ changing (operators only)

    @router.post("/messages/{message_id}/replay")
    async def replay_one(
        page: Viewer, message_id: str, target: Annotated[str, Form()] = "", csrf: Annotated[str, Form()] = ""
    ) -> Response:
        async def action(session: Session) -> Response:
            result = await replay_message(hub, message_id, target=target or None, actor=session.actor)
            for _, replayed_target in result.replayed:
                hub.metrics.operator_actions.labels("replay", replayed_target).inc()
            log.info("console_replayed", actor=session.actor, message_id=message_id, count=len(result.replayed))
            if not result.replayed:
                return render(page, "error.html", status_code=409, sentence=" ".join(result.skipped))
            url = page.url(f"/messages/{message_id}", done="replayed", n=len(result.replayed))
            return RedirectResponse(url, status_code=303)

        return await guarded(page, csrf, action)

    @router.post("/messages/{message_id}/discard")
    async def discard_one(
        page: Viewer,
        message_id: str,
        target: Annotated[str, Form()] = "",
        reason: Annotated[str, Form()] = "",
        csrf: Annotated[str, Form()] = "",
    ) -> Response:
        async def action(session: Session) -> Response:
            why = " ".join(reason.split())
            if not why:
                return render(
                    page,
                    "error.html",
                    status_code=422,
                    sentence="Say why the message is discarded; the reason is kept.",
                )
            done = await discard(hub, message_id, target, actor=session.actor, reason=why[:1000])
            if not done:
                sentence = f"Message {message_id} to {target} is not dead-lettered (any more); nothing was discarded."
                return render(page, "error.html", status_code=409, sentence=sentence)
            hub.metrics.operator_actions.labels("discard", target).inc()
            log.info("console_discarded", actor=session.actor, message_id=message_id, target=target)
            return RedirectResponse(page.url(f"/messages/{message_id}", done="discarded"), status_code=303)

        return await guarded(page, csrf, action)

    @router.post("/dead-letters/{target}/replay")
    async def replay_filtered(
        page: Viewer,
        target: str,
        reason: Annotated[str, Form()] = "",
        type: Annotated[str, Form()] = "",
        dossier: Annotated[str, Form()] = "",
        csrf: Annotated[str, Form()] = "",
    ) -> Response:
        async def action(session: Session) -> Response:
            if target not in hub.routes.targets:
                return render(page, "error.html", status_code=404, sentence=f"There is no target '{target}'.")
            selection = DeadLetterFilter(reason or None, type or None, dossier.strip() or None)
            result = await replay_matching(hub, target, selection, actor=session.actor)
            hub.metrics.operator_actions.labels("replay", target).inc(len(result.replayed))
            log.info(
                "console_replayed_matching",
                actor=session.actor,
                target=target,
                count=len(result.replayed),
                message_type=selection.message_type,
                dossier_prefix=selection.dossier_code,
            )
            url = page.url(f"/dead-letters/{target}", done="replayed", n=len(result.replayed))
            return RedirectResponse(url, status_code=303)

        return await guarded(page, csrf, action)

    return router
