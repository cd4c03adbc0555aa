"""What the ingress's endpoints get through FastAPI dependencies: the hub of the application they
serve and who is calling. :class:`IngressState` is built once per application and kept on
``app.state``; the ingress's plain-ASGI shortcut for ``POST /v1/messages`` uses the same object."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

import orjson
from fastapi import Depends, Request

from hub import services
from hub.auth import AuthenticationError, SystemKeys
from hub.bootstrap import Hub
from hub.routing import SystemSpec
from hub.services import Publisher, RefusalError

__all__ = ["Caller", "IngressState", "Sender", "State", "ingress_state"]


@dataclass
class IngressState:
    """One ingress application's hub, keys and publisher, and the checks every endpoint shares."""

    hub: Hub
    keys: SystemKeys
    publisher: Publisher = field(init=False)

    def __post_init__(self) -> None:
        self.publisher = Publisher(self.hub)

    @classmethod
    def for_hub(cls, hub: Hub) -> IngressState:
        return cls(hub, SystemKeys.for_hub(hub))

    def identify(self, authorization: str | None) -> SystemSpec | None:
        """The calling system, or None for the admin key; 401 otherwise."""
        try:
            return self.keys.identify(authorization)
        except AuthenticationError as exc:
            raise RefusalError(401, str(exc)) from exc

    def sender(self, authorization: str | None) -> SystemSpec:
        """The system posting a message (401 without a valid key, 403 for the admin key)."""
        system = self.identify(authorization)
        if system is None:
            raise RefusalError(403, "The admin key cannot send messages; use the sending system's key.")
        return system

    def check_length(self, length: int) -> None:
        limit = self.hub.settings.max_body_bytes
        if length > limit:
            raise RefusalError(413, f"The body is {length} bytes; the hub accepts at most {limit}.")

    async def accept(self, system: SystemSpec, idempotency_key: str | None, raw: bytes) -> bytes:
        """Validate, store and publish one posted message; the 202's JSON body."""
        self.check_length(len(raw))
        accepted = await services.accept(self.hub, self.publisher, system, idempotency_key, raw)
        return orjson.dumps({"id": accepted.id, "targets": accepted.targets, "duplicate": accepted.duplicate})

    def problem(self, exc: RefusalError) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        """The error answer: the status, a JSON body ``{"detail": <sentence>, "errors": [...]}`` and headers."""
        self.hub.metrics.rejected.labels(str(exc.status)).inc()
        body: dict[str, Any] = {"detail": exc.detail}
        if exc.errors:
            body["errors"] = exc.errors
        headers = [(b"retry-after", b"5")] if exc.status == 503 else []
        return exc.status, orjson.dumps(body), headers


def ingress_state(request: Request) -> IngressState:
    state: IngressState = request.app.state.ingress
    return state


State = Annotated[IngressState, Depends(ingress_state)]


def _caller(request: Request, state: State) -> SystemSpec | None:
    return state.identify(request.headers.get("authorization"))


def _sender(request: Request, state: State) -> SystemSpec:
    return state.sender(request.headers.get("authorization"))


#: The system whose key the request carries; None for the admin key (401 without a valid key).
Caller = Annotated[SystemSpec | None, Depends(_caller)]
#: The system sending a message (the admin key may read but not send: 403).
Sender = Annotated[SystemSpec, Depends(_sender)]
