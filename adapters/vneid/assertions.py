"""The hub's identity assertions: JWTs signed RS256 with the hub's key, published as a JWKS.

Signing uses joserfc, the JOSE library authlib itself is built on (authlib's own ``authlib.jose`` is
deprecated in its favour), so the hub has one JOSE implementation for both sides of a login.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import structlog
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from hub.plugin import ConfigurationError

__all__ = ["AssertionSigner", "SigningKeySettings"]

log = structlog.get_logger(__name__)


class SigningKeySettings(Protocol):
    """The hub settings the signer reads (``HUB_IDENTITY_SIGNING_KEY_FILE``, ``HUB_IDENTITY_PREVIOUS_KEY_FILE``)."""

    @property
    def identity_signing_key_file(self) -> Path | None: ...

    @property
    def identity_previous_key_file(self) -> Path | None: ...


class AssertionSigner:
    """Signs identity assertions with the hub's RSA key; publishes the public keys as a JWKS."""

    def __init__(self, key: RSAKey, previous: list[RSAKey] | None = None, *, ephemeral: bool = False) -> None:
        self.key = key
        self.previous = previous or []
        self.ephemeral = ephemeral

    @staticmethod
    def _load(path: Path, setting: str) -> RSAKey:
        try:
            key = RSAKey.import_key(path.read_bytes(), parameters={"use": "sig", "alg": "RS256"})
        except OSError as exc:
            raise ConfigurationError(f"{setting}: cannot read {path} ({exc.strerror}).") from exc
        except Exception as exc:  # joserfc raises several kinds for a bad PEM
            raise ConfigurationError(f"{setting}: {path} is not an RSA private key in PEM ({exc}).") from exc
        if not key.is_private:
            raise ConfigurationError(f"{setting}: {path} holds a public key; the hub needs the private key.")
        key.ensure_kid()
        return key

    @classmethod
    def from_settings(cls, settings: SigningKeySettings) -> AssertionSigner:
        previous = []
        if settings.identity_previous_key_file is not None:
            previous.append(cls._load(settings.identity_previous_key_file, "HUB_IDENTITY_PREVIOUS_KEY_FILE"))
        if settings.identity_signing_key_file is not None:
            return cls(cls._load(settings.identity_signing_key_file, "HUB_IDENTITY_SIGNING_KEY_FILE"), previous)
        log.warning(
            "identity_signing_key_generated",
            detail="HUB_IDENTITY_SIGNING_KEY_FILE is not set; identity assertions are signed with a random key "
            "of this process. Set it when more than one ingress process runs (see docs/identity.md).",
        )
        key = RSAKey.generate_key(2048, parameters={"use": "sig", "alg": "RS256"})
        key.ensure_kid()
        return cls(key, previous, ephemeral=True)

    def jwks(self) -> dict[str, Any]:
        return dict(KeySet([self.key, *self.previous]).as_dict(private=False))

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode({"alg": "RS256", "kid": self.key.kid, "typ": "JWT"}, claims, self.key)
