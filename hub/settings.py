"""Settings of the hub, read from the environment (prefix ``HUB_``) or a ``.env`` file.

Secrets (system keys, partner credentials) come from here, never from the repository.
"""

from __future__ import annotations

import os
from collections import ChainMap
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from dotenv import dotenv_values
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["HubSettings", "env_file", "env_file_values", "environment"]


class HubSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HUB_", env_file=".env", extra="ignore")

    database_url: str = Field(
        default="sqlite+aiosqlite:///./var/hub.db",
        description="SQLAlchemy URL of the message store. SQLite file by default; "
        "PostgreSQL in production, e.g. postgresql+psycopg://hub@db/hub.",
    )
    database_pool_size: int = Field(
        default=10,
        ge=1,
        le=1000,
        description="PostgreSQL connections each hub process keeps open, and as many again at peaks. Keep "
        "processes × 2 × this below the server's max_connections (100 by default). Not used with SQLite.",
    )
    broker_url: str = Field(default="amqp://guest:guest@127.0.0.1:5672/", description="RabbitMQ AMQP URL.")
    broker_namespace: str = Field(
        default="hub",
        pattern=r"^[a-z][a-z0-9_-]{0,40}$",
        description="Prefix of every exchange and queue the hub declares.",
    )
    queue_type: Literal["quorum", "classic"] = Field(
        default="quorum", description="RabbitMQ queue type of target, retry and dead-letter queues."
    )
    routes_dir: Path = Field(default=Path("routes"), description="Folder of the routing tables (*.yaml).")
    http_host: str = Field(default="127.0.0.1", description="Address the ingress API listens on.")
    http_port: int = Field(default=8080, description="Port of the ingress API.")
    prefetch: int = Field(default=64, ge=1, le=10000, description="Unacknowledged messages per worker.")
    delivery_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        description="Longest time one delivery attempt may take before it counts as failed.",
    )
    publish_timeout_seconds: float = Field(
        default=10.0, gt=0, description="Longest wait for RabbitMQ to confirm a publish."
    )
    shutdown_grace_seconds: float = Field(
        default=10.0,
        ge=0,
        le=3600,
        description="On SIGTERM or SIGINT, how long requests and deliveries under way may take to finish; "
        "then they are cancelled (their messages go back to RabbitMQ, unacknowledged). The process exits "
        'within this + 5 s; a second signal exits at once (docs/reliability.md, "Stopping").',
    )
    outbox_relay_after_seconds: float = Field(
        default=30.0,
        gt=0,
        description="A stored message whose publish was never confirmed is republished after this long.",
    )
    overdue_retry_after_seconds: float = Field(
        default=15.0,
        gt=0,
        description="A retry whose copy has not come back from its RabbitMQ retry tier this long after it was "
        "due is sent again by the target's worker (the copy is lost; see docs/reliability.md).",
    )
    batch_linger_ms: int = Field(
        default=20, ge=0, description="How long a worker waits to fill a batch for targets that take batches."
    )
    max_body_bytes: int = Field(default=1_048_576, description="Largest request body the ingress accepts.")
    ingress_shortcut: bool = Field(
        default=True,
        description="Answer POST /v1/messages with a plain ASGI handler instead of the FastAPI route "
        "(same checks and answers, about a quarter less CPU per message); false only to rule it out.",
    )
    admin_key: SecretStr | None = Field(
        default=None, description="Key that may read every message and replay (ops); unset = no admin access."
    )
    demo: bool = Field(
        default=False,
        description="Set by `hub run --demo`, never in production: targets may keep the route files' sample "
        "secrets, login redirects and assertion issuers follow the request's Host when no public URL is set, and "
        "the console cookie goes over plain http.",
    )
    allow_sample_secrets: bool = Field(
        default=False,
        description="Let targets use sample or empty secrets (sample-…, mock-…, …not-real, change-me) outside "
        "--demo: only for tests against the mock systems. Unset, the hub refuses to start with one and names "
        "the variable to set (docs/security.md).",
    )
    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING or ERROR.")
    log_format: Literal["json", "console"] = Field(
        default="json", description="json: one JSON object per line (production); console: for people."
    )

    # --- what the operations endpoints show, and to whom (docs/security.md) ---------------------
    metrics_cache_seconds: float = Field(
        default=15.0,
        ge=0,
        le=3600,
        description="The /metrics gauges read from RabbitMQ and the store (queue depths, open deliveries, "
        "target health) are read again at most this often; scrapes in between get the last reading. 0 = "
        "on every scrape.",
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="When set, /metrics answers only `Authorization: Bearer <token>` (Prometheus: "
        "`authorization: {credentials: ...}`) or HTTP Basic with the token as password. Unset = open.",
    )
    docs_password: SecretStr | None = Field(
        default=None,
        description="When set, /docs, /redoc and /openapi.json ask for HTTP Basic auth (user HUB_DOCS_USER, "
        "this password) or `Authorization: Bearer <password>`. Unset = open.",
    )
    docs_user: str = Field(default="docs", min_length=1, description="User name of the API docs' Basic auth.")

    # --- ops console (hub/console, docs/console.md) ---------------------------------------------
    console_admin_password: SecretStr | None = Field(
        default=None,
        description="Password of the local console account 'admin' (role operator), for a first install: "
        "a hash printed by `hub console hash-password` (or the password itself). Unset = no local admin.",
    )
    console_users: dict[str, str] = Field(
        default_factory=dict,
        description='More local console accounts, JSON {"name": "<viewer|operator>:<hash>"}; '
        "`hub console hash-password --user NAME --role ROLE` prints an entry.",
    )
    console_secret_key: SecretStr | None = Field(
        default=None,
        description="Key that signs console login cookies (32+ characters). Unset = a random key per process: "
        "logins end at every restart and are not shared between ingress processes.",
    )
    console_session_hours: float = Field(default=12.0, gt=0, description="A console login lasts this long.")
    console_secure_cookie: bool = Field(
        default=True,
        description="Send the console cookies only over HTTPS (Secure). `hub run --demo` sets it false, since "
        "the demo serves plain http; set it false only for a console reached without TLS on a closed network.",
    )
    console_oidc_issuer: str | None = Field(
        default=None,
        description="OIDC provider of console logins (VNeID or the portal SSO), e.g. https://sso.example.vn/realms/x; "
        "its /.well-known/openid-configuration is read. Unset = local accounts only.",
    )
    console_oidc_client_id: str | None = Field(default=None, description="Client id of the console at the provider.")
    console_oidc_client_secret: SecretStr | None = Field(default=None, description="Client secret (confidential).")
    console_oidc_scopes: str = Field(default="openid profile", description="Scopes asked for at login.")
    console_oidc_identity_claim: str = Field(
        default="sub", description="ID-token claim that names the official (sub, email, SoDinhDanh, …)."
    )
    console_oidc_roles: dict[str, str] = Field(
        default_factory=dict,
        description='Who may use the console after an OIDC login, JSON {"<identity claim value>": "viewer|operator"}. '
        "Everyone else is refused.",
    )
    console_oidc_label: str = Field(default="VNeID", description="Name of the provider on the login button.")
    console_public_url: str | None = Field(
        default=None,
        description="External base URL of the hub (https://hub.example.vn) for the OIDC redirect; required "
        "when HUB_CONSOLE_OIDC_ISSUER is set (only `hub run --demo` takes it from the request's Host).",
    )

    # --- identity: logins through the hub (the vneid plugin, docs/identity.md) ------------------------
    identity_public_url: str | None = Field(
        default=None,
        description="External base URL of the hub (https://lgsp.example.vn) for VNeID logins: the redirect URI "
        "registered at VNeID is <it>/v1/identity/callback, and it is the issuer of identity assertions. "
        "Required when a route file has a login route (only `hub run --demo` takes it from the request's Host).",
    )
    identity_signing_key_file: Path | None = Field(
        default=None,
        description="PEM file of the RSA private key that signs identity assertions (RS256); its public key is "
        "published at /v1/identity/jwks.json. Unset = a random key per process: assertions then verify only "
        "against the process that signed them, so set it whenever more than one ingress process runs.",
    )
    identity_previous_key_file: Path | None = Field(
        default=None,
        description="PEM file of the previous signing key, still published in the JWKS during a key rotation.",
    )
    identity_secure_cookie: bool = Field(
        default=False, description="Send the login-binding cookie only over HTTPS (set true behind a TLS proxy)."
    )


def env_file() -> Path:
    """The ``.env`` file HubSettings reads (relative to the working directory)."""
    return Path(str(HubSettings.model_config.get("env_file") or ".env"))


def env_file_values() -> dict[str, str]:
    """The variables of the ``.env`` file, parsed as pydantic-settings parses it; {} without one."""
    path = env_file()
    return {k: v for k, v in dotenv_values(path).items() if v is not None} if path.is_file() else {}


def environment() -> Mapping[str, str]:
    """The process environment over the variables of ``.env``, the way HubSettings reads them.

    Systems' keys (``key_env``) and the ``${VAR}`` of route files are looked up here, so a variable kept
    in ``.env`` works there as it does for a ``HUB_*`` setting; one set in the environment wins. Read
    afresh on every call (at start-up only), so the environment of the moment counts.
    """
    return ChainMap(os.environ, env_file_values())
