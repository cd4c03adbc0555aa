"""A small OpenID Connect provider for tests of the console's OIDC login (a real HTTP server).

It logs in whoever ``state.next_user`` names, without a login form: ``/authorize`` answers
straight away with a redirect carrying a code. The code flow is otherwise real: PKCE is
checked, the ID token is an RS256 JWT signed with a key published at ``/jwks``.
Knobs: ``sign_with_unpublished_key`` (a forged token), ``audience`` (a token for another client).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Form, Header, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse
from joserfc import jwt
from joserfc.jwk import RSAKey


@dataclass
class ProviderState:
    client_id: str = "lgsp-console"
    client_secret: str = "console-test-secret-not-real"
    next_user: dict[str, Any] = field(default_factory=lambda: {"sub": "official-1"})
    sign_with_unpublished_key: bool = False
    audience: str | None = None
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    tokens: dict[str, dict[str, Any]] = field(default_factory=dict)


def create_provider_app(state: ProviderState) -> tuple[FastAPI, dict[str, str]]:
    """The provider's app and a dict that receives its ``issuer`` once the server has a URL."""
    key = RSAKey.generate_key(2048, parameters={"kid": "test-key-1", "use": "sig", "alg": "RS256"})
    forged = RSAKey.generate_key(2048)
    public_jwk = key.as_dict(private=False)
    where: dict[str, str] = {}
    app = FastAPI()

    @app.get("/.well-known/openid-configuration")
    async def discovery() -> dict[str, Any]:
        issuer = where["issuer"]
        return {
            "issuer": issuer,
            "authorization_endpoint": f"{issuer}/authorize",
            "token_endpoint": f"{issuer}/token",
            "userinfo_endpoint": f"{issuer}/userinfo",
            "jwks_uri": f"{issuer}/jwks",
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"],
            "id_token_signing_alg_values_supported": ["RS256"],
        }

    @app.get("/jwks")
    async def jwks() -> dict[str, Any]:
        return {"keys": [public_jwk]}

    @app.get("/authorize")
    async def authorize(request: Request) -> RedirectResponse:
        q = request.query_params
        if q.get("client_id") != state.client_id or q.get("code_challenge_method") != "S256":
            raise HTTPException(400, "unknown client or no PKCE")
        code = secrets.token_urlsafe(16)
        state.codes[code] = {
            "user": dict(state.next_user),
            "nonce": q.get("nonce"),
            "challenge": q.get("code_challenge"),
            "redirect_uri": q.get("redirect_uri"),
        }
        return RedirectResponse(f"{q['redirect_uri']}?{urlencode({'code': code, 'state': q['state']})}", 302)

    @app.post("/token")
    async def token(
        grant_type: str = Form(),
        code: str = Form(),
        redirect_uri: str = Form(),
        code_verifier: str = Form(),
        authorization: str = Header(default=""),
    ) -> JSONResponse:
        expected = "Basic " + base64.b64encode(f"{state.client_id}:{state.client_secret}".encode()).decode()
        grant = state.codes.pop(code, None)
        if authorization != expected or grant is None or grant_type != "authorization_code":
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        digest = base64.urlsafe_b64encode(hashlib.sha256(code_verifier.encode()).digest()).rstrip(b"=").decode()
        if digest != grant["challenge"] or redirect_uri != grant["redirect_uri"]:
            return JSONResponse({"error": "invalid_grant", "error_description": "PKCE"}, status_code=400)
        now = int(time.time())
        user = grant["user"]
        claims = {
            "iss": where["issuer"],
            "aud": state.audience or state.client_id,
            "sub": user["sub"],
            "iat": now,
            "exp": now + 300,
            "nonce": grant["nonce"],
        }
        signer = forged if state.sign_with_unpublished_key else key
        id_token = jwt.encode({"alg": "RS256", "kid": "test-key-1"}, claims, signer)
        access_token = secrets.token_urlsafe(16)
        state.tokens[access_token] = user
        return JSONResponse({"access_token": access_token, "token_type": "Bearer", "id_token": id_token})

    @app.get("/userinfo")
    async def userinfo(authorization: str = Header(default="")) -> dict[str, Any]:
        user = state.tokens.get(authorization.removeprefix("Bearer "))
        if user is None:
            raise HTTPException(401)
        return dict(user)

    return app, where
