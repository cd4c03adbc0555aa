"""Console logins: local accounts (scrypt hashes), signed cookies, roles, login throttling.

Who is logged in is kept server side (:mod:`hub.console._sessions`); the session cookie carries only the
login's random id, signed with :class:`SessionCodec`.

Two roles: ``viewer`` may look at everything (payloads masked); ``operator`` may also replay
and discard dead letters. Accounts come from the settings (``HUB_CONSOLE_ADMIN_PASSWORD``,
``HUB_CONSOLE_USERS``) or from an OIDC login mapped by ``HUB_CONSOLE_OIDC_ROLES``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from itsdangerous import BadData, URLSafeTimedSerializer

from hub.errors import ConfigurationError
from hub.settings import HubSettings

__all__ = [
    "ADMIN_USER",
    "LocalAccounts",
    "LoginThrottle",
    "Role",
    "Session",
    "SessionCodec",
    "hash_password",
    "verify_password",
]

ADMIN_USER = "admin"
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1
_HASH_PREFIX = "scrypt$"


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"

    @property
    def may_change(self) -> bool:
        """Operators may replay and discard; viewers only look."""
        return self is Role.OPERATOR


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str) -> str:
    """``scrypt$N$r$p$salt$hash`` (what ``hub console hash-password`` prints)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32)
    return f"{_HASH_PREFIX}{_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def is_password_hash(value: str) -> bool:
    return value.startswith(_HASH_PREFIX) and value.count("$") == 5


def verify_password(password: str, encoded: str) -> bool:
    """Compare a password with a hash from :func:`hash_password` in constant time."""
    try:
        _, n, r, p, salt, expected = encoded.split("$")
        digest = hashlib.scrypt(
            password.encode(), salt=_unb64(salt), n=int(n), r=int(r), p=int(p), dklen=len(_unb64(expected))
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(digest, _unb64(expected))


@dataclass(frozen=True, slots=True)
class LocalAccount:
    name: str
    role: Role
    password_hash: str


class LocalAccounts:
    """The console's local accounts: ``admin`` (from HUB_CONSOLE_ADMIN_PASSWORD) and HUB_CONSOLE_USERS."""

    def __init__(self, accounts: dict[str, LocalAccount]) -> None:
        self._accounts = accounts
        # Checked when the name is unknown, so a wrong name takes as long as a wrong password.
        self._decoy = hash_password(secrets.token_urlsafe(16))

    @classmethod
    def from_settings(cls, settings: HubSettings) -> LocalAccounts:
        accounts: dict[str, LocalAccount] = {}
        for name, entry in settings.console_users.items():
            role, _, password_hash = entry.partition(":")
            if role not in {r.value for r in Role} or not is_password_hash(password_hash):
                raise ConfigurationError(
                    f"HUB_CONSOLE_USERS: the entry of '{name}' must be '<viewer|operator>:<hash>'; "
                    f"print one with `hub console hash-password --user {name} --role viewer`."
                )
            accounts[name] = LocalAccount(name, Role(role), password_hash)
        if settings.console_admin_password is not None:
            secret = settings.console_admin_password.get_secret_value()
            if secret:
                stored = secret if is_password_hash(secret) else hash_password(secret)
                accounts[ADMIN_USER] = LocalAccount(ADMIN_USER, Role.OPERATOR, stored)
        return cls(accounts)

    def __bool__(self) -> bool:
        return bool(self._accounts)

    def authenticate(self, name: str, password: str) -> LocalAccount | None:
        account = self._accounts.get(name)
        if account is None:
            verify_password(password, self._decoy)
            return None
        return account if verify_password(password, account.password_hash) else None


@dataclass(frozen=True, slots=True)
class Session:
    """Who is logged in to the console (a row of ``console_sessions``, found by the cookie's id)."""

    user: str
    role: Role
    csrf: str  # sent back with every form and htmx request that changes something, and with the logout
    method: str  # "local" or "oidc"
    key: str = ""  # the row's id: the SHA-256 of the cookie's random id

    @property
    def actor(self) -> str:
        """How replays and discards record who did them."""
        return f"console:{self.user}"


class SessionCodec:
    """Signs and reads the console's cookies: a small JSON document, timestamped and signed (HMAC-SHA256).

    A cookie older than ``max_age_seconds``, altered, signed with another key or for another
    ``purpose``, or not ASCII reads as None: the visitor is simply not logged in.
    """

    def __init__(self, secret: bytes, *, max_age_seconds: int, purpose: str = "hub-console-session") -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt=purpose, signer_kwargs={"digest_method": hashlib.sha256})
        self.max_age_seconds = max_age_seconds

    def dumps(self, data: dict[str, Any]) -> str:
        return self._serializer.dumps(data)

    def loads(self, value: str | None) -> dict[str, Any] | None:
        """The signed data, or None when the value is missing, altered or expired."""
        if not value:
            return None
        try:
            data = self._serializer.loads(value, max_age=self.max_age_seconds)
        except BadData:
            return None
        return data if isinstance(data, dict) else None


class LoginThrottle:
    """After ``limit`` failed logins of one name from one address within ``window`` seconds, refuse more."""

    def __init__(self, *, limit: int = 5, window: float = 900.0) -> None:
        self.limit = limit
        self.window = window
        self._failures: dict[tuple[str, str], deque[float]] = defaultdict(deque)

    def _recent(self, key: tuple[str, str]) -> deque[float]:
        failures = self._failures[key]
        cutoff = time.monotonic() - self.window
        while failures and failures[0] < cutoff:
            failures.popleft()
        return failures

    def wait_seconds(self, name: str, address: str) -> float:
        """0 when a login may be tried now; else how long until it may."""
        failures = self._recent((name, address))
        if len(failures) < self.limit:
            if not failures:
                self._failures.pop((name, address), None)
            return 0.0
        return max(0.0, failures[0] + self.window - time.monotonic())

    def failed(self, name: str, address: str) -> None:
        self._recent((name, address)).append(time.monotonic())

    def succeeded(self, name: str, address: str) -> None:
        self._failures.pop((name, address), None)
