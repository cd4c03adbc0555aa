"""The published plugin interface: the one core module a plugin imports.

An external system (a ministry's software, a payment platform, a notification channel) is a *plugin*:
a Python package that exposes a :class:`Plugin` object through the entry-point group ``hub.plugins``::

    # pyproject.toml of the plugin's package (this repository's own plugins are listed the same way)
    [project.entry-points."hub.plugins"]
    civil_registry = "civil_registry_hub:plugin"

Once the package is installed beside the hub, ``adapter: civil_registry`` can be named in a route file
and the plugin's endpoints, background loops and ``hub`` sub-commands are there; the core is not edited.

What a plugin offers the core is :class:`Plugin`; what the core offers a plugin is :class:`HubContext`
(originate a message, read a dossier's latest state, record an audit entry, its own tables through the
store's engine). Everything else a plugin needs from the core (the adapter protocols, the envelope,
the error hierarchy, duration parsing) is re-exported here, so that ``hub.plugin`` is the whole
contract; docs/plugins.md shows the smallest complete plugin.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

import typer

from hub.adapter import (
    Adapter,
    AdapterFactory,
    ConfirmsDelivery,
    DeliveryContext,
    DescribesCheck,
    IdentityProvider,
    LoginRequest,
    RequestAdapter,
    RequestContext,
)
from hub.adapter_config import AdapterConfig, BaseUrl, Duration, DurationOrOff, Secret, Text
from hub.contract import SYSTEM_KEY, Problem, problem_responses  # a plugin's endpoints in the OpenAPI document
from hub.edge import BodyTooLargeError, control_characters, json_problem, read_body
from hub.envelope import Envelope, normalize_text
from hub.errors import (
    BrokerUnavailableError,
    ConfigurationError,
    DeliveryError,
    HubError,
    PermanentDeliveryError,
    StoreUnavailableError,
    TransientDeliveryError,
    UnusableReplyError,
)
from hub.http_errors import (
    body_snippet,
    http_status_failure,
    parse_retry_after,
    redact,
    redact_error,
    transport_failure,
)
from hub.ratelimit import RateLimiter  # token buckets of a route's rate_limit (request-reply, login)
from hub.routing import Route, SystemSpec, parse_duration, parse_rate
from hub.store import TableSessions, as_utc, reachable, utc_now

if TYPE_CHECKING:
    from fastapi import APIRouter
    from pydantic import BaseModel
    from sqlalchemy import MetaData
    from sqlalchemy.ext.asyncio import AsyncEngine

    from hub.settings import HubSettings

__all__ = [
    "ENTRY_POINT_GROUP",
    "SYSTEM_KEY",
    "Adapter",
    "AdapterConfig",
    "AdapterFactory",
    "AuditRecord",
    "BaseUrl",
    "BodyTooLargeError",
    "BrokerUnavailableError",
    "ConfigurationError",
    "ConfirmsDelivery",
    "DeliveryContext",
    "DeliveryError",
    "DescribesCheck",
    "DossierState",
    "Duration",
    "DurationOrOff",
    "Envelope",
    "Extension",
    "HubContext",
    "HubError",
    "HubOpener",
    "IdentityProvider",
    "LoginRequest",
    "OriginatedMessage",
    "PermanentDeliveryError",
    "Plugin",
    "Problem",
    "RateLimiter",
    "RequestAdapter",
    "RequestContext",
    "Route",
    "Secret",
    "StoreUnavailableError",
    "SystemSpec",
    "TableSessions",
    "Text",
    "TransientDeliveryError",
    "UnusableReplyError",
    "UsesHubContext",
    "as_utc",
    "body_snippet",
    "control_characters",
    "http_status_failure",
    "json_problem",
    "normalize_text",
    "parse_duration",
    "parse_rate",
    "parse_retry_after",
    "problem_responses",
    "reachable",
    "read_body",
    "redact",
    "redact_error",
    "run_command",
    "transport_failure",
    "utc_now",
]

#: The entry-point group the hub reads its plugins from.
ENTRY_POINT_GROUP = "hub.plugins"


@dataclass(frozen=True, slots=True)
class OriginatedMessage:
    """A message the hub stored on a plugin's behalf (``created`` False: an earlier call with the same
    idempotency key stored it already)."""

    id: str
    created: bool
    targets: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DossierState:
    """One ``dossier.upserted`` the hub accepted: the dossier's full state, and its place in the hub's order."""

    seq: int
    message_id: str
    source: str
    idempotency_key: str | None
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One entry of the audit trail (identity lookups and logins): who asked about whom, why, and how it
    ended. ``subject`` (an ID number) is stored masked; the other fields as given."""

    kind: str
    route: str
    system: str
    outcome: str
    request_id: str
    official: str | None = None
    agency: str | None = None
    purpose: str | None = None
    subject: str | None = None
    detail: str | None = None


