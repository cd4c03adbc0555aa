"""VNeID, the national electronic identity, as a hub plugin: logins through the hub.

- ``provider``: the OpenID Connect relying party (authorization code + PKCE, on authlib), the adapter
  of ``adapter: vneid`` targets;
- ``mapping``: VNeID's claims → the canonical identity;
- ``login``: the ``/v1/identity`` endpoints of ``mode: login`` routes (start, callback, assertions, JWKS);
- ``assertions``: the hub's signed identity assertions; ``sessions`` and ``tables``: logins in progress.
"""

from collections.abc import Mapping
from typing import Any

from adapters.vneid.login import create_login_extension
from adapters.vneid.provider import VNeIDProvider
from adapters.vneid.tables import VNeIDTables
from hub.plugin import ConfigurationError, Plugin

__all__ = ["VNeIDProvider", "create_adapter", "plugin"]


def create_adapter(target_id: str, config: Mapping[str, Any]) -> VNeIDProvider:
    """Build from a target's config: ``issuer``, ``client_id``, ``client_secret`` (confidential client),
    ``scopes`` (default "openid profile"), ``timeout_seconds`` (10), ``loa_claim`` (``acr``),
    ``jwks_refresh_seconds`` (10: an unknown key id re-reads the provider's JWKS at most this often)."""
    missing = [key for key in ("issuer", "client_id") if not config.get(key)]
    if missing:
        raise ConfigurationError(f"Target '{target_id}' (VNeID) needs {' and '.join(missing)} in its config.")
    try:
        timeout = float(str(config.get("timeout_seconds", 10)))
        jwks_refresh = float(str(config.get("jwks_refresh_seconds", 10)))
    except ValueError as exc:
        raise ConfigurationError(
            f"Target '{target_id}': timeout_seconds and jwks_refresh_seconds must be numbers of seconds."
        ) from exc
    secret = config.get("client_secret")
    return VNeIDProvider(
        target_id,
        issuer=str(config["issuer"]),
        client_id=str(config["client_id"]),
        client_secret=str(secret) if secret else None,
        scopes=str(config.get("scopes") or "openid profile"),
        timeout=timeout,
        loa_claim=str(config.get("loa_claim") or "acr"),
        jwks_refresh_seconds=jwks_refresh,
    )


#: The hub's plugin entry (pyproject.toml, entry-point group ``hub.plugins``).
plugin = Plugin(
    name="vneid",
    adapters={"vneid": create_adapter},
    extend=create_login_extension,
    tables=VNeIDTables.metadata,
)
