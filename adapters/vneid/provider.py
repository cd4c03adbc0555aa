"""VNeID login: OpenID Connect authorization code flow with PKCE (S256), on authlib.

authlib builds the protocol's messages and checks (the authorization request, the token request and
the client's authentication at the token endpoint, the PKCE challenge, the ID token's claims: issuer,
audience, expiry, nonce, ``at_hash``, ``azp``); joserfc (the JOSE library authlib is built on) checks
the ID token's RS256 signature against the provider's JWKS. HTTP goes through the hub's httpx, so
every transport failure is translated here, in one place (:func:`translate_failure`).

The discovery document and the JWKS are cached; an ID token signed with a key id the cache does
not know makes the provider's JWKS be read again once (key rotation), at most every
``jwks_refresh_seconds``.
"""

from __future__ import annotations

import asyncio
import base64
import time
import urllib.parse
from collections.abc import Mapping
from typing import Any

import httpx
import structlog
from authlib.oauth2.auth import ClientAuth
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri, prepare_token_request
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core import CodeIDToken
from authlib.oidc.discovery import get_well_known_url
from joserfc import errors as jose_errors
from joserfc import jwt
from joserfc.jwk import KeySet

from adapters.vneid.mapping import identity_from_claims
from hub.plugin import (
    DeliveryError,
    LoginRequest,
    PermanentDeliveryError,
    TransientDeliveryError,
    http_status_failure,
    transport_failure,
)

__all__ = ["ProviderRefusalError", "VNeIDProvider", "pkce_challenge", "translate_failure"]

log = structlog.get_logger(__name__)

_REQUIRED_METADATA = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri", "userinfo_endpoint")
_TOKEN_HEADERS = {"Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded"}


class ProviderRefusalError(Exception):
    """The token endpoint answered an OAuth error (``{"error": ..., "error_description": ...}``)."""

    def __init__(self, error: str, description: str | None) -> None:
        super().__init__(error)
        self.error = error
        self.description = description


def pkce_challenge(verifier: str) -> str:
    """The S256 code challenge of a PKCE verifier (RFC 7636 §4.2)."""
    challenge: str = create_s256_code_challenge(verifier)
    return challenge


def _client_secret_basic(
    auth: ClientAuth, method: str, uri: str, headers: dict[str, str], body: str
) -> tuple[str, dict[str, str], str]:
    """HTTP Basic client authentication with the id and secret form-encoded first (RFC 6749 §2.3.1), which
    authlib's own ``client_secret_basic`` leaves out: a secret with ``:``, ``%`` or ``+`` would not match."""
    quote = urllib.parse.quote_plus
    pair = f"{quote(auth.client_id)}:{quote(auth.client_secret)}".encode()
    return uri, {**headers, "Authorization": "Basic " + base64.b64encode(pair).decode("ascii")}, body


_CHECK_SETTINGS = "Check the client id, secret and issuer of the VNeID target in the route files."
#: What VNeID's refusals ask of the province (the rest of each sentence is hub.plugin's).
_ADVICE = {401: _CHECK_SETTINGS, 403: _CHECK_SETTINGS, 400: _CHECK_SETTINGS}


def translate_failure(exc: BaseException, *, action: str, issuer: str, timeout: float) -> DeliveryError:
    """Turn an httpx or provider failure while doing ``action`` into a hub error (a sentence)."""
    if isinstance(exc, DeliveryError):
        return exc
    if isinstance(exc, ProviderRefusalError):
        return PermanentDeliveryError(
            f"VNeID refused {action}: {exc.error}{': ' + exc.description if exc.description else ''}. "
            "The login cannot be completed; the citizen can start it again."
        )
    if isinstance(exc, httpx.HTTPStatusError):
        return http_status_failure(exc.response, system="VNeID", action=action, advice=_ADVICE)
    if isinstance(exc, httpx.HTTPError | OSError):
        return transport_failure(exc, system="VNeID", action=action, url=issuer, timeout=timeout)
    raise exc


