"""Who is calling: a sending system by its key, or an operator with the admin key.

Keys come from the environment or ``.env`` (each system's ``key_env``, and ``HUB_ADMIN_KEY``); they are
compared in constant time. One instance serves every HTTP endpoint of the ingress.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from typing import TYPE_CHECKING

import structlog

from hub.errors import HubError
from hub.routing import SystemSpec
from hub.settings import environment

if TYPE_CHECKING:
    from hub.bootstrap import Hub

__all__ = ["AuthenticationError", "SystemKeys"]

log = structlog.get_logger(__name__)


class AuthenticationError(HubError):
    """No key, or a key the hub does not know (answered 401)."""


class SystemKeys:
    """Maps ``Authorization: Bearer <key>`` to the calling system."""

    def __init__(self, systems: Iterable[SystemSpec], admin_key: str | None) -> None:
        self._keys: list[tuple[bytes, SystemSpec]] = []
        env = environment()
        for system in systems:
            key = env.get(system.key_env)
            if key:
                self._keys.append((key.encode(), system))
            else:
                log.warning("system_without_key", system=system.id, key_env=system.key_env)
        self._admin = admin_key.encode() if admin_key else None

    @classmethod
    def for_hub(cls, hub: Hub) -> SystemKeys:
        admin = hub.settings.admin_key.get_secret_value() if hub.settings.admin_key else None
        return cls(hub.routes.systems.values(), admin)

    def identify(self, authorization: str | None) -> SystemSpec | None:
        """The calling system, or ``None`` for the admin key; raise AuthenticationError otherwise."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise AuthenticationError("Send your system key as 'Authorization: Bearer <key>'.")
        given = token.encode()
        found: SystemSpec | None = None
        for key, system in self._keys:
            if hmac.compare_digest(given, key):
                found = system
        if found is not None:
            return found
        if self._admin is not None and hmac.compare_digest(given, self._admin):
            return None
        raise AuthenticationError("The system key is not valid; check the key the hub's operators gave you.")
