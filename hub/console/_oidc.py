"""Console login through an OpenID Connect provider (authorization-code flow with PKCE).

Works with any provider that publishes ``/.well-known/openid-configuration`` (VNeID, the
national portal's SSO, Keycloak). The ID token is verified against the provider's JWKS
(signature, issuer, audience, expiry, nonce). Who may log in, and with which role, is
decided by the hub's settings (``HUB_CONSOLE_OIDC_ROLES``), never by the provider alone.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt

__all__ = ["OidcLoginError", "OidcProvider", "PkceChallenge"]

_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384"]


class OidcLoginError(Exception):
    """A login through the provider failed; the message is a sentence for the official."""


@dataclass(frozen=True, slots=True)
class PkceChallenge:
    state: str
    nonce: str
    verifier: str

    @classmethod
    def create(cls) -> PkceChallenge:
        return cls(secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(48))

    @property
    def challenge(self) -> str:
        digest = hashlib.sha256(self.verifier.encode("ascii")).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class OidcProvider:
    """One OIDC provider; its discovery document and keys are fetched when first needed."""

    def __init__(
        self,
        issuer: str,
        client_id: str,
        client_secret: str | None,
        *,
        scopes: str = "openid profile",
        timeout: float = 10.0,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        self.client_secret = client_secret
        self.scopes = scopes
        self.timeout = timeout
        self._metadata: dict[str, Any] | None = None
        self._jwks: dict[str, Any] | None = None

    async def _get_json(self, client: httpx.AsyncClient, url: str, what: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = await client.get(url, **kwargs)
        except httpx.HTTPError as exc:
            raise OidcLoginError(
                f"The login provider could not be reached for its {what} ({type(exc).__name__}); "
                f"check HUB_CONSOLE_OIDC_ISSUER ({self.issuer}) and the network, or log in with a local account."
            ) from exc
        if response.status_code != 200:
            raise OidcLoginError(f"The login provider answered HTTP {response.status_code} for its {what} ({url}).")
        try:
            data = response.json()
        except ValueError as exc:
            raise OidcLoginError(f"The login provider's {what} ({url}) is not JSON.") from exc
        if not isinstance(data, dict):
            raise OidcLoginError(f"The login provider's {what} ({url}) is not a JSON object.")
        return data

    async def metadata(self, client: httpx.AsyncClient) -> dict[str, Any]:
        if self._metadata is None:
            data = await self._get_json(client, f"{self.issuer}/.well-known/openid-configuration", "discovery document")
            missing = [k for k in ("authorization_endpoint", "token_endpoint", "jwks_uri") if not data.get(k)]
            if missing:
                raise OidcLoginError(f"The login provider's discovery document lacks {', '.join(missing)}.")
            if str(data.get("issuer", "")).rstrip("/") != self.issuer:
                raise OidcLoginError(
                    f"The login provider says its issuer is {data.get('issuer')!r}, not {self.issuer!r}; "
                    "set HUB_CONSOLE_OIDC_ISSUER to exactly the provider's issuer."
                )
            self._metadata = data
        return self._metadata

    async def authorization_url(self, client: httpx.AsyncClient, redirect_uri: str, pkce: PkceChallenge) -> str:
        endpoint = str((await self.metadata(client))["authorization_endpoint"])
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.client_id,
                "redirect_uri": redirect_uri,
                "scope": self.scopes,
                "state": pkce.state,
                "nonce": pkce.nonce,
                "code_challenge": pkce.challenge,
                "code_challenge_method": "S256",
            }
        )
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"

    async def login(
        self, client: httpx.AsyncClient, *, code: str, redirect_uri: str, pkce: PkceChallenge
    ) -> dict[str, Any]:
        """Exchange the code for tokens and return the verified claims (ID token + userinfo)."""
        metadata = await self.metadata(client)
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": self.client_id,
            "code_verifier": pkce.verifier,
        }
        endpoint = str(metadata["token_endpoint"])
        try:
            if self.client_secret:  # confidential client: client_secret_basic
                auth = httpx.BasicAuth(self.client_id, self.client_secret)
                response = await client.post(endpoint, data=form, auth=auth)
            else:  # public client: PKCE alone
                response = await client.post(endpoint, data=form)
        except httpx.HTTPError as exc:
            raise OidcLoginError(
                f"The login provider's token endpoint could not be reached ({type(exc).__name__}); try again."
            ) from exc
        if response.status_code != 200:
            raise OidcLoginError(
                f"The login provider refused the login code (HTTP {response.status_code}); "
                "start the login again. If it keeps failing, check HUB_CONSOLE_OIDC_CLIENT_ID and the secret."
            )
        try:
            tokens = response.json()
        except ValueError as exc:
            raise OidcLoginError("The login provider's token endpoint did not answer JSON; try again.") from exc
        id_token = tokens.get("id_token") if isinstance(tokens, dict) else None
        if not isinstance(id_token, str):
            raise OidcLoginError("The login provider sent no ID token; ask for the 'openid' scope.")
        claims = await self._verify(client, id_token, pkce.nonce)
        userinfo_endpoint = metadata.get("userinfo_endpoint")
        access_token = tokens.get("access_token")
        if userinfo_endpoint and isinstance(access_token, str):
            userinfo = await self._get_json(
                client, str(userinfo_endpoint), "user information", headers={"Authorization": f"Bearer {access_token}"}
            )
            if userinfo.get("sub") == claims.get("sub"):
                claims = {**userinfo, **claims}
        return claims

    async def _signing_key(self, client: httpx.AsyncClient, kid: str | None) -> jwt.PyJWK:
        for refresh in (False, True):
            if self._jwks is None or refresh:
                metadata = await self.metadata(client)
                self._jwks = await self._get_json(client, str(metadata["jwks_uri"]), "signing keys")
            try:
                keys = jwt.PyJWKSet.from_dict(self._jwks).keys
            except jwt.PyJWTError as exc:
                raise OidcLoginError(f"The login provider's signing keys cannot be read ({exc}).") from exc
            for key in keys:
                if kid is None or key.key_id == kid:
                    return key
        raise OidcLoginError(f"The ID token is signed with key {kid!r}, which the login provider does not publish.")

    async def _verify(self, client: httpx.AsyncClient, id_token: str, nonce: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(id_token)
        except jwt.PyJWTError as exc:
            raise OidcLoginError(f"The ID token from the login provider is not a JWT ({exc}).") from exc
        key = await self._signing_key(client, header.get("kid"))
        issuer = str((await self.metadata(client))["issuer"])
        try:
            claims: dict[str, Any] = jwt.decode(
                id_token,
                key=key,
                algorithms=_ALGORITHMS,
                audience=self.client_id,
                issuer=issuer,
                leeway=60,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError as exc:
            raise OidcLoginError(f"The ID token from the login provider was refused: {exc}.") from exc
        if claims.get("nonce") != nonce:
            raise OidcLoginError("The ID token does not answer this login (nonce differs); start the login again.")
        return claims
