"""The small protocol every target adapter implements.

The hub core never imports a vendor library; it only calls these methods. An adapter
lives in ``adapters/<system>/`` and is registered by name in :mod:`hub.bootstrap`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from hub.envelope import Envelope

__all__ = [
    "Adapter",
    "AdapterFactory",
    "ConfirmsDelivery",
    "DeliveryContext",
    "DescribesCheck",
    "RequestAdapter",
    "RequestContext",
]


@dataclass(frozen=True, slots=True)
class DeliveryContext:
    """What the worker knows about a delivery besides the message itself.

    ``attempt`` starts at 1. ``target_has_dossier`` is true when an earlier message of
    the same dossier was already delivered to this target, so an adapter can send an
    update instead of a create.
    """

    target: str
    attempt: int
    target_has_dossier: bool = False


@runtime_checkable
class Adapter(Protocol):
    """A connection to one external system.

    ``deliver`` must either return (the target took the message) or raise
    :class:`hub.errors.TransientDeliveryError` / :class:`hub.errors.PermanentDeliveryError`.
    Any other exception is treated as permanent (a bug or an unexpected reply).

    ``max_batch`` maps a message type to the largest batch the target accepts; the
    worker then calls ``deliver_batch`` with up to that many messages of that type.
    """

    name: str
    max_batch: Mapping[str, int]

    async def deliver(self, envelope: Envelope, context: DeliveryContext) -> None: ...

    async def deliver_batch(self, envelopes: Sequence[Envelope], context: DeliveryContext) -> None: ...

    async def check(self) -> None:
        """Raise a DeliveryError when the target cannot be reached (readiness/health)."""
        ...

    async def aclose(self) -> None: ...


@runtime_checkable
class ConfirmsDelivery(Protocol):
    """An adapter that can ask its target whether a message already took effect (optional).

    The worker asks only about a message in doubt: RabbitMQ delivers it again (a worker died while
    holding it, perhaps after the target took it and before the hub recorded that), or an earlier
    attempt failed in a way that may have reached the target (a timeout, a dropped connection).
    ``previous`` is the newest state of the same dossier the hub knows was delivered, so the
    adapter can see when the target's answer cannot tell the two apart. Return ``True`` (the
    target has it: recorded as delivered, not sent again), ``False`` or ``None`` (not there, or
    cannot tell: it is sent again; at-least-once). Raise nothing but DeliveryErrors.
    """

    async def already_delivered(
        self, envelope: Envelope, context: DeliveryContext, previous: Envelope | None
    ) -> bool | None: ...


@dataclass(frozen=True, slots=True)
class RequestContext:
    """What the request worker knows about a request-reply call besides the request itself.

    ``attempt`` starts at 1; ``deadline`` is a ``time.time()`` after which nobody waits for the
    answer any more (an adapter may use it to bound its own timeouts); ``source`` is the
    calling system and ``route`` the route's name.
    """

    target: str
    route: str
    source: str
    attempt: int
    deadline: float


@runtime_checkable
class RequestAdapter(Protocol):
    """A connection to a system that answers requests (``mode: request-reply`` routes).

    ``request`` returns the canonical answer (a JSON-able dict sent back to the caller) or
    raises :class:`hub.errors.TransientDeliveryError` (retried while the route's timeout
    allows) / :class:`hub.errors.PermanentDeliveryError` (answered at once as refused).
    Any other exception is answered as an adapter failure (HTTP 502).
    """

    name: str

    async def request(self, envelope: Envelope, context: RequestContext) -> dict[str, Any]: ...

    async def check(self) -> None: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class LoginRequest:
    """One browser login through the hub (``mode: login`` routes): what the provider must bind to it.

    ``state`` identifies the login, ``nonce`` must come back in the ID token, ``code_verifier`` is the
    PKCE secret (only its S256 challenge leaves the hub before the token exchange).
    """

    state: str
    nonce: str
    code_verifier: str
    redirect_uri: str


@runtime_checkable
class IdentityProvider(Protocol):
    """An OpenID Connect provider the hub logs people in with (VNeID).

    ``authorization_url`` is where the browser goes; ``complete`` exchanges the code, verifies the
    tokens and returns the canonical identity (:class:`schemas.identity.Identity` as a dict). Both
    raise :class:`hub.errors.TransientDeliveryError` when the provider cannot be reached and
    :class:`hub.errors.PermanentDeliveryError` when it refuses or a token does not verify.
    """

    name: str

    async def authorization_url(self, login: LoginRequest) -> str: ...

    async def complete(self, code: str, login: LoginRequest) -> dict[str, Any]: ...

    async def check(self) -> None: ...

    async def aclose(self) -> None: ...


class AdapterFactory(Protocol):
    def __call__(self, target_id: str, config: Mapping[str, Any]) -> object:
        """An object implementing :class:`Adapter`, :class:`RequestAdapter` or both."""
        ...


@runtime_checkable
class DescribesCheck(Protocol):
    """An adapter that says what its ``check()`` proves (``hub doctor`` prints it), e.g. "fetched an access
    token from its OAuth2 token endpoint"."""

    check_description: str
