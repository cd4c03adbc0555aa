"""Routing tables: which system may send what, and where each message type goes.

Routes are data (``routes/*.yaml``). This module loads and checks them; errors are
sentences naming the file and line, so a provincial IT officer can fix them without
reading our code. See ``routes/national-portal.yaml`` for an annotated example.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from hub.errors import ConfigurationError

__all__ = [
    "LoginPolicy",
    "RateLimit",
    "RetryPolicy",
    "Route",
    "RouteProblem",
    "RouteTable",
    "SystemSpec",
    "TargetSpec",
    "check_routes",
    "load_routes",
    "parse_duration",
    "parse_rate",
    "resolve_target_config",
]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|m|h)\s*$")
_ENV_REF = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)(?::-([^}]*))?\}")
_SLUG = r"^[a-z][a-z0-9-]{0,62}$"
DEFAULT_REQUEST_TIMEOUT_SECONDS = 10.0


def parse_duration(value: str | float | int) -> float:
    """``"500ms"``, ``"10s"``, ``"1m"``, ``"1h"`` or a number of seconds → seconds."""
    if isinstance(value, int | float):
        if value <= 0:
            raise ValueError(f"a duration must be positive, got {value}")
        return float(value)
    match = _DURATION.match(value)
    if not match:
        raise ValueError(f"{value!r} is not a duration; write it like 500ms, 10s, 1m or 1h")
    seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds <= 0:
        raise ValueError(f"a duration must be positive, got {value!r}")
    return seconds


def parse_rate(value: str | float | int) -> float:
    """``"5/s"``, ``"100/m"``, ``"3600/h"`` or a number (per second) → requests per second."""
    if isinstance(value, int | float):
        rate = float(value)
    else:
        match = _RATE.match(value)
        if not match:
            raise ValueError(f"{value!r} is not a rate; write it like 5/s, 100/m or 3600/h")
        rate = float(match.group(1)) / _UNIT_SECONDS[match.group(2)]
    if rate <= 0:
        raise ValueError(f"a rate must be positive, got {value!r}")
    return rate


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class RetryPolicy(_Spec):
    """How often and how late a transient failure is retried.

    Attempt ``n`` (1-based) that fails waits ``backoff[n-1]`` (the last tier repeats) before
    attempt ``n+1``. After ``attempts`` attempts the message is dead-lettered.
    """

    attempts: int = Field(default=8, ge=1, le=1000)
    backoff: tuple[float, ...] = (1.0, 10.0, 60.0, 600.0)

    @field_validator("backoff", mode="before")
    @classmethod
    def _parse_backoff(cls, value: Any) -> tuple[float, ...]:
        if not isinstance(value, list | tuple) or not value:
            raise ValueError("backoff must be a non-empty list of durations such as [1s, 10s, 1m, 10m]")
        return tuple(parse_duration(v) for v in value)

    def delay_after(self, attempt: int, retry_after: float | None = None) -> float | None:
        """Seconds to wait after failed ``attempt``; ``None`` when no attempt is left.

        When the target asked for ``retry_after`` seconds, the smallest tier that is at
        least that long is used (the longest tier when none is).
        """
        if attempt >= self.attempts:
            return None
        delay = self.backoff[min(attempt, len(self.backoff)) - 1]
        if retry_after is not None and retry_after > delay:
            longer = [tier for tier in self.backoff if tier >= retry_after]
            delay = min(longer) if longer else max(self.backoff)
        return delay


class RateLimit(_Spec):
    """A token bucket in front of a request-reply (or login) route.

    ``rate`` tokens per second refill the bucket, which holds at most ``burst``; a request
    takes one token or is answered 429 with ``Retry-After``. ``per: source`` gives each
    calling system its own bucket; ``per: route`` shares one bucket among all of them.
    """

    rate: float
    burst: int = Field(default=1, ge=1, le=100000)
    per: Literal["source", "route"] = "source"

    @field_validator("rate", mode="before")
    @classmethod
    def _parse_rate(cls, value: Any) -> float:
        if not isinstance(value, str | int | float):
            raise ValueError("rate must be written like 5/s, 100/m or 3600/h")  # noqa: TRY004 - pydantic needs ValueError
        return parse_rate(value)


class LoginPolicy(_Spec):
    """Settings of a ``mode: login`` route (a browser login through the hub, see docs/identity.md)."""

    return_urls: tuple[str, ...] = Field(
        default=(), description="Where the hub may send the browser back to (prefixes of the caller's URLs)."
    )
    min_loa: int | None = Field(default=None, ge=1, le=4, description="Lowest level of assurance accepted.")
    assertion_ttl: float = Field(default=120.0, description="Lifetime of the hub's identity assertion.")

    @field_validator("assertion_ttl", mode="before")
    @classmethod
    def _parse_ttl(cls, value: Any) -> float:
        return parse_duration(value)

    @field_validator("return_urls")
    @classmethod
    def _check_urls(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for url in value:
            if not url.startswith(("https://", "http://")) or url.count("/") < 3:
                raise ValueError(
                    f"return URL {url!r} must be an absolute http(s) URL with a path, like https://x.vn/cb"
                )
        return value


class SystemSpec(_Spec):
    """A system that sends messages to the hub (a one-stop system, a ministry system)."""

    id: str = Field(pattern=_SLUG)
    name: str = ""
    key_env: str = Field(pattern=r"^[A-Z_][A-Z0-9_]*$", description="Environment variable holding its key.")
    allowed_types: tuple[str, ...] = ()


class TargetSpec(_Spec):
    """A system the hub delivers to, through one adapter."""

    id: str = Field(pattern=_SLUG)
    adapter: str
    config: dict[str, Any] = Field(default_factory=dict)
    prefetch: int | None = Field(default=None, ge=1, le=10000)


class Route(_Spec):
    """One message type from its sources to its targets."""

    name: str = Field(pattern=_SLUG)
    type: str = Field(pattern=r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
    schema_name: str = Field(alias="schema")
    targets: tuple[str, ...] = Field(min_length=1)
    sources: tuple[str, ...] | None = None
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    ordering: Literal["none", "latest-state"] = Field(
        default="none",
        description="latest-state: each message is a dossier's full state; an older state is never "
        "sent after a newer one was delivered (it is marked superseded instead).",
    )
    mode: Literal["deliver", "request-reply", "login"] = Field(
        default="deliver",
        description="deliver: fire-and-forget through /v1/messages; request-reply: the caller waits for the "
        "target's answer at /v1/requests/{type}; login: a browser login through the hub (docs/identity.md).",
    )
    timeout: float | None = Field(default=None, description="request-reply: longest wait for the answer.")
    rate_limit: RateLimit | None = None
    login: LoginPolicy | None = None
    description: str = ""

    @field_validator("timeout", mode="before")
    @classmethod
    def _parse_timeout(cls, value: Any) -> float | None:
        return None if value is None else parse_duration(value)

    @property
    def reply_timeout(self) -> float:
        """Seconds a request-reply caller waits (10 s unless the route says otherwise)."""
        return self.timeout if self.timeout is not None else DEFAULT_REQUEST_TIMEOUT_SECONDS


class _RouteFile(_Spec):
    systems: list[SystemSpec] = Field(default_factory=list)
    targets: list[TargetSpec] = Field(default_factory=list)
    routes: list[Route] = Field(default_factory=list)


@dataclass(frozen=True, slots=True)
class RouteProblem:
    """A problem in a route file, with where it is."""

    file: str
    line: int | None
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.severity}: {self.message}"


@dataclass(frozen=True)
class RouteTable:
    """Every system, target and route the hub knows, merged from all route files."""

    systems: Mapping[str, SystemSpec]
    targets: Mapping[str, TargetSpec]
    routes: tuple[Route, ...]
    files: tuple[str, ...] = field(default=())

    def routes_for(self, message_type: str, source: str | None = None) -> list[Route]:
        return [
            r
            for r in self.routes
            if r.type == message_type and (source is None or r.sources is None or source in r.sources)
        ]

    def route_for_target(self, message_type: str, target: str) -> Route | None:
        for r in self.routes:
            if r.type == message_type and target in r.targets:
                return r
        return None

    def message_types(self) -> set[str]:
        return {r.type for r in self.routes}

    def retry_delays(self, target: str) -> set[float]:
        """Every backoff tier any delivery route uses towards ``target`` (one retry queue each)."""
        return {d for r in self.routes if r.mode == "deliver" and target in r.targets for d in r.retry.backoff}

    def delivery_targets(self) -> list[str]:
        """Targets that fire-and-forget routes deliver to (each gets queues and a delivery worker)."""
        return [t for t in self.targets if any(r.mode == "deliver" and t in r.targets for r in self.routes)]

    def request_targets(self) -> list[str]:
        """Targets that answer request-reply routes (each gets a request queue and a request worker)."""
        return [t for t in self.targets if any(r.mode == "request-reply" and t in r.targets for r in self.routes)]


# ----------------------------------------------------------------------------- loading


def _expand_env(value: Any, problems: list[str]) -> Any:
    """Replace ``${VAR}`` and ``${VAR:-default}`` in strings of a target's config."""
    if isinstance(value, str):

        def repl(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            found = os.environ.get(name)
            if found is not None:
                return found
            if default is not None:
                return default
            problems.append(name)
            return ""

        return _ENV_REF.sub(repl, value)
    if isinstance(value, dict):
        return {k: _expand_env(v, problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, problems) for v in value]
    return value


def _node_lines(node: yaml.Node, path: tuple[Any, ...], out: dict[tuple[Any, ...], int]) -> None:
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            out[(*path, key)] = key_node.start_mark.line + 1
            _node_lines(value_node, (*path, key), out)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _node_lines(item, (*path, index), out)


def _line_of(lines: Mapping[tuple[Any, ...], int], loc: tuple[Any, ...]) -> int | None:
    aliases = {"schema_name": "schema"}
    path = tuple(aliases.get(p, p) if isinstance(p, str) else p for p in loc)
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return lines.get(())


def _describe(loc: tuple[Any, ...], data: Any) -> str:
    """Name the item a pydantic location points into, e.g. ``route 'dossier-sync', field retry.attempts``."""
    if len(loc) >= 2 and isinstance(loc[1], int) and isinstance(data, dict):
        section = loc[0]
        items = data.get(section) or []
        item = items[loc[1]] if loc[1] < len(items) and isinstance(items[loc[1]], dict) else {}
        label = item.get("name") or item.get("id") or f"#{loc[1] + 1}"
        kind = {"routes": "route", "targets": "target", "systems": "system"}.get(section, section)
        rest = ".".join(str(p) for p in loc[2:]).replace("schema_name", "schema")
        return f"{kind} '{label}'" + (f", field '{rest}'" if rest else "")
    return ".".join(str(p) for p in loc) or "the file"


def _load_file(path: Path, problems: list[RouteProblem]) -> _RouteFile | None:
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        problems.append(RouteProblem(name, None, "The file is not UTF-8 text; save it as UTF-8."))
        return None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        problems.append(RouteProblem(name, line, f"The file is not valid YAML: {problem}."))
        return None
    if data is None:
        return _RouteFile()
    if not isinstance(data, dict):
        problems.append(RouteProblem(name, 1, "A route file must be a mapping with 'systems', 'targets' and 'routes'."))
        return None
    lines: dict[tuple[Any, ...], int] = {}
    if node is not None:
        _node_lines(node, (), lines)
    try:
        return _RouteFile.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            loc = tuple(err["loc"])
            message = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                message = f"'{loc[-1]}' is not a known setting here; check its spelling"
            elif err["type"] == "missing":
                message = f"'{loc[-1]}' is required"
            problems.append(RouteProblem(name, _line_of(lines, loc), f"In {_describe(loc, data)}: {message}."))
        return None


def check_routes(
    paths: Iterable[Path],
    *,
    known_schemas: Iterable[str],
    known_adapters: Iterable[str],
) -> tuple[RouteTable | None, list[RouteProblem]]:
    """Load and cross-check route files; return the table (when error-free) and every problem found."""
    problems: list[RouteProblem] = []
    schemas, adapters = set(known_schemas), set(known_adapters)
    systems: dict[str, SystemSpec] = {}
    targets: dict[str, TargetSpec] = {}
    routes: list[Route] = []
    origin: dict[tuple[str, str], str] = {}
    files = sorted(paths)
    if not files:
        problems.append(RouteProblem("routes", None, "No route files (*.yaml) were found; add at least one."))
    for path in files:
        loaded = _load_file(path, problems)
        if loaded is None:
            continue
        text_lines = path.read_text(encoding="utf-8").splitlines()

        def line_of(needle: str, _lines: list[str] = text_lines) -> int | None:
            for number, text in enumerate(_lines, start=1):
                if needle in text:
                    return number
            return None

        for system in loaded.systems:
            if system.id in systems:
                problems.append(
                    RouteProblem(
                        str(path),
                        line_of(f"id: {system.id}"),
                        f"System '{system.id}' is declared twice (also in {origin[('system', system.id)]}).",
                    )
                )
            systems[system.id] = system
            origin[("system", system.id)] = str(path)
        for target in loaded.targets:
            if target.id in targets:
                problems.append(
                    RouteProblem(
                        str(path),
                        line_of(f"id: {target.id}"),
                        f"Target '{target.id}' is declared twice (also in {origin[('target', target.id)]}).",
                    )
                )
            if target.adapter not in adapters:
                problems.append(
                    RouteProblem(
                        str(path),
                        line_of(f"adapter: {target.adapter}"),
                        f"Target '{target.id}' uses adapter '{target.adapter}', which the hub does not have; "
                        f"use one of: {', '.join(sorted(adapters))}.",
                    )
                )
            missing: list[str] = []
            _expand_env(target.config, missing)
            for variable in missing:
                problems.append(
                    RouteProblem(
                        str(path),
                        line_of(variable),
                        f"Target '{target.id}' needs the environment variable {variable}, which is not set; "
                        "set it before starting a worker for this target.",
                        severity="warning",
                    )
                )
            targets[target.id] = target
            origin[("target", target.id)] = str(path)
        for route in loaded.routes:
            if any(r.name == route.name for r in routes):
                problems.append(
                    RouteProblem(str(path), line_of(f"name: {route.name}"), f"Route '{route.name}' is declared twice.")
                )
            routes.append(route)
            origin[("route", route.name)] = str(path)

    for route in routes:
        file = origin[("route", route.name)]
        line = _find_line(file, f"name: {route.name}")
        if route.schema_name not in schemas:
            problems.append(
                RouteProblem(
                    file,
                    line,
                    f"Route '{route.name}' names schema '{route.schema_name}', which does not exist; "
                    f"use one of: {', '.join(sorted(schemas))}.",
                )
            )
        for target_id in route.targets:
            if target_id not in targets:
                problems.append(
                    RouteProblem(
                        file,
                        line,
                        f"Route '{route.name}' sends to target '{target_id}', which no route file declares; "
                        "add it under 'targets:'.",
                    )
                )
        for source in route.sources or ():
            if source not in systems:
                problems.append(
                    RouteProblem(file, line, f"Route '{route.name}' names source '{source}', which is not a system.")
                )
        problems.extend(_mode_problems(route, routes, file, line))
        others = [r for r in routes if r.type == route.type and r.schema_name != route.schema_name]
        if others:
            problems.append(
                RouteProblem(
                    file,
                    line,
                    f"Routes '{route.name}' and '{others[0].name}' carry type '{route.type}' with different "
                    "schemas; one message type has one schema.",
                )
            )
    types = {r.type for r in routes}
    for system in systems.values():
        file = origin[("system", system.id)]
        for message_type in system.allowed_types:
            if message_type not in types:
                problems.append(
                    RouteProblem(
                        file,
                        _find_line(file, message_type),
                        f"System '{system.id}' may send '{message_type}', but no route carries that type.",
                    )
                )
        if not os.environ.get(system.key_env):
            problems.append(
                RouteProblem(
                    file,
                    _find_line(file, system.key_env),
                    f"System '{system.id}' has no key: the environment variable {system.key_env} is not set, "
                    "so the ingress will refuse its messages.",
                    severity="warning",
                )
            )
    table = RouteTable(systems=systems, targets=targets, routes=tuple(routes), files=tuple(str(f) for f in files))
    has_errors = any(p.severity == "error" for p in problems)
    return (None if has_errors else table), problems


def _mode_problems(route: Route, routes: list[Route], file: str, line: int | None) -> list[RouteProblem]:
    """Settings that only fit some modes, and request-reply / login routes that could not answer."""
    found: list[str] = []
    if route.mode != "deliver":
        if len(route.targets) != 1:
            found.append(
                f"Route '{route.name}' is {route.mode} and so needs exactly one target (one answer per request); "
                f"it names {len(route.targets)}."
            )
        if route.ordering != "none":
            found.append(f"Route '{route.name}' is {route.mode}; 'ordering' only applies to deliver routes.")
        if any(r.type == route.type and r.mode != route.mode for r in routes):
            found.append(f"Type '{route.type}' is carried by routes of different modes; give one type one mode.")
    if route.mode != "request-reply" and route.timeout is not None:
        found.append(f"Route '{route.name}' sets 'timeout', which only applies to mode: request-reply.")
    if route.mode == "deliver" and route.rate_limit is not None:
        found.append(
            f"Route '{route.name}' sets 'rate_limit', which only applies to mode: request-reply or login; "
            "a deliver route is paced by its retry policy."
        )
    if route.mode == "login" and (route.login is None or not route.login.return_urls):
        found.append(
            f"Route '{route.name}' is a login route without 'login: {{return_urls: [...]}}'; list the URLs the "
            "hub may send the browser back to."
        )
    if route.mode != "login" and route.login is not None:
        found.append(f"Route '{route.name}' has a 'login' section but is not mode: login.")
    return [RouteProblem(file, line, sentence) for sentence in found]


def _find_line(file: str, needle: str) -> int | None:
    try:
        for number, text in enumerate(Path(file).read_text(encoding="utf-8").splitlines(), start=1):
            if needle in text:
                return number
    except OSError:
        return None
    return None


def load_routes(routes_dir: Path, *, known_schemas: Iterable[str], known_adapters: Iterable[str]) -> RouteTable:
    """Load every ``*.yaml`` in ``routes_dir``; raise ConfigurationError listing every error."""
    if not routes_dir.is_dir():
        raise ConfigurationError(
            f"The routes folder {routes_dir} does not exist; set HUB_ROUTES_DIR to the folder of your route files."
        )
    paths = [*routes_dir.glob("*.yaml"), *routes_dir.glob("*.yml")]
    table, problems = check_routes(paths, known_schemas=known_schemas, known_adapters=known_adapters)
    if table is None:
        errors = "\n".join(str(p) for p in problems if p.severity == "error")
        raise ConfigurationError(f"The route files have errors; fix them and start again:\n{errors}")
    return table


def resolve_target_config(target: TargetSpec) -> dict[str, Any]:
    """The target's config with ``${VAR}`` references replaced; raise when one is not set."""
    missing: list[str] = []
    config = _expand_env(target.config, missing)
    if missing:
        raise ConfigurationError(
            f"Target '{target.id}' needs the environment variable(s) {', '.join(missing)}; set them and start again."
        )
    return dict(config)