class VNeIDProvider:
    """The hub's relying-party side of VNeID (implements :class:`hub.plugin.IdentityProvider`)."""

    #: What ``check()`` proves (``hub doctor``).
    check_description = "read its OpenID Connect discovery document"

    name: str = "vneid"

    def __init__(
        self,
        target_id: str,
        *,
        issuer: str,
        client_id: str,
        client_secret: str | None,
        scopes: str = "openid profile",
        timeout: float = 10.0,
        loa_claim: str = "acr",
        leeway_seconds: int = 60,
        metadata_ttl_seconds: float = 3600.0,
        jwks_refresh_seconds: float = 10.0,
    ) -> None:
        self.target_id = target_id
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        self.timeout = timeout
        self.loa_claim = loa_claim
        self.leeway = leeway_seconds
        self._metadata_ttl = metadata_ttl_seconds
        self._jwks_refresh = jwks_refresh_seconds
        self.client_secret = client_secret
        self.scopes = scopes
        # A confidential client authenticates with HTTP Basic; a public one sends its id in the form.
        self._client_auth = ClientAuth(
            client_id, client_secret, _client_secret_basic if client_secret else "none"
        )  # fmt: skip
        self._http = httpx.AsyncClient(timeout=timeout, follow_redirects=False)
        self._metadata: dict[str, Any] | None = None
        self._metadata_at = 0.0
        self._keys: KeySet | None = None
        self._keys_at = 0.0
        self._lock = asyncio.Lock()

    # ------------------------------------------------------------------ provider metadata and keys

    async def _get_json(self, url: str, action: str, headers: Mapping[str, str] | None = None) -> dict[str, Any]:
        try:
            response = await self._http.get(url, headers=dict(headers or {}))
            response.raise_for_status()
            data = response.json()
        except Exception as exc:  # every failure is translated; unknown ones are re-raised
            raise translate_failure(exc, action=action, issuer=self.issuer, timeout=self.timeout) from exc
        if not isinstance(data, dict):
            raise PermanentDeliveryError(f"VNeID answered {action} with something that is not a JSON object.")
        return data

    async def metadata(self) -> dict[str, Any]:
        """The provider's discovery document (OpenID Connect Discovery 1.0), checked and cached."""
        async with self._lock:
            if self._metadata is None or time.monotonic() - self._metadata_at > self._metadata_ttl:
                data = await self._get_json(get_well_known_url(self.issuer, external=True), "discovery")
                missing = [key for key in _REQUIRED_METADATA if not data.get(key)]
                if missing:
                    raise PermanentDeliveryError(
                        f"VNeID's discovery document at {self.issuer} lacks {', '.join(missing)}; check the issuer."
                    )
                if str(data["issuer"]).rstrip("/") != self.issuer:
                    raise PermanentDeliveryError(
                        f"VNeID's discovery document names issuer {data['issuer']!r}, not {self.issuer!r}; "
                        "set the target's issuer to exactly the provider's issuer."
                    )
                if "S256" not in data.get("code_challenge_methods_supported", ["S256"]):
                    raise PermanentDeliveryError(
                        "VNeID does not offer PKCE with S256; the hub will not log in without it."
                    )
                self._metadata, self._metadata_at = data, time.monotonic()
            return self._metadata

    async def _key_set(self, *, refresh: bool = False) -> KeySet:
        metadata = await self.metadata()
        async with self._lock:
            stale = self._keys is None or (refresh and time.monotonic() - self._keys_at > self._jwks_refresh)
            if stale:
                data = await self._get_json(str(metadata["jwks_uri"]), "its signing keys (JWKS)")
                try:
                    self._keys = KeySet.import_key_set(data)  # type: ignore[arg-type]
                except (jose_errors.JoseError, ValueError, KeyError, TypeError) as exc:
                    raise PermanentDeliveryError(f"VNeID's JWKS cannot be read ({type(exc).__name__}).") from exc
                self._keys_at = time.monotonic()
                log.info("vneid_jwks_loaded", keys=len(self._keys.keys))
            if self._keys is None:
                raise TransientDeliveryError("VNeID's signing keys are not loaded yet.")
            return self._keys

    # ------------------------------------------------------------------ the flow

    async def authorization_url(self, login: LoginRequest) -> str:
        metadata = await self.metadata()
        url: str = prepare_grant_uri(
            str(metadata["authorization_endpoint"]),
            client_id=self.client_id,
            response_type="code",
            redirect_uri=login.redirect_uri,
            scope=self.scopes,
            state=login.state,
            nonce=login.nonce,
            code_challenge=pkce_challenge(login.code_verifier),
            code_challenge_method="S256",
        )
        return url

    async def _exchange_code(self, token_endpoint: str, code: str, login: LoginRequest) -> dict[str, Any]:
        body = prepare_token_request(
            "authorization_code", code=code, redirect_uri=login.redirect_uri, code_verifier=login.code_verifier
        )
        url, headers, body = self._client_auth.prepare("POST", token_endpoint, dict(_TOKEN_HEADERS), body)
        response = await self._http.post(url, content=body, headers=headers)
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if isinstance(answer, dict) and isinstance(answer.get("error"), str) and response.status_code < 500:
            raise ProviderRefusalError(answer["error"], answer.get("error_description"))
        response.raise_for_status()
        if not isinstance(answer, dict):
            raise PermanentDeliveryError("VNeID answered the code exchange with something that is not JSON.")
        return answer

    async def complete(self, code: str, login: LoginRequest) -> dict[str, Any]:
        metadata = await self.metadata()
        try:
            token = await self._exchange_code(str(metadata["token_endpoint"]), code, login)
        except Exception as exc:  # every failure is translated; unknown ones are re-raised
            raise translate_failure(exc, action="the code exchange", issuer=self.issuer, timeout=self.timeout) from exc
        id_token, access_token = token.get("id_token"), token.get("access_token")
        if not isinstance(id_token, str) or not isinstance(access_token, str):
            raise PermanentDeliveryError("VNeID's token answer has no id_token or access_token (scope openid?).")
        id_claims = await self.verify_id_token(id_token, nonce=login.nonce, access_token=access_token)
        userinfo = await self._get_json(
            str(metadata["userinfo_endpoint"]), "userinfo", headers={"Authorization": f"Bearer {access_token}"}
        )
        if userinfo.get("sub") != id_claims.get("sub"):
            raise PermanentDeliveryError(
                "VNeID's userinfo is about another subject than the ID token; the login is refused."
            )
        identity = identity_from_claims({**id_claims, **userinfo}, loa_claim=self.loa_claim)
        return identity.model_dump(mode="json")

    async def verify_id_token(self, id_token: str, *, nonce: str, access_token: str | None = None) -> dict[str, Any]:
        """Signature (RS256, provider JWKS), issuer, audience, expiry, nonce (and ``at_hash`` when the token
        carries one, against ``access_token``); raise with a sentence."""
        keys = await self._key_set()
        try:
            try:
                token = jwt.decode(id_token, keys, algorithms=["RS256"])
            except jose_errors.InvalidKeyIdError:
                # A key id we have not seen: the provider may have rotated its keys.
                keys = await self._key_set(refresh=True)
                token = jwt.decode(id_token, keys, algorithms=["RS256"])
            params = {"nonce": nonce, "client_id": self.client_id}
            if access_token is not None:
                params["access_token"] = access_token
            claims = CodeIDToken(
                token.claims,
                token.header,
                {
                    "iss": {"essential": True, "value": self.issuer},
                    "aud": {"essential": True, "value": self.client_id},
                    "sub": {"essential": True},
                    "exp": {"essential": True},
                },
                params,
            )
            claims.validate(leeway=self.leeway)
        except jose_errors.ExpiredTokenError as exc:
            raise PermanentDeliveryError("VNeID's ID token has expired; the login is refused.") from exc
        except jose_errors.InvalidKeyIdError as exc:
            raise PermanentDeliveryError(
                "VNeID's ID token is signed with a key the provider does not publish; the login is refused."
            ) from exc
        except jose_errors.BadSignatureError as exc:
            raise PermanentDeliveryError(
                "VNeID's ID token has a bad signature (forged or altered); the login is refused."
            ) from exc
        except (jose_errors.InvalidClaimError, jose_errors.MissingClaimError) as exc:
            raise PermanentDeliveryError(
                f"VNeID's ID token is not for this login ({exc.description}); the login is refused."
            ) from exc
        except (jose_errors.JoseError, ValueError) as exc:
            raise PermanentDeliveryError(
                f"VNeID's ID token cannot be read ({type(exc).__name__}); the login is refused."
            ) from exc
        return dict(token.claims)

    async def check(self) -> None:
        await self.metadata()

    async def aclose(self) -> None:
        await self._http.aclose()
