"""A fake VNeID: an OpenID Connect provider (Keycloak-style) over real HTTP, with fake citizens.

* ``GET /.well-known/openid-configuration`` discovery; ``GET /jwks`` its signing keys (RS256).
* ``GET /authorize`` (authorization code + PKCE S256 only) shows a login page that lists the fake
  citizens; choosing one (``POST /authorize``) redirects to ``redirect_uri`` with ``code`` and
  ``state``; "Từ chối" redirects with ``error=access_denied``.
* ``POST /token`` checks the client (secret, basic or post), the code, ``redirect_uri`` and the PKCE
  verifier; answers ``access_token`` and an RS256 ``id_token`` (iss, aud, sub, exp, iat, nonce, acr).
* ``GET /userinfo`` (Bearer access token): sub, SoDinhDanh, HoVaTen, NgayThangNamSinh, LoaiTaiKhoan, acr.

Claims are an assumption (VNeID publishes no public spec): ``acr`` carries the level of assurance
as ``loa1``/``loa2``, ``LoaiTaiKhoan`` is ``CongDan`` or ``ToChuc``.

Knobs (``POST /_mock/faults`` JSON, ``DELETE`` resets), each a count of tokens it affects:
``expired_next`` (id_token already expired), ``forged_next`` (signed by a key not in the JWKS, with
the current kid), ``wrong_audience_next``, ``wrong_nonce_next``, ``wrong_issuer_next``,
``token_error_next`` (HTTP ``token_error_status``, default 503), ``userinfo_other_sub_next``.
``POST /_mock/rotate`` makes a new signing key (``{"keep_old": true}`` keeps publishing the old one).
``GET /_mock/calls`` lists token and userinfo calls.
"""

from __future__ import annotations

import base64
import hashlib
import html
import secrets
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from mocks._controls import add_call_log, add_health, add_loose_fault_knobs, use_one

__all__ = ["CITIZENS", "DEFAULT_CLIENT_ID", "DEFAULT_CLIENT_SECRET", "create_app"]

DEFAULT_CLIENT_ID = "lgsp-hub"
DEFAULT_CLIENT_SECRET = "mock-vneid-secret-not-real"

#: Fake accounts. ID numbers start with 000 (no province's code) and match the mock population DB.
CITIZENS: tuple[dict[str, str], ...] = (
    {
        "sub": "vneid-7a1c0001",
        "SoDinhDanh": "000190000001",
        "HoVaTen": "Nguyễn Văn An",
        "NgayThangNamSinh": "19900215",
        "LoaiTaiKhoan": "CongDan",
        "acr": "loa2",
    },
    {
        "sub": "vneid-7a1c0002",
        "SoDinhDanh": "000185000002",
        "HoVaTen": "Trần Thị Bích Ngọc",
        "NgayThangNamSinh": "19850704",
        "LoaiTaiKhoan": "CongDan",
        "acr": "loa1",
    },
    {
        "sub": "vneid-7a1c0003",
        "SoDinhDanh": "000201000003",
        "HoVaTen": "Công ty TNHH Giả Lập (Lê Minh)",
        "NgayThangNamSinh": "20010101",
        "LoaiTaiKhoan": "ToChuc",
        "acr": "loa2",
    },
)


def _new_key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"use": "sig", "alg": "RS256"}, auto_kid=True)


@dataclass
class _Grant:
    client_id: str
    redirect_uri: str
    code_challenge: str
    nonce: str | None
    citizen: dict[str, str]
    expires: float


@dataclass
class _State:
    issuer: str | None
    clients: dict[str, tuple[str, list[str]]]
    keys: list[RSAKey] = field(default_factory=lambda: [_new_key()])
    codes: dict[str, _Grant] = field(default_factory=dict)
    tokens: dict[str, dict[str, str]] = field(default_factory=dict)
    faults: dict[str, Any] = field(default_factory=dict)
    calls: list[dict[str, Any]] = field(default_factory=list)

    def take(self, knob: str) -> bool:
        """Use one of a counted fault; True when it applies to this call."""
        return use_one(self.faults, knob)


def _error(status: int, error: str, description: str) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status)


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        f'<!doctype html><html lang="vi"><head><meta charset="utf-8"><title>{html.escape(title)}</title></head>'
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>",
        status_code=status,
    )


