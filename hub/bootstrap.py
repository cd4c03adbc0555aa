"""The composition root: settings, routes, store, broker, metrics and adapters are wired here.

Everything else receives what it needs as arguments. Nothing connects at import time.
"""

from __future__ import annotations

import re
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib.metadata import entry_points

from pydantic import BaseModel

from hub.adapter import Adapter, AdapterFactory, RequestAdapter
from hub.adapter_config import sample_secrets_refused
from hub.broker import Broker, Topology
from hub.errors import BrokerUnavailableError, ConfigurationError
from hub.host import PluginHost
from hub.metrics import HubMetrics
from hub.observability import configure_logging
from hub.plugin import ENTRY_POINT_GROUP, Extension, HubContext, Plugin, UsesHubContext
from hub.routing import RouteTable, load_routes, resolve_target_config
from hub.settings import HubSettings
from hub.store import MessageStore
from schemas import SCHEMAS

__all__ = [
    "Hub",
    "adapter_registry",
    "build_hub",
    "known_schema_names",
    "load_plugins",
    "open_hub",
    "schema_registry",
]


def load_plugins() -> list[Plugin]:
    """Every plugin installed beside the hub (entry-point group ``hub.plugins``), in name order.

    A plugin that cannot be loaded, or two that offer the same adapter name, stop the hub with a
    sentence: routes would otherwise name adapters that are silently missing.
    """
    plugins: list[Plugin] = []
    for entry_point in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        try:
            loaded = entry_point.load()
        except Exception as exc:
            raise ConfigurationError(
                f"The plugin '{entry_point.name}' ({entry_point.value}) cannot be loaded ({type(exc).__name__}: "
                f"{exc}); reinstall its package or uninstall it."
            ) from exc
        if not isinstance(loaded, Plugin):
            raise ConfigurationError(
                f"The entry point '{entry_point.name}' ({entry_point.value}) of group {ENTRY_POINT_GROUP} is not "
                "a hub.plugin.Plugin; fix the plugin's package."
            )
        plugins.append(loaded)
    owners: dict[str, str] = {}
    for plugin in plugins:
        for name in plugin.adapters:
            if name in owners:
                raise ConfigurationError(
                    f"The plugins '{owners[name]}' and '{plugin.name}' both offer the adapter '{name}'; "
                    "uninstall one of them."
                )
            owners[name] = plugin.name
    return plugins


def adapter_registry(plugins: Sequence[Plugin] | None = None) -> Mapping[str, AdapterFactory]:
    """Adapter name (``adapter:`` in a route file) → factory, from every plugin."""
    return {name: factory for plugin in plugins or load_plugins() for name, factory in plugin.adapters.items()}


def schema_registry(plugins: Sequence[Plugin] | None = None) -> Mapping[str, type[BaseModel]]:
    """Schema name (``schema:`` in a route file) → model: the canonical messages and every plugin's own.
    A plugin that brings a name already taken stops the hub with a sentence."""
    registry: dict[str, type[BaseModel]] = dict(SCHEMAS)
    for plugin in load_plugins() if plugins is None else plugins:
        for name, model in plugin.schemas.items():
            if name in registry:
                raise ConfigurationError(
                    f"The plugin '{plugin.name}' brings the schema '{name}', which the hub already has; "
                    "give the plugin's message a name of its own (e.g. <system>.<message>/v1)."
                )
            registry[name] = model
    return registry


#: ``${VAR}`` or ``${VAR:-default}`` in a route file's value.
_ENV_REFERENCE = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)")


def _variables_of(config: Mapping[str, object]) -> dict[str, str]:
    """Setting → the environment variable its ``${VAR}`` reads, for the sentences that name what to set."""
    found = {key: _ENV_REFERENCE.search(value) for key, value in config.items() if isinstance(value, str)}
    return {key: match.group(1) for key, match in found.items() if match is not None}


def known_schema_names(plugins: Sequence[Plugin] | None = None) -> list[str]:
    return list(schema_registry(plugins))


