"""Optional locks on what the ingress shows about itself: ``/metrics`` (HUB_METRICS_TOKEN) and the API
docs, ``/docs``, ``/redoc`` and ``/openapi.json`` (HUB_DOCS_PASSWORD). Both are open unless set
(docs/security.md says when to set them).

A lock takes ``Authorization: Bearer <secret>`` (what Prometheus and scripts send) or HTTP Basic with the
secret as password (what a browser asks for), compared in constant time.
"""

from __future__ import annotations

import base64
import binascii
import hmac

from pydantic import SecretStr

__all__ = ["Lock"]


class Lock:
    """One secret guarding some endpoints; ``user`` is the Basic user name it takes (any when None)."""

    def __init__(self, secret: SecretStr | None, *, user: str | None = None, realm: str) -> None:
        self._secret = secret.get_secret_value().encode() if secret is not None else None
        self._user = user
        self.realm = realm

    @property
    def locked(self) -> bool:
        return self._secret is not None

    def opens(self, authorization: str | None) -> bool:
        """Whether ``authorization`` (the header's value) carries the secret; always True without one."""
        if self._secret is None:
            return True
        scheme, _, credentials = (authorization or "").partition(" ")
        scheme = scheme.lower()
        if scheme == "bearer":
            return hmac.compare_digest(credentials.strip().encode(), self._secret)
        if scheme != "basic":
            return False
        try:
            user, _, password = base64.b64decode(credentials.strip(), validate=True).partition(b":")
        except (binascii.Error, ValueError):
            return False
        user_ok = self._user is None or hmac.compare_digest(user, self._user.encode())
        return hmac.compare_digest(password, self._secret) and user_ok

    @property
    def challenge(self) -> dict[str, str]:
        """The 401's header that makes a browser ask for the user name and password."""
        return {"WWW-Authenticate": f'Basic realm="{self.realm}", charset="UTF-8"'}