def _with_query(url: str, **params: str) -> str:
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query) + [(k, v) for k, v in params.items() if v is not None]
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def create_app(
    *,
    issuer: str | None = None,
    client_id: str = DEFAULT_CLIENT_ID,
    client_secret: str = DEFAULT_CLIENT_SECRET,
    redirect_uris: list[str] | None = None,
) -> FastAPI:
    """``issuer`` defaults to the URL the server is reached at; ``redirect_uris`` (prefixes) to any."""
    state = _State(issuer=issuer, clients={client_id: (client_secret, list(redirect_uris or []))})
    app = FastAPI(title="Mock VNeID (OIDC)", docs_url=None, redoc_url=None)

    def issuer_of(request: Request) -> str:
        return state.issuer or str(request.base_url).rstrip("/")

    def redirect_allowed(client: str, uri: str) -> bool:
        allowed = state.clients[client][1]
        return not allowed or any(uri.startswith(prefix) for prefix in allowed)

    add_health(app)

    @app.get("/.well-known/openid-configuration")
    async def discovery(request: Request) -> dict[str, Any]:
        base = issuer_of(request)
        return {
            "issuer": base,
            "authorization_endpoint": f"{base}/authorize",
            "token_endpoint": f"{base}/token",
            "userinfo_endpoint": f"{base}/userinfo",
            "jwks_uri": f"{base}/jwks",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "scopes_supported": ["openid", "profile"],
            "claims_supported": ["sub", "SoDinhDanh", "HoVaTen", "NgayThangNamSinh", "LoaiTaiKhoan", "acr"],
            "acr_values_supported": ["loa1", "loa2"],
        }

    @app.get("/jwks")
    async def jwks() -> dict[str, Any]:
        return dict(KeySet(list[Any](state.keys)).as_dict(private=False))

    @app.get("/authorize")
    async def authorize(request: Request) -> Response:
        params = dict(request.query_params)
        client = params.get("client_id", "")
        redirect_uri = params.get("redirect_uri", "")
        if client not in state.clients:
            return _page("Lỗi đăng nhập", f"<p>Ứng dụng {html.escape(client)} chưa được đăng ký.</p>", 400)
        if not redirect_allowed(client, redirect_uri):
            return _page("Lỗi đăng nhập", "<p>redirect_uri không hợp lệ.</p>", 400)
        problems = []
        if params.get("response_type") != "code":
            problems.append("response_type must be code")
        if "openid" not in params.get("scope", "").split():
            problems.append("scope must include openid")
        if params.get("code_challenge_method") != "S256" or not params.get("code_challenge"):
            problems.append("PKCE with code_challenge_method=S256 is required")
        if problems:
            return RedirectResponse(
                _with_query(
                    redirect_uri,
                    error="invalid_request",
                    error_description="; ".join(problems),
                    state=params.get("state", ""),
                ),
                status_code=302,
            )
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">' for k, v in params.items()
        )
        buttons = "".join(
            f'<li><button type="submit" name="sub" value="{html.escape(c["sub"])}" '
            f'data-testid="login-{html.escape(c["SoDinhDanh"])}">{html.escape(c["HoVaTen"])} '
            f"({html.escape(c['SoDinhDanh'])}, {html.escape(c['acr'])})</button></li>"
            for c in CITIZENS
        )
        body = (
            "<p>Tài khoản định danh điện tử GIẢ LẬP – dữ liệu thử, không phải người thật.</p>"
            f'<form method="post" action="/authorize">{hidden}<ul>{buttons}</ul>'
            '<button type="submit" name="deny" value="1">Từ chối</button></form>'
        )
        return _page("Đăng nhập VNeID (giả lập)", body)

    @app.post("/authorize")
    async def authorize_choice(request: Request) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items()}
        client, redirect_uri = form.get("client_id", ""), form.get("redirect_uri", "")
        if client not in state.clients or not redirect_allowed(client, redirect_uri):
            return _page("Lỗi đăng nhập", "<p>Yêu cầu không hợp lệ.</p>", 400)
        if form.get("deny"):
            target = _with_query(redirect_uri, error="access_denied", state=form.get("state", ""))
            return RedirectResponse(target, status_code=302)
        citizen = next((c for c in CITIZENS if c["sub"] == form.get("sub")), None)
        if citizen is None:
            return _page("Lỗi đăng nhập", "<p>Không có tài khoản này.</p>", 400)
        code = secrets.token_urlsafe(24)
        state.codes[code] = _Grant(
            client_id=client,
            redirect_uri=redirect_uri,
            code_challenge=form.get("code_challenge", ""),
            nonce=form.get("nonce") or None,
            citizen=citizen,
            expires=time.time() + 60,
        )
        return RedirectResponse(_with_query(redirect_uri, code=code, state=form.get("state", "")), status_code=302)

    def client_of(request: Request, form: dict[str, str]) -> str | None:
        header = request.headers.get("authorization", "")
        if header.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(header[6:]).decode()
            except ValueError:
                return None
            given_id, _, given_secret = decoded.partition(":")
            given_id, given_secret = urllib.parse.unquote(given_id), urllib.parse.unquote(given_secret)
        else:
            given_id, given_secret = form.get("client_id", ""), form.get("client_secret", "")
        known = state.clients.get(given_id)
        if known is None or not secrets.compare_digest(known[0], given_secret):
            return None
        return given_id

    @app.post("/token")
    async def token(request: Request) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items()}
        call: dict[str, Any] = {"endpoint": "token", "outcome": "pending"}
        state.calls.append(call)
        if state.take("token_error_next"):
            call["outcome"] = "error"
            status = int(state.faults.get("token_error_status", 503))
            return Response("<html><title>Service Unavailable</title></html>", status, media_type="text/html")
        client = client_of(request, form)
        if client is None:
            call["outcome"] = "invalid_client"
            return _error(401, "invalid_client", "client authentication failed")
        if form.get("grant_type") != "authorization_code":
            return _error(400, "unsupported_grant_type", "only authorization_code")
        grant = state.codes.pop(form.get("code", ""), None)
        if grant is None or grant.expires < time.time() or grant.client_id != client:
            call["outcome"] = "invalid_grant"
            return _error(400, "invalid_grant", "the code is unknown, used or expired")
        if form.get("redirect_uri") != grant.redirect_uri:
            call["outcome"] = "invalid_grant"
            return _error(400, "invalid_grant", "redirect_uri does not match the authorization request")
        if not form.get("code_verifier") or _s256(form["code_verifier"]) != grant.code_challenge:
            call["outcome"] = "invalid_grant"
            return _error(400, "invalid_grant", "PKCE verification failed")
        citizen = grant.citizen
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": issuer_of(request),
            "aud": client,
            "sub": citizen["sub"],
            "iat": now,
            "auth_time": now,
            "exp": now + 300,
            "acr": citizen["acr"],
            "azp": client,
        }
        if grant.nonce:
            claims["nonce"] = grant.nonce
        if state.take("expired_next"):
            claims.update(iat=now - 900, exp=now - 600)
        if state.take("wrong_audience_next"):
            claims["aud"] = "another-client"
        if state.take("wrong_nonce_next"):
            claims["nonce"] = "not-the-nonce-you-sent"
        if state.take("wrong_issuer_next"):
            claims["iss"] = "https://evil.example/realms/vneid"
        key = state.keys[-1]
        signing_key = key
        if state.take("forged_next"):
            signing_key = _new_key()  # same kid as the published key, different private key
        id_token = jwt.encode({"alg": "RS256", "kid": key.kid, "typ": "JWT"}, claims, signing_key)
        access_token = secrets.token_urlsafe(32)
        state.tokens[access_token] = citizen
        call["outcome"] = "issued"
        return JSONResponse(
            {
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": 300,
                "id_token": id_token,
                "scope": "openid profile",
            },
            headers={"Cache-Control": "no-store"},
        )

    @app.get("/userinfo")
    async def userinfo(request: Request) -> Response:
        state.calls.append({"endpoint": "userinfo"})
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        citizen = state.tokens.get(value) if scheme.lower() == "bearer" else None
        if citizen is None:
            return _error(401, "invalid_token", "the access token is unknown")
        claims = dict(citizen)
        if state.take("userinfo_other_sub_next"):
            claims["sub"] = "vneid-someone-else"
        return JSONResponse(claims)

    @app.post("/_mock/rotate")
    async def rotate(request: Request) -> dict[str, Any]:
        options = await request.json() if await request.body() else {}
        new = _new_key()
        state.keys = [*state.keys, new] if options.get("keep_old") else [new]
        return {"kid": new.kid, "published": [k.kid for k in state.keys]}

    add_loose_fault_knobs(app, state.faults)
    add_call_log(
        app, calls=lambda: state.calls, forget=state.calls.clear, forgotten=lambda: JSONResponse({"status": "ok"})
    )
    return app