@dataclass
class Hub:
    """Everything one hub process uses, built once by :func:`build_hub`."""

    settings: HubSettings
    routes: RouteTable
    store: MessageStore
    broker: Broker
    metrics: HubMetrics
    adapters: Mapping[str, AdapterFactory] = field(default_factory=dict)
    plugins: Sequence[Plugin] = ()
    #: Schema name → model (:func:`schema_registry`).
    schemas: Mapping[str, type[BaseModel]] = field(default_factory=lambda: dict(SCHEMAS))
    #: Why the hub is not ready yet although the broker and the store answer (``hub run`` while it
    #: still declares its queues); None once it is. ``/readyz`` reports it.
    starting: str | None = None
    _context: HubContext | None = field(default=None, init=False, repr=False)

    @property
    def context(self) -> HubContext:
        """What the core offers this hub's plugins (one per process)."""
        if self._context is None:
            self._context = PluginHost(self)
        return self._context

    def extensions(self) -> list[Extension]:
        """What every plugin adds to this hub's ingress (endpoints, loops)."""
        found = [plugin.extend(self.context) for plugin in self.plugins if plugin.extend is not None]
        return [extension for extension in found if extension is not None]

    @property
    def sample_secrets_allowed(self) -> bool:
        """Whether targets may keep sample secrets: under ``hub run --demo`` or HUB_ALLOW_SAMPLE_SECRETS."""
        return self.settings.demo or self.settings.allow_sample_secrets

    async def check_targets(self) -> None:
        """Build (and close) every target's adapter once, so that a setting it refuses (a sample secret
        outside the demo, a malformed value) stops the hub at start with its sentence, instead of
        surfacing at the first message or callback."""
        for target_id in self.routes.targets:
            adapter = self.build_adapter(target_id)
            close = getattr(adapter, "aclose", None)
            if callable(close):
                await close()

    def build_adapter(self, target_id: str) -> object:
        """The adapter object of ``target_id`` (whatever protocols it implements)."""
        target = self.routes.targets.get(target_id)
        if target is None:
            raise ConfigurationError(
                f"There is no target '{target_id}'; the route files declare: {', '.join(sorted(self.routes.targets))}."
            )
        factory = self.adapters[target.adapter]
        with sample_secrets_refused(not self.sample_secrets_allowed, variables=_variables_of(target.config)):
            adapter = factory(target_id, resolve_target_config(target))
        if isinstance(adapter, UsesHubContext):  # adapters that keep records of their own (a payment ledger)
            adapter.bind(self.context)
        return adapter

    def create_adapter(self, target_id: str) -> Adapter:
        adapter = self.build_adapter(target_id)
        if not isinstance(adapter, Adapter):
            raise ConfigurationError(
                f"Target '{target_id}' uses an adapter that cannot deliver messages; route only "
                "request-reply or login types to it."
            )
        return adapter

    def create_request_adapter(self, target_id: str) -> RequestAdapter:
        adapter = self.build_adapter(target_id)
        if not isinstance(adapter, RequestAdapter):
            raise ConfigurationError(
                f"Target '{target_id}' uses an adapter that cannot answer requests; "
                "do not route mode: request-reply types to it."
            )
        return adapter

    async def start(self) -> None:
        """Migrate the store and declare every target's queues (needs both services up)."""
        await self.store.migrate()
        await self.broker.connect()
        for target in self.routes.delivery_targets():
            await self.broker.declare_target(target, self.routes.retry_delays(target))
        for target in self.routes.request_targets():
            await self.broker.declare_request_queue(target)

    async def aclose(self) -> None:
        await self.broker.aclose()
        await self.store.aclose()


def build_hub(settings: HubSettings | None = None) -> Hub:
    settings = settings or HubSettings()
    plugins = load_plugins()
    adapters = adapter_registry(plugins)
    schemas = schema_registry(plugins)
    routes = load_routes(settings.routes_dir, known_schemas=list(schemas), known_adapters=adapters)
    topology = Topology(settings.broker_namespace, settings.queue_type)
    return Hub(
        settings=settings,
        routes=routes,
        store=MessageStore.open(settings.database_url, pool_size=settings.database_pool_size),
        broker=Broker(settings.broker_url, topology, publish_timeout=settings.publish_timeout_seconds),
        metrics=HubMetrics.create(),
        adapters=adapters,
        plugins=plugins,
        schemas=schemas,
    )


@asynccontextmanager
async def open_hub(settings: HubSettings | None = None, *, broker: bool = False) -> AsyncIterator[HubContext]:
    """A hub context for one command-line run (a plugin's command): logging configured as the hub's
    other commands do, the store migrated, the broker connected when asked (when it cannot be reached,
    a sentence on stderr says so and the run goes on: messages the command originates stay stored,
    and the ingress's outbox relay publishes them), everything closed afterwards."""
    settings = settings or HubSettings()
    configure_logging(settings.log_level, settings.log_format)
    hub = build_hub(settings)
    try:
        await hub.store.migrate()
        if broker:
            try:
                await hub.broker.connect()
            except BrokerUnavailableError as exc:
                sys.stderr.write(f"{exc} Messages are stored and published by the ingress later.\n")
        yield hub.context
    finally:
        await hub.aclose()
