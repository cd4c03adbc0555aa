"""VNeID, the national electronic identity, as a hub plugin: logins through the hub.

- ``provider``: the OpenID Connect relying party (authorization code + PKCE, on authlib), the adapter
  of ``adapter: vneid`` targets;
- ``mapping``: VNeID's claims → the canonical identity;
- ``login``: the ``/v1/identity`` endpoints of ``mode: login`` routes (start, callback, assertions, JWKS);
- ``assertions``: the hub's signed identity assertions; ``sessions`` and ``tables``: logins in progress.
"""

from collections.abc import Mapping
from typing import Any, ClassVar

from adapters.vneid.login import create_login_extension
from adapters.vneid.provider import VNeIDProvider
from adapters.vneid.tables import VNeIDTables
from hub.plugin import AdapterConfig, BaseUrl, Duration, DurationOrOff, Plugin, Secret, Text

__all__ = ["VNeIDProvider", "create_adapter", "plugin"]


class VNeIDConfig(AdapterConfig):
    """Settings of a ``vneid`` target: the OpenID Connect provider and the hub's client at it."""

    adapter: ClassVar[str] = "vneid"

    issuer: BaseUrl
    client_id: Text
    client_secret: Secret | None = None  # set for a confidential client
    scopes: Text = "openid profile"
    timeout_seconds: Duration = 10.0
    loa_claim: Text = "acr"
    #: An unknown key id re-reads the provider's JWKS at most this often.
    jwks_refresh_seconds: DurationOrOff = 10.0  # 0: at every unknown key id


def create_adapter(target_id: str, config: Mapping[str, Any]) -> VNeIDProvider:
    """Build the provider of target ``target_id`` from its settings (:class:`VNeIDConfig`)."""
    settings = VNeIDConfig.read(target_id, config)
    return VNeIDProvider(
        target_id,
        issuer=settings.issuer,
        client_id=settings.client_id,
        client_secret=settings.client_secret,
        scopes=settings.scopes,
        timeout=settings.timeout_seconds,
        loa_claim=settings.loa_claim,
        jwks_refresh_seconds=settings.jwks_refresh_seconds,
    )


#: The hub's plugin entry (pyproject.toml, entry-point group ``hub.plugins``).
plugin = Plugin(
    name="vneid",
    adapters={"vneid": create_adapter},
    extend=create_login_extension,
    tables=VNeIDTables.metadata,
)
