"""The ops console: a web dashboard served by the hub under ``/console`` (see docs/console.md).

Overview of systems, targets and routes; a dossier's timeline; dead letters with replay and
discard; logins with roles (viewer, operator), local accounts or an OIDC provider.
"""

from hub.console._router import include_console, router

__all__ = ["include_console", "router"]
