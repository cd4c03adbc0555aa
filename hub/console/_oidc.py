"""Console login through an OpenID Connect provider (authorization-code flow with PKCE).

Works with any provider that publishes ``/.well-known/openid-configuration`` (VNeID, the
national portal's SSO, Keycloak). The ID token is verified against the provider's JWKS
(signature, issuer, audience, expiry, nonce). Who may log in, and with which role, is
decided by the hub's settings (``HUB_CONSOLE_OIDC_ROLES``), never by the provider alone.

The protocol is Authlib's: the authorization request, PKCE, the token request with the
client's authentication, and the ID token's claims rules. The signature is checked with
joserfc, the JOSE library Authlib itself verifies ID tokens with. The HTTP calls go
through the hub's httpx client so that every failure becomes a sentence for the official.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import httpx
from authlib.common.security import generate_token
from authlib.oauth2.auth import ClientAuth
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri, prepare_token_request
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import ClaimError, ExpiredTokenError, InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry, extract_compact

__all__ = ["OidcLoginError", "OidcProvider", "PkceChallenge"]

#: Signatures with the provider's published public keys only (never a shared secret).
_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384"]
_LEEWAY_SECONDS = 60
#: What a refused claim means, for the sentence the official reads.
_CLAIMS = {
    "aud": "it is meant for another client (audience); check HUB_CONSOLE_OIDC_CLIENT_ID",
    "azp": "it was issued to another client (authorized party); check HUB_CONSOLE_OIDC_CLIENT_ID",
    "iss": "another issuer signed it; check HUB_CONSOLE_OIDC_ISSUER",
    "exp": "it has expired; check the clocks of the hub and the provider",
    "iat": "its issue time is wrong; check the clocks of the hub and the provider",
    "nbf": "it is not valid yet; check the clocks of the hub and the provider",
    "at_hash": "it does not belong to the access token sent with it",
}


class OidcLoginError(Exception):
    """A login through the provider failed; the message is a sentence for the official."""


@dataclass(frozen=True, slots=True)
class PkceChallenge:
    """What one login keeps between the redirect to the provider and the callback."""

    state: str
    nonce: str
    verifier: str

    @classmethod
    def create(cls) -> PkceChallenge:
        return cls(generate_token(32), generate_token(32), generate_token(64))

    @property
    def challenge(self) -> str:
        return cast(str, create_s256_code_challenge(self.verifier))


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
        # A confidential client authenticates with HTTP Basic; a public one sends its id and PKCE alone.
        self._client_auth = ClientAuth(client_id, client_secret, "client_secret_basic" if client_secret else "none")
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
        return cast(
            str,
            prepare_grant_uri(
                endpoint,
                client_id=self.client_id,
                response_type="code",
                redirect_uri=redirect_uri,
                scope=self.scopes,
                state=pkce.state,
                nonce=pkce.nonce,
                code_challenge=pkce.challenge,
                code_challenge_method="S256",
            ),
        )

    async def login(
        self, client: httpx.AsyncClient, *, code: str, redirect_uri: str, pkce: PkceChallenge
    ) -> dict[str, Any]:
        """Exchange the code for tokens and return the verified claims (ID token + userinfo)."""
        metadata = await self.metadata(client)
        tokens = await self._exchange(client, str(metadata["token_endpoint"]), code, redirect_uri, pkce)
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            raise OidcLoginError("The login provider sent no ID token; ask for the 'openid' scope.")
        access_token = tokens.get("access_token")
        claims = await self._verify(
            client, id_token, pkce.nonce, access_token if isinstance(access_token, str) else None
        )
        userinfo_endpoint = metadata.get("userinfo_endpoint")
        if userinfo_endpoint and isinstance(access_token, str):
            userinfo = await self._get_json(
                client, str(userinfo_endpoint), "user information", headers={"Authorization": f"Bearer {access_token}"}
            )
            if userinfo.get("sub") == claims.get("sub"):
                claims = {**userinfo, **claims}
        return claims

    async def _exchange(
        self, client: httpx.AsyncClient, endpoint: str, code: str, redirect_uri: str, pkce: PkceChallenge
    ) -> dict[str, Any]:
        body = prepare_token_request(
            "authorization_code", code=code, redirect_uri=redirect_uri, code_verifier=pkce.verifier
        )
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
        endpoint, headers, body = self._client_auth.prepare("POST", endpoint, headers, body)
        try:
            response = await client.post(endpoint, content=body, headers=headers)
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
        if not isinstance(tokens, dict):
            raise OidcLoginError("The login provider's token endpoint did not answer a JSON object; try again.")
        return tokens

    async def _keys(self, client: httpx.AsyncClient, *, refresh: bool) -> KeySet:
        if self._jwks is None or refresh:
            metadata = await self.metadata(client)
            self._jwks = await self._get_json(client, str(metadata["jwks_uri"]), "signing keys")
        try:
            return KeySet.import_key_set(self._jwks)  # type: ignore[arg-type]
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            raise OidcLoginError(f"The login provider's signing keys cannot be read ({exc}).") from exc

    async def _verify(
        self, client: httpx.AsyncClient, id_token: str, nonce: str, access_token: str | None
    ) -> dict[str, Any]:
        registry = JWSRegistry(algorithms=_ALGORITHMS, strict_check_header=False)
        token: jwt.Token | None = None
        for refresh in (False, True):  # a key the provider rotated in since the keys were fetched
            keys = await self._keys(client, refresh=refresh)
            try:
                token = jwt.decode(id_token, keys, registry=registry)
                break
            except InvalidKeyIdError:
                continue
            except JoseError as exc:
                raise OidcLoginError(f"The ID token from the login provider was refused: {_reason(exc)}.") from exc
            except ValueError as exc:
                raise OidcLoginError(f"The ID token from the login provider is not a JWT ({exc}).") from exc
        if token is None:
            kid = _unverified_kid(id_token)
            raise OidcLoginError(f"The ID token is signed with key {kid!r}, which the login provider does not publish.")
        issuer = str((await self.metadata(client))["issuer"])
        claims = CodeIDToken(
            token.claims,
            token.header,
            {"iss": {"essential": True, "value": issuer}, "aud": {"essential": True, "value": self.client_id}},
            {"nonce": nonce, "client_id": self.client_id, "access_token": access_token},
        )
        try:
            claims.validate(leeway=_LEEWAY_SECONDS)
        except ClaimError as exc:
            if exc.claim == "nonce":
                raise OidcLoginError(
                    "The ID token does not answer this login (nonce differs); start the login again."
                ) from exc
            raise OidcLoginError(f"The ID token from the login provider was refused: {_reason(exc)}.") from exc
        return dict(token.claims)


def _reason(exc: JoseError) -> str:
    if isinstance(exc, ExpiredTokenError):
        return _CLAIMS["exp"]
    if isinstance(exc, ClaimError):
        return _CLAIMS.get(exc.claim, exc.description or f"claim {exc.claim!r}")
    return exc.description or exc.error


def _unverified_kid(id_token: str) -> str | None:
    """The key id the token names (for the error sentence only; nothing is trusted from it)."""
    try:
        header = extract_compact(id_token.encode()).headers()
    except (JoseError, ValueError):
        return None
    kid = header.get("kid")
    return kid if isinstance(kid, str) else None
