"""The ops console: a web dashboard served by the hub under ``/console`` (see docs/console.md).

Overview of systems, targets and routes; a dossier's timeline; dead letters with replay and
discard; logins with roles (viewer, operator), local accounts or an OIDC provider.
"""

from hub.console._router import create_console_router

__all__ = ["create_console_router"]
