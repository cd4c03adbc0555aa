"""The ingress's OpenAPI document: the shape of every error answer, the system key as a bearer scheme,
and the request bodies that depend on the route files (the message envelope of ``POST /v1/messages``,
one ``POST /v1/requests/<type>`` per request-reply route).

Routers declare their answers with :func:`problem_responses` and their key with :data:`SYSTEM_KEY`
(``openapi_extra``); :func:`complete_document` adds what only the running hub knows. Nothing here runs
while a request is answered: the document is built once, on the first ``GET /openapi.json``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

from hub.routing import RouteTable

__all__ = [
    "SYSTEM_KEY",
    "SYSTEM_KEY_SCHEME",
    "Problem",
    "complete_document",
    "problem_responses",
]

#: The name of the system key's security scheme in the document.
SYSTEM_KEY_SCHEME = "systemKey"
#: ``openapi_extra`` of an endpoint that takes a system key (or the admin key) in ``Authorization: Bearer``.
SYSTEM_KEY: dict[str, Any] = {"security": [{SYSTEM_KEY_SCHEME: []}]}

_COMPONENTS = "#/components/schemas/"


class Problem(BaseModel):
    """An error answer: a sentence that says what went wrong and what to do."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"additionalProperties": True})

    detail: str = Field(description="What went wrong and what to do about it, in a sentence.")
    errors: list[str] = Field(
        default_factory=list,
        description="One sentence per problem the schema found (only when the body does not match it).",
    )


_MEANINGS = {
    400: "The body is not UTF-8 JSON, or a value is not allowed.",
    401: "No key, or a key the hub does not know.",
    403: "The key may not do this.",
    404: "There is nothing here that the key may read.",
    413: "The body is larger than the hub accepts.",
    422: "The body does not match its schema; `errors` lists each problem.",
    429: "Too many requests; `Retry-After` says when to send again.",
    502: "The target failed or answered something the hub cannot read.",
    503: "The hub cannot reach RabbitMQ or its store right now; `Retry-After` says when to try again.",
    504: "The target did not answer in time.",
}


def problem_responses(*statuses: int, model: type[BaseModel] = Problem) -> dict[int | str, dict[str, Any]]:
    """``responses=`` of a route: each status answered with ``model`` (by default :class:`Problem`)."""
    return {status: {"model": model, "description": _MEANINGS.get(status, "Refused.")} for status in statuses}


def complete_document(
    document: dict[str, Any], routes: RouteTable, schemas: Mapping[str, type[BaseModel]]
) -> dict[str, Any]:
    """FastAPI's document of the ingress with the bearer scheme, the envelope of ``POST /v1/messages``
    and one path per request-reply route (whose body is that route's schema)."""
    document = copy.deepcopy(document)
    components = document.setdefault("components", {})
    components.setdefault("securitySchemes", {})[SYSTEM_KEY_SCHEME] = {
        "type": "http",
        "scheme": "bearer",
        "description": "A system's key (the `key_env` of its entry under `systems:` in the route files), or "
        "the admin key (HUB_ADMIN_KEY), which may read every message but send none.",
    }
    paths = document.get("paths", {})
    posted = sorted({r.type for r in routes.routes if r.mode == "deliver"} & _sendable(routes))
    requested = {r.type: r for r in routes.routes if r.mode == "request-reply"}
    names = {routes.routes_for(t)[0].schema_name for t in [*posted, *requested]}
    refs = _add_schemas(components.setdefault("schemas", {}), {n: schemas[n] for n in sorted(names) if n in schemas})
    send = paths.get("/v1/messages", {}).get("post")
    if send is not None:
        variants = [_envelope(t, refs.get(routes.routes_for(t)[0].schema_name)) for t in posted]
        envelope: dict[str, Any] = (
            {"oneOf": variants} if variants else {"type": "object", "description": "No route takes messages."}
        )
        send["requestBody"] = {"required": True, "content": {"application/json": {"schema": envelope}}}
    template = paths.pop("/v1/requests/{message_type}", None)
    if template is not None:
        operation = template["post"]
        for message_type, route in sorted(requested.items()):
            concrete = copy.deepcopy(operation)
            concrete["parameters"] = [p for p in concrete.get("parameters", []) if p.get("name") != "message_type"]
            concrete["operationId"] = f"request_{message_type.replace('.', '_')}"
            concrete["summary"] = route.description or f"Request {message_type}"
            body = refs.get(route.schema_name, {"type": "object"})
            concrete["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
            paths[f"/v1/requests/{message_type}"] = {"post": concrete}
    return document


def _sendable(routes: RouteTable) -> set[str]:
    return {t for system in routes.systems.values() for t in system.allowed_types}


def _envelope(message_type: str, payload: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "title": message_type,
        "type": "object",
        "properties": {
            "type": {"const": message_type},
            "payload": payload or {"type": "object"},
        },
        "required": ["type", "payload"],
    }


def _add_schemas(components: dict[str, Any], models: Mapping[str, type[BaseModel]]) -> dict[str, dict[str, Any]]:
    """Put the JSON Schemas of ``models`` (schema name → model) in ``components``; schema name → its ``$ref``.
    A model named like one FastAPI already put there is kept apart under ``payload.<name>``."""
    if not models:
        return {}
    for prefix in ("", "payload."):
        keys, generated = models_json_schema(
            [(model, "validation") for model in models.values()], ref_template=_COMPONENTS + prefix + "{model}"
        )
        definitions: dict[str, Any] = generated.get("$defs", {})
        if prefix or all(components.get(name, schema) == schema for name, schema in definitions.items()):
            break
    components.update({prefix + name: schema for name, schema in definitions.items()})
    return {name: keys[(model, "validation")] for name, model in models.items()}