class HubContext(Protocol):
    """What the core offers a plugin in a running hub process."""

    @property
    def settings(self) -> HubSettings: ...

    @property
    def schemas(self) -> Mapping[str, type[BaseModel]]:
        """Schema name → model: the canonical messages and every plugin's."""
        ...

    @property
    def engine(self) -> AsyncEngine:
        """The store's engine, for the plugin's own tables (through :class:`TableSessions`, or wrap calls in
        :func:`reachable`)."""
        ...

    def targets_using(self, adapter: str) -> list[str]:
        """The targets of the route files whose ``adapter:`` is ``adapter``."""
        ...

    def adapter(self, target_id: str) -> object:
        """A new adapter of ``target_id``, configured from its route file (the caller closes it)."""
        ...

    def routes_of_mode(self, mode: str) -> Mapping[str, Route]:
        """The routes of one ``mode:`` (deliver, request-reply, login) by name."""
        ...

    def system(self, system_id: str) -> SystemSpec | None:
        """A sending system of the route files."""
        ...

    def identify(self, authorization: str | None) -> SystemSpec | None:
        """The system whose key is in ``Authorization: Bearer …``; None for the admin key. Raises
        :class:`HubError` (answer 401) when there is no valid key."""
        ...

    async def originate(
        self, *, message_type: str, payload: dict[str, Any], source: str, idempotency_key: str
    ) -> OriginatedMessage | None:
        """Accept a message the hub itself produces (from a callback, a poll) as if ``source`` had posted
        it: checked against its route's schema, stored, published. None when no route carries the type.
        Raises :class:`StoreUnavailableError` (nothing stored; call again) and :class:`HubError` when the
        route's schema refuses the payload."""
        ...

    async def latest_state(self, dossier_code: str) -> DossierState | None:
        """The newest ``dossier.upserted`` the hub accepted for the dossier, from any system."""
        ...

    async def dossier_states(
        self,
        dossier_code: str,
        *,
        source: str | None = None,
        after_seq: int | None = None,
        before_seq: int | None = None,
        limit: int | None = None,
    ) -> list[DossierState]:
        """The ``dossier.upserted`` of the dossier, newest first: only ``source``'s, and only with a ``seq``
        strictly between ``after_seq`` and ``before_seq``, when given."""
        ...

    async def audit(self, record: AuditRecord) -> None:
        """Add ``record`` to the audit trail (``hub audit`` lists it)."""
        ...


@runtime_checkable
class UsesHubContext(Protocol):
    """An adapter that keeps records of its own in the hub's store (a payment ledger, a shipment book):
    the core calls ``bind`` with the hub's context right after the factory built it."""

    def bind(self, context: HubContext) -> None: ...


#: Opens a hub context for a command-line run (settings from the environment; the store migrated,
#: the broker connected when asked) and closes it afterwards.
HubOpener = Callable[..., AbstractAsyncContextManager[HubContext]]
_T = TypeVar("_T")


def run_command(open_hub: HubOpener, action: Callable[[HubContext], Awaitable[_T]], *, broker: bool = False) -> _T:
    """Run one command of a plugin: open the hub (the store migrated, the broker connected when asked), run
    ``action``, close. A setting or store that does not work ends the command with its sentence and exit
    code 3, Ctrl-C with 130, as the hub's own commands do."""

    async def main() -> _T:
        async with open_hub(broker=broker) as context:
            return await action(context)

    try:
        return asyncio.run(main())
    except (ConfigurationError, StoreUnavailableError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(3) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


@dataclass(slots=True)
class Extension:
    """What a plugin adds to an ingress process: HTTP endpoints, loops that run while it serves (a
    reconciliation, a tracking poll), and what to close when it stops."""

    routers: Sequence[APIRouter] = ()
    loops: Sequence[Callable[[], Coroutine[Any, Any, None]]] = ()
    aclose: Callable[[], Awaitable[None]] | None = None


@dataclass(frozen=True, slots=True)
class Plugin:
    """What a plugin offers the core.

    - ``adapters``: ``adapter:`` names usable in route files → factories.
    - ``extend``: called once per ingress process with its :class:`HubContext`; returns the endpoints
      and loops of the plugin's flows (``None``: nothing to add for this hub's route files).
    - ``commands``: ``hub <name> …`` sub-command groups, built with a :data:`HubOpener`.
    - ``schemas``: the message types it brings, by the name route files use (``<system>.<message>/v1``)
      → pydantic model; checked, stored and published like the canonical ones.
    - ``tables``: the SQLAlchemy metadata of the plugin's own tables (checked against the migrations).
    - ``migrations``: the folder of the plugin's Alembic versions for tables of its own (a branch
      whose first revision ``depends_on`` the core's head).
    """

    name: str
    adapters: Mapping[str, AdapterFactory] = field(default_factory=dict)
    extend: Callable[[HubContext], Extension | None] | None = None
    commands: Callable[[HubOpener], Mapping[str, typer.Typer]] | None = None
    schemas: Mapping[str, type[BaseModel]] = field(default_factory=dict)
    tables: MetaData | None = None
    migrations: Path | None = None
