"""Routing tables: which system may send what, and where each message type goes.

Routes are data (``routes/*.yaml``). This module loads and checks them; errors are
sentences naming the file and line, so a provincial IT officer can fix them without
reading our code. See ``routes/national-portal.yaml`` for an annotated example.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from hub.errors import ConfigurationError
from hub.settings import environment

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


def _expand_env(value: Any, problems: list[str], env: Mapping[str, str] | None = None) -> Any:
    """Replace ``${VAR}`` and ``${VAR:-default}`` in strings of a target's config (from the environment
    or ``.env``)."""
    env = environment() if env is None else env
    if isinstance(value, str):

        def repl(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            found = env.get(name)
            if found is not None:
                return found
            if default is not None:
                return default
            problems.append(name)
            return ""

        return _ENV_REF.sub(repl, value)
    if isinstance(value, dict):
        return {k: _expand_env(v, problems, env) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, problems, env) for v in value]
    return value


def _node_lines(node: yaml.Node, path: tuple[Any, ...], out: dict[tuple[Any, ...], int]) -> None:
    out.setdefault(path, node.start_mark.line + 1)  # a key's own line, not its value's first line
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
        label = (item.get("name") if section == "routes" else item.get("id")) or f"#{loc[1] + 1}"
        kind = {"routes": "route", "targets": "target", "systems": "system"}.get(section, section)
        rest = ".".join(str(p) for p in loc[2:]).replace("schema_name", "schema")
        return f"{kind} '{label}'" + (f", field '{rest}'" if rest else "")
    return ".".join(str(p) for p in loc) or "the file"


@dataclass
class _FileContents:
    """What one route file declares: the valid items, and the names of the invalid ones.

    An invalid declaration is reported once, where it is. Its id stays known ("declared but
    invalid") so that routes naming it are not reported again: the declaration is what to fix.
    """

    file: str
    text: str = ""
    lines: dict[tuple[Any, ...], int] = field(default_factory=dict)
    systems: list[tuple[SystemSpec, tuple[Any, ...]]] = field(default_factory=list)
    targets: list[tuple[TargetSpec, tuple[Any, ...]]] = field(default_factory=list)
    routes: list[tuple[Route, tuple[Any, ...]]] = field(default_factory=list)
    invalid_systems: set[str] = field(default_factory=set)
    invalid_targets: set[str] = field(default_factory=set)
    invalid_types: set[str] = field(default_factory=set)

    def line(self, loc: tuple[Any, ...]) -> int | None:
        return _line_of(self.lines, loc)


_SECTIONS: dict[str, type[_Spec]] = {"systems": SystemSpec, "targets": TargetSpec, "routes": Route}
#: ``id: x`` and ``type: a.b`` anywhere in a file that could not be parsed (block or flow style).
_ID_IN_TEXT = re.compile(r"(?<![\w-])id\s*:\s*[\"']?([A-Za-z0-9][\w-]*)")
_TYPE_IN_TEXT = re.compile(r"(?<![\w-])type\s*:\s*[\"']?([a-z]\w*(?:\.[a-z]\w*)+)")


def _unreadable(contents: _FileContents, text: str, line: int | None, sentence: str) -> RouteProblem:
    """The one problem of a file that cannot be read as route data; its ids are kept from its text.

    Every system or target id written in the file counts as declared but invalid, so references to
    it from other files are not reported; the problem says which references were not checked.
    """
    ids = sorted(set(_ID_IN_TEXT.findall(text)))
    contents.invalid_systems.update(ids)
    contents.invalid_targets.update(ids)
    contents.invalid_types.update(_TYPE_IN_TEXT.findall(text))
    if ids:
        sentence += f" References to what it declares ({', '.join(ids)}) were not checked."
    return RouteProblem(contents.file, line, sentence)


def _remember_invalid(contents: _FileContents, section: str, value: Any) -> None:
    """Keep the id (or, of a route, the type) of items that did not validate, when they have one."""
    for entry in value if isinstance(value, list) else [value]:
        if not isinstance(entry, dict):
            continue
        if entry.get("id") is not None and section != "routes":
            if section != "targets":
                contents.invalid_systems.add(str(entry["id"]))
            if section != "systems":
                contents.invalid_targets.add(str(entry["id"]))
        if entry.get("type") is not None and section not in {"systems", "targets"}:
            contents.invalid_types.add(str(entry["type"]))


def _validation_problems(
    contents: _FileContents, exc: ValidationError, prefix: tuple[Any, ...], data: Any
) -> list[RouteProblem]:
    found: list[RouteProblem] = []
    for err in exc.errors():
        loc = (*prefix, *err["loc"])
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = f"'{loc[-1]}' is not a known setting here; check its spelling"
        elif err["type"] == "missing":
            message = f"'{loc[-1]}' is required"
        found.append(RouteProblem(contents.file, contents.line(loc), f"In {_describe(loc, data)}: {message}."))
    return found


def _load_file(path: Path, problems: list[RouteProblem]) -> _FileContents:
    """Parse one route file and validate each declaration on its own (one bad item spoils only itself)."""
    contents = _FileContents(str(path))
    raw = path.read_bytes()
    try:
        text = contents.text = raw.decode("utf-8")
    except UnicodeDecodeError:
        problems.append(
            _unreadable(contents, raw.decode("utf-8", "replace"), None, "The file is not UTF-8 text; save it as UTF-8.")
        )
        return contents
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        problems.append(_unreadable(contents, text, line, f"The file is not valid YAML: {problem}."))
        return contents
    if data is None:
        return contents
    if not isinstance(data, dict):
        sentence = "A route file must be a mapping with 'systems', 'targets' and 'routes'."
        problems.append(_unreadable(contents, text, 1, sentence))
        return contents
    if node is not None:
        _node_lines(node, (), contents.lines)
    for section, value in data.items():
        if section not in _SECTIONS:
            problems.append(
                RouteProblem(
                    contents.file,
                    contents.line((section,)),
                    f"'{section}' is not a known section of a route file; use systems, targets or routes.",
                )
            )
            _remember_invalid(contents, str(section), value)
            continue
        if value is None:
            continue
        if not isinstance(value, list):
            problems.append(
                RouteProblem(
                    contents.file,
                    contents.line((section,)),
                    f"'{section}' must be a list, each item starting with '- ' on its own line.",
                )
            )
            _remember_invalid(contents, section, value)
            continue
        for index, item in enumerate(value):
            try:
                spec = _SECTIONS[section].model_validate(item)
            except ValidationError as exc:
                problems.extend(_validation_problems(contents, exc, (section, index), data))
                _remember_invalid(contents, section, item)
                continue
            if isinstance(spec, SystemSpec):
                contents.systems.append((spec, (section, index)))
            elif isinstance(spec, TargetSpec):
                contents.targets.append((spec, (section, index)))
            elif isinstance(spec, Route):
                contents.routes.append((spec, (section, index)))
    return contents


def check_routes(
    paths: Iterable[Path],
    *,
    known_schemas: Iterable[str],
    known_adapters: Iterable[str],
) -> tuple[RouteTable | None, list[RouteProblem]]:
    """Load and cross-check route files; return the table (when error-free) and every problem found.

    Only root causes are reported: a declaration that is invalid (or in a file that cannot be read)
    is reported where it is, and references to it elsewhere are not reported again.
    """
    problems: list[RouteProblem] = []
    schemas, adapters = set(known_schemas), set(known_adapters)
    systems: dict[str, SystemSpec] = {}
    targets: dict[str, TargetSpec] = {}
    routes: list[tuple[Route, str, int | None]] = []
    target_files: dict[str, str] = {}
    invalid_systems: set[str] = set()
    invalid_targets: set[str] = set()
    invalid_types: set[str] = set()
    system_places: dict[str, tuple[_FileContents, tuple[Any, ...]]] = {}
    files = sorted(paths)
    if not files:
        problems.append(RouteProblem("routes", None, "No route files (*.yaml) were found; add at least one."))
    loaded = [_load_file(path, problems) for path in files]
    for contents in loaded:
        invalid_systems |= contents.invalid_systems
        invalid_targets |= contents.invalid_targets
        invalid_types |= contents.invalid_types
    for contents in loaded:
        text_lines = contents.text.splitlines()
        for system, loc in contents.systems:
            if system.id in system_places:
                problems.append(
                    RouteProblem(
                        contents.file,
                        contents.line((*loc, "id")),
                        f"System '{system.id}' is declared twice (also in {system_places[system.id][0].file}).",
                    )
                )
            systems[system.id] = system
            system_places[system.id] = (contents, loc)
        for target, loc in contents.targets:
            if target.id in target_files:
                problems.append(
                    RouteProblem(
                        contents.file,
                        contents.line((*loc, "id")),
                        f"Target '{target.id}' is declared twice (also in {target_files[target.id]}).",
                    )
                )
            if target.adapter not in adapters:
                problems.append(
                    RouteProblem(
                        contents.file,
                        contents.line((*loc, "adapter")),
                        f"Target '{target.id}' uses adapter '{target.adapter}', which the hub does not have; "
                        f"use one of: {', '.join(sorted(adapters))}.",
                    )
                )
            missing: list[str] = []
            _expand_env(target.config, missing)
            for variable in missing:
                line = next((n for n, text in enumerate(text_lines, start=1) if variable in text), None)
                problems.append(
                    RouteProblem(
                        contents.file,
                        line or contents.line((*loc, "config")),
                        f"Target '{target.id}' needs the environment variable {variable}, which is not set; "
                        "set it before starting a worker for this target.",
                        severity="warning",
                    )
                )
            targets[target.id] = target
            target_files[target.id] = contents.file
        for route, loc in contents.routes:
            line = contents.line(loc)
            if any(r.name == route.name for r, _, _ in routes):
                problems.append(RouteProblem(contents.file, line, f"Route '{route.name}' is declared twice."))
            routes.append((route, contents.file, line))

    for position, (route, file, line) in enumerate(routes):
        earlier = [r for r, _, _ in routes[:position]]
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
            if target_id not in targets and target_id not in invalid_targets:
                problems.append(
                    RouteProblem(
                        file,
                        line,
                        f"Route '{route.name}' sends to target '{target_id}', which no route file declares; "
                        "add it under 'targets:'.",
                    )
                )
        for source in route.sources or ():
            if source not in systems and source not in invalid_systems:
                problems.append(
                    RouteProblem(file, line, f"Route '{route.name}' names source '{source}', which is not a system.")
                )
        problems.extend(_mode_problems(route, earlier, file, line))
        others = [
            r
            for r in earlier
            if r.type == route.type
            and r.schema_name != route.schema_name
            and {r.schema_name, route.schema_name} <= schemas
        ]
        if others:
            problems.append(
                RouteProblem(
                    file,
                    line,
                    f"Routes '{route.name}' and '{others[0].name}' carry type '{route.type}' with different "
                    "schemas; one message type has one schema.",
                )
            )
    types = {r.type for r, _, _ in routes} | invalid_types
    env = environment()
    for system in systems.values():
        contents, loc = system_places[system.id]
        for index, message_type in enumerate(system.allowed_types):
            if message_type not in types:
                problems.append(
                    RouteProblem(
                        contents.file,
                        contents.line((*loc, "allowed_types", index)),
                        f"System '{system.id}' may send '{message_type}', but no route carries that type.",
                    )
                )
        if not env.get(system.key_env):
            problems.append(
                RouteProblem(
                    contents.file,
                    contents.line((*loc, "key_env")),
                    f"System '{system.id}' has no key: the environment variable {system.key_env} is not set, "
                    "so the ingress will refuse its messages.",
                    severity="warning",
                )
            )
    table = RouteTable(
        systems=systems,
        targets=targets,
        routes=tuple(r for r, _, _ in routes),
        files=tuple(str(f) for f in files),
    )
    has_errors = any(p.severity == "error" for p in problems)
    return (None if has_errors else table), problems


def _mode_problems(route: Route, earlier: list[Route], file: str, line: int | None) -> list[RouteProblem]:
    """Settings that only fit some modes, and request-reply / login routes that could not answer.

    ``earlier`` are the routes checked before this one: a clash between two routes is reported once,
    at the second.
    """
    found: list[str] = []
    if route.mode != "deliver":
        if len(route.targets) != 1:
            found.append(
                f"Route '{route.name}' is {route.mode} and so needs exactly one target (one answer per request); "
                f"it names {len(route.targets)}."
            )
        if route.ordering != "none":
            found.append(f"Route '{route.name}' is {route.mode}; 'ordering' only applies to deliver routes.")
    if any(r.type == route.type and r.mode != route.mode for r in earlier):
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
