"""``hub console …``: set up console logins (password hashes) and check the console's settings."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Annotated

import httpx
import typer

from hub.console._auth import ADMIN_USER, LocalAccounts, Role, hash_password
from hub.console._oidc import OidcLoginError, OidcProvider
from hub.errors import ConfigurationError
from hub.settings import HubSettings

__all__ = ["console_app"]

console_app = typer.Typer(help="The ops console (/console): logins and settings.", no_args_is_help=True)


@console_app.command("hash-password")
def hash_password_command(
    user: Annotated[str | None, typer.Option(help="Print an entry of HUB_CONSOLE_USERS for this account.")] = None,
    role: Annotated[Role, typer.Option(help="Role of --user: viewer looks, operator also replays and discards.")] = (
        Role.VIEWER
    ),
    stdin: Annotated[bool, typer.Option("--stdin", help="Read the password from standard input.")] = False,
) -> None:
    """Hash a console password (scrypt). Without --user the hash is for the local 'admin' account."""
    if stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < 12:
        typer.echo("Use at least 12 characters: the console can replay and discard messages.", err=True)
        raise typer.Exit(2)
    hashed = hash_password(password)
    if user is None:
        typer.echo(f"HUB_CONSOLE_ADMIN_PASSWORD='{hashed}'")
        typer.echo(f"# logs in as '{ADMIN_USER}' with the role operator", err=True)
    else:
        entry = json.dumps({user: f"{role.value}:{hashed}"})
        typer.echo(f"HUB_CONSOLE_USERS='{entry}'")
        typer.echo("# several accounts: merge the entries into one JSON object", err=True)


@console_app.command("check")
def check() -> None:
    """Say who can log in to the console and whether the OIDC provider answers."""
    settings = HubSettings()
    problems = 0
    try:
        accounts = LocalAccounts.from_settings(settings)
    except ConfigurationError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    names = sorted(settings.console_users) + ([ADMIN_USER] if settings.console_admin_password else [])
    typer.echo(f"local accounts: {', '.join(names) if accounts else 'none'}")
    if settings.console_secret_key is None:
        typer.echo("warning: HUB_CONSOLE_SECRET_KEY is not set; logins end whenever the hub restarts.")
    if settings.console_oidc_issuer and settings.console_oidc_client_id:
        secret = settings.console_oidc_client_secret
        provider = OidcProvider(
            settings.console_oidc_issuer,
            settings.console_oidc_client_id,
            secret.get_secret_value() if secret else None,
        )

        async def discover() -> None:
            async with httpx.AsyncClient(timeout=provider.timeout) as client:
                await provider.metadata(client)

        try:
            asyncio.run(discover())
            typer.echo(
                f"OIDC: {settings.console_oidc_issuer} answers; {len(settings.console_oidc_roles)} account(s) mapped."
            )
        except OidcLoginError as exc:
            typer.echo(f"error: OIDC: {exc}", err=True)
            problems += 1
    else:
        typer.echo("OIDC: not configured (HUB_CONSOLE_OIDC_ISSUER, HUB_CONSOLE_OIDC_CLIENT_ID)")
    if not accounts and not settings.console_oidc_issuer:
        typer.echo(
            "error: nobody can log in; run `hub console hash-password` and set HUB_CONSOLE_ADMIN_PASSWORD.", err=True
        )
        problems += 1
    raise typer.Exit(1 if problems else 0)
